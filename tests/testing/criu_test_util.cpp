#include "tests/testing/criu_test_util.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace ckptd::criu::testing {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {
// Restored trees are orphaned when `criu swrk` exits; become their reaper.
const bool kSubreaper = prctl(PR_SET_CHILD_SUBREAPER, 1) == 0;
}  // namespace

std::string CriuPath() {
  (void)kSubreaper;
  const char* env = std::getenv("CKPTD_CRIU");
  return env && *env ? env : CKPTD_CRIU_DEFAULT;
}

std::string WorkloadPath() { return std::string(CKPTD_BINARY_DIR) + "/tests/workload/ckptd_workload"; }

pid_t Spawn(const std::vector<std::string>& argv) {
  (void)kSubreaper;
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  return pid;
}

pid_t StartWorkload(const std::string& mode, const fs::path& out, const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {WorkloadPath(), mode, "--out", out.string(), "--log", out.string() + ".log"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return Spawn(argv);
}

pid_t StartProgressing(const std::string& mode, const fs::path& out, uint64_t min_n,
                       const std::vector<std::string>& extra, std::chrono::milliseconds timeout) {
  pid_t pid = StartWorkload(mode, out, extra);
  if (pid <= 0) return -1;
  if (WaitProgress(out, min_n, timeout)) return pid;
  KillTree(pid);
  return -1;
}

Progress ReadProgress(const fs::path& file) {
  // The line is rewritten in place; read twice to avoid a torn copy.
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::ifstream a(file), b(file);
    std::string la, lb;
    std::getline(a, la);
    std::getline(b, lb);
    if (la != lb || la.size() != 24) continue;
    Progress p;
    std::istringstream in(la);
    std::string status;
    if (!(in >> p.n >> status)) continue;
    p.ok = status == "ok";
    p.valid = true;
    return p;
  }
  return {};
}

bool WaitProgress(const fs::path& file, uint64_t min_n, std::chrono::milliseconds timeout) {
  auto end = Clock::now() + timeout;
  while (Clock::now() < end) {
    Progress p = ReadProgress(file);
    if (p.valid && !p.ok) return false;
    if (p.valid && p.n >= min_n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

namespace {
std::string StatusField(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
  }
  return {};
}
}  // namespace

char ProcState(pid_t pid) {
  std::string s = StatusField(pid, "State");
  size_t i = s.find_first_not_of(" \t");
  return i == std::string::npos ? 0 : s[i];
}

pid_t ParentOf(pid_t pid) { return std::atoi(StatusField(pid, "PPid").c_str()); }

std::vector<pid_t> ChildrenOf(pid_t pid) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(t.path() / "children");
    pid_t c;
    while (in >> c) out.push_back(c);
  }
  return out;
}

pid_t InnermostPid(pid_t pid) {
  std::istringstream in(StatusField(pid, "NSpid"));
  pid_t p = 0, last = 0;
  while (in >> p) last = p;
  return last;
}

bool Alive(pid_t pid) {
  char s = ProcState(pid);
  return s != 0 && s != 'Z' && s != 'X';
}

int ReapChild(pid_t pid, std::chrono::milliseconds timeout) {
  auto end = Clock::now() + timeout;
  while (Clock::now() < end) {
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return st;
    if (r < 0) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

pid_t StartCounterInOwnPidNs(const std::filesystem::path& out, bool mount_proc, pid_t* unshare, std::string* why) {
  std::vector<std::string> argv{"unshare", "--pid", "--fork"};
  if (mount_proc) argv.push_back("--mount-proc");
  for (std::string a : {WorkloadPath(), std::string("counter"), std::string("--out"), out.string(),
                        std::string("--log"), out.string() + ".log"})
    argv.push_back(a);
  *unshare = Spawn(argv);
  if (*unshare <= 0 || !WaitProgress(out, 5)) {
    *why = "the namespaced counter did not start counting";
    return -1;
  }
  std::vector<pid_t> kids = ChildrenOf(*unshare);
  if (kids.size() != 1 || InnermostPid(kids[0]) != 1) {
    *why = "unshare should have one child, pid 1 of its namespace";
    return -1;
  }
  return kids[0];
}

std::string CopyCountsOnAfterOriginalDies(pid_t unshare, pid_t original_init, const std::filesystem::path& out,
                                          uint64_t at_dump) {
  KillTree(unshare);
  if (Alive(original_init)) return "the original still runs";
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  uint64_t now = ReadProgress(out).n;
  if (now < at_dump) return "the copy's counter went back before the dump";
  if (!WaitProgress(out, now + 10)) return "the restored copy is not counting";
  return "";
}

bool ReapedOrGone(pid_t pid, std::chrono::milliseconds timeout) {
  auto end = Clock::now() + timeout;
  while (Clock::now() < end) {
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno == ECHILD) return !Alive(pid);  // someone else reaped it
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

std::vector<pid_t> TreeOf(pid_t root) {
  std::vector<pid_t> tree;
  std::set<pid_t> seen;
  std::vector<pid_t> todo{root};
  while (!todo.empty()) {
    pid_t p = todo.front();
    todo.erase(todo.begin());
    if (!seen.insert(p).second) continue;
    tree.push_back(p);
    for (pid_t c : ChildrenOf(p)) todo.push_back(c);
  }
  return tree;
}

bool ReapTree(const std::vector<pid_t>& tree) {
  auto end = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < end) {
    // Reap whatever became ours (the root, orphans re-parented to us).
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    bool any = false;
    for (pid_t p : tree) any = any || Alive(p);  // others' zombies are not ours to reap
    if (!any) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

void KillTree(pid_t root) {
  if (root <= 0) return;
  std::vector<pid_t> tree = TreeOf(root);
  for (pid_t p : tree) kill(p, SIGKILL);
  ReapTree(tree);
}

}  // namespace ckptd::criu::testing

#include "common/proc.h"

#include <dirent.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "common/fd.h"

namespace ckptd {

namespace {

// A whole procfs file; "" when it cannot be read (the process is gone).
std::string ReadProcText(const std::string& path) {
  std::string s;
  if (!ReadFileTo(path, &s)) return {};
  return s;
}

// The fields after "(comm)" of a stat file; "" when unreadable.
std::string StatTail(const std::string& path) {
  std::string s = ReadProcText(path);
  auto close = s.rfind(')');
  if (close == std::string::npos || close + 2 >= s.size()) return {};
  return s.substr(close + 2);
}

std::vector<std::string> Tids(int pid) {
  std::vector<std::string> tids;
  DIR* d = opendir(fmt::format("/proc/{}/task", pid).c_str());
  if (!d) return tids;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') tids.emplace_back(e->d_name);
  closedir(d);
  return tids;
}

template <typename Pred>
bool WaitFor(std::chrono::milliseconds timeout, Pred done) {
  auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

std::optional<uint64_t> ProcStartTime(int pid) {
  if (pid <= 0) return std::nullopt;
  std::istringstream in(StatTail(fmt::format("/proc/{}/stat", pid)));
  // The tail starts at field 3 (state); the start time is field 22.
  std::string field;
  for (int i = 3; i < 22; ++i)
    if (!(in >> field)) return std::nullopt;
  uint64_t start = 0;
  if (!(in >> start)) return std::nullopt;
  return start;
}

std::optional<ProcRef> Identify(int pid) {
  auto start = ProcStartTime(pid);
  if (!start) return std::nullopt;
  return ProcRef{pid, *start};
}

uint64_t BootTicksNow() {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  const uint64_t hz = static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
  return static_cast<uint64_t>(ts.tv_sec) * hz + static_cast<uint64_t>(ts.tv_nsec) * hz / 1000000000ull;
}

char ProcState(int pid) {
  if (pid <= 0) return 0;
  std::string tail = StatTail(fmt::format("/proc/{}/stat", pid));
  return tail.empty() ? 0 : tail[0];
}

bool IsAlive(const ProcRef& p) {
  if (p.pid <= 0 || ProcStartTime(p.pid) != p.start) return false;
  char st = ProcState(p.pid);
  return st != 0 && st != 'Z' && st != 'X';
}

int TracerPid(int pid) {
  std::ifstream f(fmt::format("/proc/{}/status", pid));
  if (!f) return -1;
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("TracerPid:", 0) == 0) return std::atoi(line.c_str() + 10);
  return -1;
}

namespace {

// NSpid of /proc/<pid>/status: the pid in each namespace, host's first.
std::vector<int> NsPidChain(int pid) {
  std::ifstream f(fmt::format("/proc/{}/status", pid));
  std::string line;
  std::vector<int> chain;
  while (std::getline(f, line)) {
    if (line.rfind("NSpid:", 0) != 0) continue;
    std::istringstream in(line.substr(6));
    int p;
    while (in >> p) chain.push_back(p);
    break;
  }
  return chain;
}

// `pid` in the PID namespace `depth` levels below the host's (1: host).
std::optional<int> PidAtDepth(int pid, size_t depth) {
  std::vector<int> chain = NsPidChain(pid);
  if (depth == 0 || chain.size() < depth) return std::nullopt;
  return chain[depth - 1];
}

}  // namespace

std::optional<int> PidSeenFrom(int pid, int root) { return PidAtDepth(pid, NsPidChain(root).size()); }

std::optional<std::vector<int>> HostPidsOf(int root, const std::vector<int>& ns_pids) {
  const size_t depth = NsPidChain(root).size();
  std::map<int, int> host_of;
  for (int pid : TreePids(root))
    if (auto seen = PidAtDepth(pid, depth)) host_of.emplace(*seen, pid);
  std::vector<int> out;
  for (int ns : ns_pids) {
    auto it = host_of.find(ns);
    if (it == host_of.end()) return std::nullopt;
    out.push_back(it->second);
  }
  return out;
}

bool IsHeld(int pid) {
  for (const auto& tid : Tids(pid)) {
    std::string tail = StatTail(fmt::format("/proc/{}/task/{}/stat", pid, tid));
    if (!tail.empty() && (tail[0] == 'T' || tail[0] == 't')) return true;
    std::ifstream f(fmt::format("/proc/{}/task/{}/status", pid, tid));
    std::string line;
    while (std::getline(f, line))
      if (line.rfind("TracerPid:", 0) == 0 && std::atoi(line.c_str() + 10) != 0) return true;
  }
  return false;
}

std::vector<int> TreePids(int root) {
  std::vector<int> out;
  if (root <= 0 || ProcState(root) == 0) return out;
  std::vector<int> todo{root};
  std::set<int> seen;
  while (!todo.empty()) {
    int pid = todo.back();
    todo.pop_back();
    if (!seen.insert(pid).second) continue;
    out.push_back(pid);
    for (const auto& tid : Tids(pid)) {
      std::ifstream children(fmt::format("/proc/{}/task/{}/children", pid, tid));
      int child;
      while (children >> child) todo.push_back(child);
    }
  }
  return out;
}

std::vector<ProcRef> TreeOf(int root) {
  std::vector<ProcRef> out;
  for (int pid : TreePids(root))
    if (auto ref = Identify(pid)) out.push_back(*ref);
  return out;
}

bool KillRef(const ProcRef& p) {
  if (p.pid <= 1 || ProcStartTime(p.pid) != p.start) return false;
  return kill(p.pid, SIGKILL) == 0;
}

int KillTree(int root) {
  if (root <= 1) return 0;
  int n = 0;
  for (int pid : TreePids(root)) n += kill(pid, SIGKILL) == 0;
  return n;
}

int ContinueTree(int root) {
  int n = 0;
  for (int pid : TreePids(root)) {
    bool stopped = false;
    for (const auto& tid : Tids(pid)) {
      std::string tail = StatTail(fmt::format("/proc/{}/task/{}/stat", pid, tid));
      stopped |= !tail.empty() && tail[0] == 'T';
    }
    if (stopped && kill(pid, SIGCONT) == 0) ++n;
  }
  return n;
}

bool WaitGone(const ProcRef& p, std::chrono::milliseconds timeout) {
  return WaitFor(timeout, [&] { return !IsAlive(p); });
}

bool TreeTraced(int root) {
  for (int pid : TreePids(root))
    if (TracerPid(pid) > 0) return true;
  return false;
}

bool WaitUntracedTree(int root, std::chrono::milliseconds timeout) {
  return WaitFor(timeout, [&] { return !TreeTraced(root); });
}

bool IsOwnThread(int tid) { return tid > 0 && ::access(fmt::format("/proc/self/task/{}", tid).c_str(), F_OK) == 0; }

bool IsKernelThread(int pid) {
  constexpr unsigned long kPfKthread = 0x00200000;  // include/linux/sched.h
  if (pid == 2) return true;
  std::istringstream in(StatTail(fmt::format("/proc/{}/stat", pid)));
  // The tail starts at field 3 (state); the flags are field 9.
  std::string field;
  for (int i = 3; i < 9; ++i)
    if (!(in >> field)) return false;
  unsigned long flags = 0;
  return (in >> flags) && (flags & kPfKthread) != 0;
}

std::string Cmdline(int pid) {
  std::string s = ReadProcText(fmt::format("/proc/{}/cmdline", pid));
  while (!s.empty() && s.back() == '\0') s.pop_back();
  std::replace(s.begin(), s.end(), '\0', ' ');
  return s;
}

}  // namespace ckptd

#include "fake_cuda_state.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

namespace fakecuda {

namespace {

std::string ReadFile(const std::string& path, bool* exists) {
  std::ifstream in(path);
  *exists = static_cast<bool>(in);
  if (!in) return "";
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteAtomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
  }
  std::rename(tmp.c_str(), path.c_str());
}

// Fault file for this pid, else the global one.
std::string FaultPath(const std::string& dir, const std::string& name, int pid) {
  std::string per_pid = dir + "/" + name + "." + std::to_string(pid);
  if (access(per_pid.c_str(), F_OK) == 0) return per_pid;
  std::string global = dir + "/" + name;
  if (access(global.c_str(), F_OK) == 0) return global;
  return "";
}

long FaultNumber(const std::string& dir, const std::string& name, int pid) {
  std::string path = FaultPath(dir, name, pid);
  if (path.empty()) return 0;
  bool exists;
  return std::strtol(ReadFile(path, &exists).c_str(), nullptr, 10);
}

// fail_<op>: returns the code to fail with (consuming one count), or 0.
int TakeInjectedFailure(const std::string& dir, const std::string& op, int pid) {
  std::string path = FaultPath(dir, "fail_" + op, pid);
  if (path.empty()) return 0;
  bool exists;
  std::istringstream in(ReadFile(path, &exists));
  int code = kUnknown;
  long count = -1;
  std::string word;
  while (in >> word) {
    if (word.rfind("code=", 0) == 0) code = std::atoi(word.c_str() + 5);
    if (word.rfind("count=", 0) == 0) count = std::atol(word.c_str() + 6);
  }
  if (count == 0) return 0;
  if (count > 0) {
    if (count == 1) {
      unlink(path.c_str());
    } else {
      WriteAtomically(path, "code=" + std::to_string(code) + " count=" + std::to_string(count - 1) + "\n");
    }
  }
  return code;
}

class DirLock {
 public:
  explicit DirLock(const std::string& dir) {
    fd_ = open((dir + "/.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ >= 0) while (flock(fd_, LOCK_EX) != 0 && errno == EINTR) {}
  }
  ~DirLock() {
    if (fd_ >= 0) close(fd_);  // releases the flock
  }

 private:
  int fd_ = -1;
};

struct Record {
  int state = kRunning;
  std::string extra;  // key=value lines after the state word
};

// The record's file name: "id-<v>" for a process whose environment has
// CKPTD_FAKE_CUDA_ID=<v> (it keeps its record across a restore that gives it
// another pid, as the real driver keeps a process's state), else its pid.
std::string RecordName(int pid) {
  bool exists;
  std::string env = ReadFile("/proc/" + std::to_string(pid) + "/environ", &exists);
  const std::string key = std::string(kIdEnv) + "=";
  for (size_t at = 0; at < env.size();) {
    size_t end = env.find('\0', at);
    if (end == std::string::npos) end = env.size();
    if (env.compare(at, key.size(), key) == 0) return "id-" + env.substr(at + key.size(), end - at - key.size());
    at = end + 1;
  }
  return std::to_string(pid);
}

bool LoadRecord(const std::string& dir, int pid, Record* rec) {
  bool exists;
  std::string text = ReadFile(dir + "/" + RecordName(pid) + ".state", &exists);
  if (!exists) return false;
  std::istringstream in(text);
  std::string word;
  std::getline(in, word);
  rec->state = -1;
  for (int s = kRunning; s <= kFailed; ++s)
    if (word == StateWord(s)) rec->state = s;
  std::string line;
  rec->extra.clear();
  while (std::getline(in, line))
    if (!line.empty()) rec->extra += line + "\n";
  return rec->state >= 0;
}

void StoreRecord(const std::string& dir, int pid, const Record& rec) {
  WriteAtomically(dir + "/" + RecordName(pid) + ".state", std::string(StateWord(rec.state)) + "\n" + rec.extra);
}

void Log(const std::string& dir, const std::string& line) {
  int fd = open((dir + "/calls.log").c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  std::string l = line + "\n";
  ssize_t n = write(fd, l.data(), l.size());
  (void)n;
  close(fd);
}

bool Alive(int pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

void SleepMs(long ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// One state transition under the directory lock.
int Transition(const std::string& dir, const std::string& op, int pid, int from, int to,
               const std::string& device_map = "") {
  DirLock lock(dir);
  Record rec;
  if (!Alive(pid) || !LoadRecord(dir, pid, &rec)) return kInvalidValue;
  if (rec.state != from) return kIllegalState;
  if (int code = TakeInjectedFailure(dir, op, pid); code != 0) {
    std::string fs = FaultPath(dir, "fail_state", pid);
    if (!fs.empty()) {
      rec.state = kFailed;
      StoreRecord(dir, pid, rec);
    }
    return code;
  }
  rec.state = to;
  if (op == "restore") {
    // Remember the last device map so tests can see what reached the driver.
    std::istringstream in(rec.extra);
    std::string line, kept;
    while (std::getline(in, line))
      if (line.rfind("device_map=", 0) != 0 && !line.empty()) kept += line + "\n";
    if (!device_map.empty()) kept += "device_map=" + device_map + "\n";
    rec.extra = kept;
  }
  StoreRecord(dir, pid, rec);
  return kSuccess;
}

std::string ArrivalPath(const std::string& dir, int pid) { return dir + "/arrived." + std::to_string(pid); }

// The ranks of `pid`'s job from the "ranks" fault file (pids separated by
// blanks); empty when it has none or is not one of them.
std::vector<int> RanksOf(const std::string& dir, int pid) {
  std::string path = FaultPath(dir, "ranks", pid);
  if (path.empty()) return {};
  bool exists;
  std::istringstream in(ReadFile(path, &exists));
  std::vector<int> ranks;
  for (int r; in >> r;) ranks.push_back(r);
  if (std::find(ranks.begin(), ranks.end(), pid) == ranks.end()) return {};
  return ranks;
}

// A rank's lock waits until every rank of its job is being locked (or is
// locked): one that is not would keep the collective it waits in running.
// kSuccess when all came within the timeout (0: 60 s), else kTimeout with
// this rank left running.
int AwaitAllRanks(const std::string& dir, int pid, const std::vector<int>& ranks, unsigned timeout_ms) {
  { std::ofstream(ArrivalPath(dir, pid)) << "\n"; }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms ? timeout_ms : 60000);
  for (;;) {
    bool all = true;
    for (int r : ranks) {
      int state = kRunning;
      bool arrived = access(ArrivalPath(dir, r).c_str(), F_OK) == 0;
      if (!arrived && !(GetState(r, &state) == kSuccess && state != kRunning)) all = false;
    }
    if (all) return kSuccess;
    if (std::chrono::steady_clock::now() >= deadline) {
      unlink(ArrivalPath(dir, pid).c_str());
      return kTimeout;
    }
    SleepMs(2);
  }
}

int Run(const std::string& op, int pid, const std::string& detail, int (*body)(const std::string&, int, void*),
        void* arg) {
  std::string dir = StateDir();
  if (dir.empty()) return kNotSupported;
  SleepMs(FaultNumber(dir, "slow_ms", pid));
  int r = body(dir, pid, arg);
  Log(dir, op + " pid=" + std::to_string(pid) + detail + " -> " + std::to_string(r));
  return r;
}

}  // namespace

const char* StateWord(int state) {
  switch (state) {
    case kRunning: return "running";
    case kLocked: return "locked";
    case kCheckpointed: return "checkpointed";
    case kFailed: return "failed";
  }
  return "unknown";
}

const char* ErrorString(int code) {
  switch (code) {
    case kSuccess: return "no error";
    case kInvalidValue: return "invalid argument";
    case kNotInitialized: return "initialization error";
    case kIllegalState: return "illegal state";
    case kNotSupported: return "operation not supported";
    case kTimeout: return "the operation timed out";
    default: return "unknown error";
  }
}

std::string StateDir() {
  const char* d = std::getenv(kStateDirEnv);
  return d ? d : "";
}

void Register(int pid) {
  std::string dir = StateDir();
  if (dir.empty()) return;
  DirLock lock(dir);
  Record rec;
  if (const char* mem = std::getenv(kDeviceMemoryEnv)) rec.extra = std::string("device_memory=") + mem + "\n";
  StoreRecord(dir, pid, rec);
}

std::vector<std::pair<int, unsigned long long>> DeviceMemory() {
  std::vector<std::pair<int, unsigned long long>> out;
  std::string dir = StateDir();
  if (dir.empty()) return out;
  DirLock lock(dir);
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
  if (!d) return out;
  const std::string key = "device_memory=";
  while (dirent* e = readdir(d.get())) {
    int pid = 0;
    char tail = 0;
    if (std::sscanf(e->d_name, "%d.stat%c", &pid, &tail) != 2 || tail != 'e' ||
        std::string(e->d_name) != std::to_string(pid) + ".state")
      continue;
    Record rec;
    if (!Alive(pid) || !LoadRecord(dir, pid, &rec) || (rec.state != kRunning && rec.state != kLocked)) continue;
    size_t at = rec.extra.find(key);
    if (at != std::string::npos) out.emplace_back(pid, std::stoull(rec.extra.substr(at + key.size())));
  }
  std::sort(out.begin(), out.end());
  return out;
}

int GetState(int pid, int* state) {
  std::string dir = StateDir();
  if (dir.empty()) return kNotSupported;
  DirLock lock(dir);
  Record rec;
  if (!Alive(pid) || !LoadRecord(dir, pid, &rec)) return kInvalidValue;
  *state = rec.state;
  return kSuccess;
}

int Lock(int pid, unsigned timeout_ms) {
  return Run(
      "lock", pid, " timeout_ms=" + std::to_string(timeout_ms),
      [](const std::string& dir, int target, void* arg) -> int {
        unsigned timeout = *static_cast<unsigned*>(arg);
        long busy = FaultNumber(dir, "lock_busy_ms", target);
        if (busy > 0) {
          if (timeout > 0 && busy > static_cast<long>(timeout)) {
            // The driver gives up after the timeout and leaves it running.
            SleepMs(timeout);
            int state;
            if (GetState(target, &state) != kSuccess) return kInvalidValue;
            return state == kRunning ? kTimeout : kIllegalState;
          }
          SleepMs(busy);
        }
        std::vector<int> ranks = RanksOf(dir, target);
        if (!ranks.empty() && AwaitAllRanks(dir, target, ranks, timeout) != kSuccess) return kTimeout;
        int r = Transition(dir, "lock", target, kRunning, kLocked);
        if (!ranks.empty()) unlink(ArrivalPath(dir, target).c_str());
        return r;
      },
      &timeout_ms);
}

int Checkpoint(int pid) {
  return Run(
      "checkpoint", pid, "",
      [](const std::string& dir, int target, void*) {
        return Transition(dir, "checkpoint", target, kLocked, kCheckpointed);
      },
      nullptr);
}

int Restore(int pid, const std::string& device_map) {
  std::string map = device_map;
  return Run(
      "restore", pid, device_map.empty() ? "" : " device_map=" + device_map,
      [](const std::string& dir, int target, void* arg) {
        return Transition(dir, "restore", target, kCheckpointed, kLocked, *static_cast<std::string*>(arg));
      },
      &map);
}

int Unlock(int pid) {
  return Run(
      "unlock", pid, "",
      [](const std::string& dir, int target, void*) { return Transition(dir, "unlock", target, kLocked, kRunning); },
      nullptr);
}

}  // namespace fakecuda

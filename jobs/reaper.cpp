#include "jobs/reaper.h"

#include <dirent.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

#include <spdlog/spdlog.h>

namespace ckptd {

Reaper::Reaper(std::chrono::milliseconds interval, std::chrono::milliseconds grace)
    : interval_(interval), grace_(grace) {}

Reaper::~Reaper() { Stop(); }

bool Reaper::Start() {
  bool ok = prctl(PR_SET_CHILD_SUBREAPER, 1) == 0;
  if (!ok) spdlog::warn("prctl(PR_SET_CHILD_SUBREAPER): {}", std::strerror(errno));
  MutexLock lock(mu_);
  if (!thread_.joinable()) {
    stop_ = false;
    thread_ = std::thread([this] { Loop(); });
  }
  return ok;
}

void Reaper::Stop() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::vector<pid_t> Reaper::ZombieChildren() {
  std::vector<pid_t> out;
  pid_t self = getpid();
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    char path[sizeof e->d_name + 16];
    std::snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE* f = std::fopen(path, "re");
    if (!f) continue;
    char buf[512];
    size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = 0;
    // "pid (comm) S ppid ...": comm may hold spaces and ')', take the last.
    char* close = std::strrchr(buf, ')');
    if (!close || close[1] != ' ') continue;
    char state = close[2];
    long ppid = std::strtol(close + 4, nullptr, 10);
    if (state == 'Z' && ppid == self) out.push_back(static_cast<pid_t>(std::atoi(e->d_name)));
  }
  closedir(d);
  return out;
}

int Reaper::ScanAndReap(std::chrono::milliseconds min_age) {
  auto now = std::chrono::steady_clock::now();
  std::vector<pid_t> zombies = ZombieChildren();
  std::set<pid_t> current(zombies.begin(), zombies.end());
  int reaped = 0;
  MutexLock lock(mu_);
  for (auto it = first_seen_.begin(); it != first_seen_.end();) {
    if (!current.count(it->first))
      it = first_seen_.erase(it);
    else
      ++it;
  }
  for (pid_t pid : zombies) {
    auto [it, fresh] = first_seen_.emplace(pid, now);
    if (fresh || now - it->second < min_age) continue;
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      ++reaped;
      spdlog::debug("reaped orphan {}", pid);
    }
    first_seen_.erase(it);
  }
  return reaped;
}

int Reaper::ReapOrphans(std::chrono::milliseconds min_age) {
  int n = ScanAndReap(min_age);
  if (Reaper::ZombieChildren().empty()) return n;
  std::this_thread::sleep_for(min_age);
  return n + ScanAndReap(min_age);
}

void Reaper::Loop() {
  UniqueLock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, interval_, [this]() REQUIRES(mu_) { return stop_; });
    if (stop_) break;
    lock.unlock();
    ScanAndReap(grace_);
    lock.lock();
  }
}

}  // namespace ckptd

// Orphan reaper: makes the daemon a child subreaper and reaps the orphans
// re-parented to it (restored trees whose `criu swrk` exited, children of a
// dumped tree whose root was killed). Without it they stay zombies holding
// their pids (PID 1 here does not reap) and a restore fails "File exists".
//
// Why not waitpid(-1): common/subprocess.cpp and criu/swrk.cpp wait for
// their own children by pid (polling every 10 ms or blocking); a
// waitpid(-1) would steal those exit statuses. The reaper instead scans
// /proc for zombies whose parent is this process and reaps a pid only once
// it has stayed a zombie for `grace` (nobody is waiting for it), with
// waitpid(pid, WNOHANG) on that pid alone.
// Thread safety: all methods may be called from any thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <thread>
#include <vector>

#include "common/mutex.h"

namespace ckptd {

class Reaper {
 public:
  explicit Reaper(std::chrono::milliseconds interval = std::chrono::milliseconds(500),
                  std::chrono::milliseconds grace = std::chrono::seconds(1));
  ~Reaper();  // stops the thread
  // prctl(PR_SET_CHILD_SUBREAPER) and starts the scanning thread. False when
  // the prctl failed (the reaper still runs for our own orphans).
  bool Start();
  void Stop();
  // Reaps now every zombie child that stays a zombie for `min_age` (used
  // right before a restore, so pids of a killed original are free).
  // Returns how many were reaped.
  int ReapOrphans(std::chrono::milliseconds min_age = std::chrono::milliseconds(200));

  // Our zombie children right now.
  static std::vector<pid_t> ZombieChildren();

 private:
  int ScanAndReap(std::chrono::milliseconds min_age);
  void Loop();

  std::chrono::milliseconds interval_, grace_;
  Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::map<pid_t, std::chrono::steady_clock::time_point> first_seen_ GUARDED_BY(mu_);
  // Started under mu_, but Stop() joins it without mu_ (Loop() needs mu_ to
  // finish): Start() and Stop() come from the owner's thread, not at once.
  std::thread thread_;
};

}  // namespace ckptd

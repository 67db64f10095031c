// A test fixture with a CriuDriver for the real CRIU (skipping the test when
// CRIU is unusable), the pids to kill afterwards and a temporary directory,
// and the steps of a dump-kill-restore round trip; and the check that a
// target runs on after a dump that left it (or failed).
#pragma once

#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "criu/criu_driver.h"
#include "tests/testing/criu_test_util.h"

namespace ckptd::criu::testing {

// Options to dump `pid` into `images` within `deadline`.
inline DumpOptions DumpOf(pid_t pid, const std::filesystem::path& images, std::chrono::milliseconds deadline,
                          bool leave_running = false) {
  DumpOptions o;
  o.pid = pid;
  o.images_dir = images;
  o.deadline = deadline;
  o.leave_running = leave_running;
  return o;
}

// `pid`, our child, runs on: neither stopped nor ended, and its progress in
// `out` grows by `by` within `timeout`.
inline void ExpectRunsOn(pid_t pid, const std::filesystem::path& out, uint64_t by,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  char state = ProcState(pid);
  EXPECT_TRUE(state == 'S' || state == 'R') << "state " << state;
  uint64_t before = ReadProgress(out).n;
  EXPECT_TRUE(WaitProgress(out, before + by, timeout)) << "progress stuck at " << before;
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, WNOHANG), 0)
      << "target ended: " << (WIFSIGNALED(status) ? "signal " : "exit ")
      << (WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

class CriuFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    DriverConfig cfg;
    cfg.criu_path = CriuPath();
    auto d = CriuDriver::Create(cfg);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    driver_ = std::move(d).value();
    ProbeResult p = driver_->Probe();
    if (!p.found || !p.version) GTEST_SKIP() << "criu unusable: " << p.error;
  }
  void TearDown() override {
    for (pid_t p : cleanup_) KillTree(p);
  }

  // StartProgressing, the tree killed at TearDown; -1 when it did not
  // reach min_n.
  pid_t StartTarget(const std::string& mode, const std::filesystem::path& out, uint64_t min_n,
                    const std::vector<std::string>& extra = {},
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    pid_t pid = StartProgressing(mode, out, min_n, extra, timeout);
    if (pid > 0) cleanup_.push_back(pid);
    return pid;
  }

  // CRIU's dump (without leave_running) killed `pid`, our child, and the
  // rest of its tree (`tree`: TreeOf(pid) before the dump): reap them all.
  // The children, orphaned, became ours (we are the subreaper): reaped, or
  // their pids stay taken by zombies and CRIU cannot restore them ("Can't
  // fork for N: File exists").
  void ReapDumped(pid_t pid, const std::vector<pid_t>& tree) {
    int st = ReapChild(pid);
    EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << "wait status " << st;
    EXPECT_TRUE(ReapTree(tree)) << "some of the dumped tree is still there";
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  // Restores and checks the root got its old pid back and is not our child
  // through CRIU (it is ours only as the subreaper of an orphan).
  pid_t RestoreSamePid(pid_t old_pid, const std::filesystem::path& images, RestoreOptions o = {}) {
    o.images_dir = images;
    o.deadline = std::chrono::seconds(120);
    auto r = driver_->Restore(o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return -1;
    cleanup_.push_back(r->pid);
    EXPECT_EQ(r->pid, old_pid);
    EXPECT_TRUE(Alive(r->pid));
    return r->pid;
  }

  std::unique_ptr<CriuDriver> driver_;
  std::vector<pid_t> cleanup_;
  TempDir tmp_{"ckptd-criu-test"};
};

}  // namespace ckptd::criu::testing

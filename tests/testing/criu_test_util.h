// Helpers for the tests that run CRIU: starting ckptd_workload, reading its
// progress file, killing and reaping process trees.
//
// A test process that uses them is a child subreaper (see
// criu_test_util.cpp): a restored tree is re-parented to it once `criu
// swrk` exits, so the tests can reap everything they restored (PID 1 of
// some containers never reaps).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/testing/test_util.h"

namespace ckptd::criu::testing {

using ckptd::testing::TempDir;

std::string CriuPath();      // $CKPTD_CRIU, else CKPTD_CRIU_DEFAULT
std::string WorkloadPath();  // the built ckptd_workload

// fork+exec; the child is ours (waitpid-able).
pid_t Spawn(const std::vector<std::string>& argv);
// Starts `ckptd_workload mode --out out extra...` with --log out.log.
pid_t StartWorkload(const std::string& mode, const std::filesystem::path& out,
                    const std::vector<std::string>& extra = {});

// StartWorkload, then waits until its progress reaches `min_n`; -1 (the
// workload killed) when it does not within `timeout`.
pid_t StartProgressing(const std::string& mode, const std::filesystem::path& out, uint64_t min_n,
                       const std::vector<std::string>& extra = {},
                       std::chrono::milliseconds timeout = std::chrono::seconds(10));

struct Progress {
  bool valid = false;  // file present and well-formed
  uint64_t n = 0;
  bool ok = false;
};
Progress ReadProgress(const std::filesystem::path& file);
// Waits until the progress is valid, ok and n >= min_n.
bool WaitProgress(const std::filesystem::path& file, uint64_t min_n,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10));

// 'R', 'S', 'T', 'Z', ... of the main thread; 0 when the process is gone.
char ProcState(pid_t pid);
pid_t ParentOf(pid_t pid);
std::vector<pid_t> ChildrenOf(pid_t pid);
// Last field of "NSpid:" (the pid inside the innermost namespace).
pid_t InnermostPid(pid_t pid);

// The counter workload as the init of its own pid namespace (`unshare --pid
// --fork`, with `--mount-proc` also a mount namespace of its own) writing
// `out`. Sets *unshare to the unshare process (kill that tree to end it);
// returns the workload's pid as we see it, or -1 with *why if it did not
// start counting as pid 1.
pid_t StartCounterInOwnPidNs(const std::filesystem::path& out, bool mount_proc, pid_t* unshare, std::string* why);
// The original (the unshare tree) and a restored copy both count into
// `out`: kills the original; "" when the copy goes on from no less than
// at_dump, else what is wrong.
std::string CopyCountsOnAfterOriginalDies(pid_t unshare, pid_t original_init, const std::filesystem::path& out,
                                          uint64_t at_dump);
bool Alive(pid_t pid);  // exists and is not a zombie

// Waits for our child `pid` to end; returns its wait status or -1 on timeout.
int ReapChild(pid_t pid, std::chrono::milliseconds timeout = std::chrono::seconds(10));
// A dumped child whose end we expect: true once we reaped it or it is gone
// already, reaped by an in-process daemon's orphan reaper (which takes a
// zombie child after a second's grace). False if it still runs.
bool ReapedOrGone(pid_t pid, std::chrono::milliseconds timeout = std::chrono::seconds(10));
// The pids of the tree rooted at `pid` (root first).
std::vector<pid_t> TreeOf(pid_t pid);
// Reaps what of `tree` is ours until every pid of it is gone (or 10 s).
bool ReapTree(const std::vector<pid_t>& tree);
// SIGKILLs the whole tree under `pid` and reaps what is ours (directly or by
// subreaping); waits until every pid of the tree is gone.
void KillTree(pid_t pid);

// The workloads (and restored trees) of a test, each killed with its tree
// by KillAll() or on destruction.
class Targets {
 public:
  Targets() = default;
  ~Targets() { KillAll(); }
  Targets(const Targets&) = delete;
  Targets& operator=(const Targets&) = delete;
  // StartProgressing, kept; -1 when it did not reach min_n.
  pid_t Start(const std::string& mode, const std::filesystem::path& out, uint64_t min_n,
              const std::vector<std::string>& extra = {},
              std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    pid_t pid = StartProgressing(mode, out, min_n, extra, timeout);
    if (pid > 0) pids_.push_back(pid);
    return pid;
  }
  void Add(pid_t pid) { pids_.push_back(pid); }
  void KillAll() {
    for (pid_t p : pids_) KillTree(p);
    pids_.clear();
  }

 private:
  std::vector<pid_t> pids_;
};

// Kills a tree with KillTree when it goes out of scope (however the scope
// ends, e.g. a benchmark's failure unwinding), unless Kill() ran first.
class TreeKiller {
 public:
  explicit TreeKiller(pid_t pid) : pid_(pid) {}
  ~TreeKiller() { Kill(); }
  TreeKiller(const TreeKiller&) = delete;
  TreeKiller& operator=(const TreeKiller&) = delete;
  void Kill() {
    KillTree(pid_);
    pid_ = -1;
  }

 private:
  pid_t pid_;
};

}  // namespace ckptd::criu::testing

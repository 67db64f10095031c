// Processes by identity: a pid together with its start time, so that a pid
// the kernel has handed to another process since is never mistaken for (or
// signalled as) the one recorded. Used by the job journal (what a dead
// daemon left running: CRIU, a target tree, a half-restored tree) and by
// the pipelines.
//
// Contract: every function reads /proc afresh and never throws; a process
// that disappears while it is read counts as gone. Signals go only to a pid
// whose start time still matches (a tiny race with pid reuse remains between
// the check and kill(2); pidfds close it for our own children only).
// Thread safety: free functions without shared state.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ckptd {

struct ProcRef {
  int pid = 0;
  uint64_t start = 0;  // /proc/<pid>/stat field 22: clock ticks after boot
  bool operator==(const ProcRef&) const = default;
};

// Field 22 of /proc/<pid>/stat; nullopt when the process is gone.
std::optional<uint64_t> ProcStartTime(int pid);
// The pid with its start time now; nullopt when gone.
std::optional<ProcRef> Identify(int pid);
// Now, in the units of ProcStartTime (a process started later has a
// larger start time).
uint64_t BootTicksNow();

// The main thread's state letter ('R', 'S', 'T', 't', 'Z', ...); 0 when gone.
char ProcState(int pid);
// Exists with the same start time and is not a zombie (or dead).
bool IsAlive(const ProcRef& p);
// TracerPid of /proc/<pid>/status (0: not traced); -1 when gone.
int TracerPid(int pid);
// Some thread of `pid` is stopped ('T' or 't') or the process is traced:
// it does not run on by itself.
bool IsHeld(int pid);

// The pids of the tree rooted at `root` (root first), from
// /proc/<pid>/task/<tid>/children; empty when root is gone.
std::vector<int> TreePids(int root);
// The same with start times (members that vanish while read are left out).
std::vector<ProcRef> TreeOf(int root);

// The pid of `pid` in the innermost PID namespace of `root`, the
// namespace a checkpoint of root's tree restores (NSpid of
// /proc/<pid>/status, the entry at root's depth); nullopt when either is
// gone or `pid` is not in root's namespace. Equal to `pid` for a tree in the
// daemon's own namespace.
std::optional<int> PidSeenFrom(int pid, int root);
// The host pids of the members of the tree rooted at `root` whose
// PidSeenFrom(root) are `ns_pids`, in their order: after a restore into a
// new PID namespace (a container) the same processes have new host pids.
// nullopt when the tree lacks one of them.
std::optional<std::vector<int>> HostPidsOf(int root, const std::vector<int>& ns_pids);

// SIGKILL to `p` if it is still that process; true when it was sent.
bool KillRef(const ProcRef& p);
// SIGKILL to every member of the tree rooted at `root`; how many.
int KillTree(int root);
// SIGCONT to every member of the tree whose threads are stopped; how many.
int ContinueTree(int root);
// Waits until `p` is gone or a zombie; true when it is within `timeout`.
bool WaitGone(const ProcRef& p, std::chrono::milliseconds timeout);
// Some member of the tree rooted at `root` is traced (a CRIU dumping it
// has seized it; its parasite can be inside only then).
bool TreeTraced(int root);
// Waits until no member of the tree rooted at `root` is traced (the kernel
// detaches tracees when their tracer dies); true when none is.
bool WaitUntracedTree(int root, std::chrono::milliseconds timeout);

// `tid` is a thread of this process (its /proc/self/task entry).
bool IsOwnThread(int tid);
// A kernel thread (kthreadd, pid 2, and its children: PF_KTHREAD in
// /proc/<pid>/stat's flags); false when gone.
bool IsKernelThread(int pid);

// The command line with NULs as spaces ("" when gone).
std::string Cmdline(int pid);

}  // namespace ckptd

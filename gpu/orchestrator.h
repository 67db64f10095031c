// GPU side of the checkpoint and restore jobs: drives every GPU process of a
// tree through lock -> checkpoint before the CRIU dump, and restore -> unlock
// after it (leave-running) or after a CRIU restore, recording the state
// transitions and the time of each step and each phase for the checkpoint's
// info JSON.
//
// Phases: the processes of a tree move together. Each call runs one phase at
// a time over every process at once (one thread per process, at most
// options.max_parallel): all are locked before any is checkpointed, all are
// restored before any is unlocked. Ranks of a multi-process job (NCCL, a
// DataLoader pool) can only be locked while none of them waits on another,
// so locking them one after the other would time out or deadlock.
//
// Contract (all-or-nothing):
// - LockAll: every process ends LOCKED (or further), or the call fails and
//   every process it was given is back to RUNNING (restore + unlock, with
//   retries) before it returns. "Already locked" and "already checkpointed"
//   are not failures. A lock that times out leaves that process RUNNING
//   (driver rule).
// - CheckpointAll: every process ends CHECKPOINTED, or all go back to
//   RUNNING as above. PrepareForDump is LockAll, then CheckpointAll.
// - ResumeAfterDump: restores every process, then unlocks every one (RUNNING
//   is fine); it tries all processes even when one fails and returns the
//   first error with the others appended.
// - RestoreAfterCriu: restore (with the device map) of every process, then
//   unlock of every one; a failure in the restore phase fails the call
//   before any process is unlocked (the caller kills the restored tree).
// - A process in the FAILED state is an error (the driver cannot recover it).
// - Restore/unlock are retried (options.resume_attempts) because leaving a
//   process frozen is worse than a slow resume.
// Thread safety: one orchestrator call at a time per set of PIDs (the calls
// start their own threads, which all end before the call returns); the
// checkpointer must outlive the orchestrator and be safe to call from many
// threads (gpu/checkpointer.h). `report` may be null.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "common/status.h"
#include "gpu/checkpointer.h"

namespace ckptd::gpu {

struct GpuStep {
  std::string phase;                    // "prepare" | "rollback" | "resume" | "restore"
  std::string op;                       // "get-state" | "lock" | "checkpoint" | "restore" | "unlock"
  std::optional<GpuProcessState> from;  // state before the step (actions)
  std::optional<GpuProcessState> to;    // state after (get-state: the state read)
  double ms = 0;
  bool ok = true;
  std::string error;  // set when !ok
};

struct GpuProcessReport {
  int pid = 0;
  std::optional<GpuProcessState> initial_state;  // first state read
  std::optional<GpuProcessState> final_state;    // last state known
  std::vector<GpuStep> steps;
  // Device memory in use before the lock, where a probe could tell (NVML).
  std::optional<uint64_t> device_memory_bytes;
  // Sum of ms per op over the steps ("lock" -> 12.5).
  double MsFor(std::string_view op) const;
};

struct GpuReport {
  GpuDriverInfo driver;
  std::vector<GpuProcessReport> processes;
  double prepare_ms = 0, resume_ms = 0, restore_ms = 0;
  // Wall time of each phase over all processes, by "<phase>/<op>"
  // ("prepare/lock" -> 201.3), summed when a phase runs more than once.
  std::map<std::string, double> phase_ms;
  // Where the processes' device_memory_bytes came from ("nvml"); empty: none.
  std::string device_memory_source;
  GpuProcessReport& ForPid(int pid);
  const GpuProcessReport* Find(int pid) const;
  // {"driver":{...},"prepare_ms":..,"resume_ms":..,"restore_ms":..,
  //  "phase_ms":{"prepare/lock":..,"prepare/checkpoint":..},
  //  "device_memory_source":"nvml", "device_memory_bytes":<sum> (when known),
  //  "processes":[{"pid":..,"initial_state":"running","final_state":"checkpointed",
  //                "lock_ms":..,"checkpoint_ms":..,"restore_ms":..,"unlock_ms":..,
  //                "device_memory_bytes":.. (when known),
  //                "steps":[{"phase":"prepare","op":"lock","from":"running","to":"locked","ms":1.2,"ok":true}]}]}
  boost::json::value ToJson() const;
};

struct OrchestratorOptions {
  int resume_attempts = 3;  // per process, for restore/unlock failures
  std::chrono::milliseconds retry_backoff{100};
  // Processes driven at once within a phase: 0 = all of them; 1 = one after
  // the other (what the benchmark compares against).
  int max_parallel = 0;
};

class GpuOrchestrator {
 public:
  explicit GpuOrchestrator(GpuCheckpointer* checkpointer, OrchestratorOptions options = {})
      : ckpt_(checkpointer), opts_(options) {}

  Status PrepareForDump(const std::vector<int>& pids, std::chrono::milliseconds lock_timeout, GpuReport* report);
  Status LockAll(const std::vector<int>& pids, std::chrono::milliseconds lock_timeout, GpuReport* report);
  Status CheckpointAll(const std::vector<int>& pids, GpuReport* report);
  Status ResumeAfterDump(const std::vector<int>& pids, GpuReport* report);
  Status RestoreAfterCriu(const std::vector<int>& pids, const DeviceMap& device_map, GpuReport* report);

 private:
  using PerProcess = std::function<Status(int pid, GpuProcessReport* pr)>;

  Result<GpuProcessState> Observe(int pid, const char* phase, GpuProcessReport* pr);
  Status Act(int pid, const char* phase, const char* op, GpuProcessState from, GpuProcessState to, GpuProcessReport* pr,
             const std::function<Status()>& fn);
  // fn for every pid at once (up to max_parallel threads); the statuses in
  // pid order. The wall time goes to report->phase_ms["<phase>/<op>"].
  std::vector<Status> RunPhase(const std::vector<int>& pids, const char* phase, const char* op, GpuReport* report,
                               const PerProcess& fn);
  // Drives one process up to `target` (kLocked or kCheckpointed).
  Status PrepareOne(int pid, GpuProcessState target, std::chrono::milliseconds lock_timeout, GpuProcessReport* pr);
  // Up to `target` for each, in one phase; on a failure every process goes
  // back to RUNNING.
  Status Prepare(const std::vector<int>& pids, GpuProcessState target, std::chrono::milliseconds lock_timeout,
                 GpuReport* report);
  // Down to `target` (kLocked: restore a checkpointed process; kRunning:
  // restore and unlock); a RUNNING process is left as it is.
  Status BringTo(int pid, GpuProcessState target, const DeviceMap& map, const char* phase, GpuProcessReport* pr);
  // The restore phase, then the unlock phase, for every process. With
  // stop_on_restore_failure, a failed restore phase ends the call (nothing
  // is unlocked); else the processes whose restore failed are left out of
  // the unlock phase and every failure is returned.
  std::vector<Status> BringAllToRunning(const std::vector<int>& pids, const DeviceMap& map, const char* phase,
                                        bool stop_on_restore_failure, GpuReport* report);

  GpuCheckpointer* ckpt_;
  OrchestratorOptions opts_;
};

}  // namespace ckptd::gpu

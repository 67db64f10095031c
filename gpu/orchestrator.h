// GPU side of the checkpoint and restore jobs: drives every GPU process of a
// tree through lock -> checkpoint before the CRIU dump, and restore -> unlock
// after it (leave-running) or after a CRIU restore, recording the state
// transitions and the time of each step for the checkpoint's info JSON.
//
// Contract:
// - PrepareForDump: every process ends CHECKPOINTED, or the call fails and
//   every process it examined is brought back to RUNNING (restore + unlock,
//   with retries) before it returns. "Already locked" and "already
//   checkpointed" are not failures: the missing steps are done / skipped. A
//   lock that times out leaves that process RUNNING (driver rule).
// - LockAll / CheckpointAll: the same in two phases, so a job can journal
//   between them: every process ends LOCKED (or further), then every one
//   CHECKPOINTED; a failure in either brings every process it was given
//   back to RUNNING before it returns. PrepareForDump is LockAll, then
//   CheckpointAll.
// - ResumeAfterDump: brings every process back to RUNNING whatever its state
//   (RUNNING is fine); it tries all processes even when one fails and returns
//   the first error with the others appended.
// - RestoreAfterCriu: restore (with the device map) + unlock each process;
//   stops at the first failure (the caller kills the restored tree).
// - A process in the FAILED state is an error (the driver cannot recover it).
// - Restore/unlock are retried (options.resume_attempts) because leaving a
//   process frozen is worse than a slow resume.
// Thread safety: one orchestrator call at a time per set of PIDs; the
// checkpointer must outlive the orchestrator. `report` may be null.
#pragma once

#include <chrono>
#include <functional>
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
  // Sum of ms per op over the steps ("lock" -> 12.5).
  double MsFor(std::string_view op) const;
};

struct GpuReport {
  GpuDriverInfo driver;
  std::vector<GpuProcessReport> processes;
  double prepare_ms = 0, resume_ms = 0, restore_ms = 0;
  GpuProcessReport& ForPid(int pid);
  const GpuProcessReport* Find(int pid) const;
  // {"driver":{...},"prepare_ms":..,"resume_ms":..,"restore_ms":..,
  //  "processes":[{"pid":..,"initial_state":"running","final_state":"checkpointed",
  //                "lock_ms":..,"checkpoint_ms":..,"restore_ms":..,"unlock_ms":..,
  //                "steps":[{"phase":"prepare","op":"lock","from":"running","to":"locked","ms":1.2,"ok":true}]}]}
  boost::json::value ToJson() const;
};

struct OrchestratorOptions {
  int resume_attempts = 3;  // per process, for restore/unlock failures
  std::chrono::milliseconds retry_backoff{100};
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
  Result<GpuProcessState> Observe(int pid, const char* phase, GpuProcessReport* pr);
  Status Act(int pid, const char* phase, const char* op, GpuProcessState from, GpuProcessState to, GpuProcessReport* pr,
             const std::function<Status()>& fn);
  // Drives one process up to `target` (kLocked or kCheckpointed).
  Status PrepareOne(int pid, GpuProcessState target, std::chrono::milliseconds lock_timeout, GpuProcessReport* pr);
  // Up to `target` for each, in order; on a failure every process examined
  // (all of them with rollback_all) goes back to RUNNING.
  Status Prepare(const std::vector<int>& pids, GpuProcessState target, std::chrono::milliseconds lock_timeout,
                 bool rollback_all, GpuReport* report);
  Status BringToRunning(int pid, const DeviceMap& map, const char* phase, GpuProcessReport* pr);

  GpuCheckpointer* ckpt_;
  OrchestratorOptions opts_;
};

}  // namespace ckptd::gpu

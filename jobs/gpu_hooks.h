// The GPU side of the checkpoint and restore jobs (JobHooks implemented with
// gpu/): finds the GPU processes of the target tree and drives them through
// the orchestrator around CRIU.
//
// Contract
// - gpu mode "off": nothing is touched (catalog gpu "none").
// - "auto": GPU processes of the tree, if any, are locked (lock_timeout) and
//   checkpointed; none found: nothing to do. Found but the driver is
//   unavailable: the job fails ("GPU checkpointing unavailable: <why>")
//   rather than dumping a process whose device memory CRIU cannot save.
// - "on": refused at submit time (503) when the driver is unavailable; the
//   job fails when the tree has no GPU process (the caller asked for a GPU
//   checkpoint and would otherwise get a CPU-only one silently).
// - BeforeDump fails with every GPU process back to RUNNING (the
//   orchestrator rolls back). AfterDump with leave_running or !dumped brings
//   them back to RUNNING; after a good dump without leave_running CRIU ended
//   the tree and nothing is left to do.
// - AfterRestore: restore (with ctx->device_map) + unlock of ctx->pids; the
//   caller kills the tree on error.
// - ctx->report is the GpuReport JSON (driver, per-process states, ms per
//   step); ctx->model is "cuda" when GPU processes were checkpointed (the
//   driver API gives no GPU model), else "none".
// Thread safety: hooks of different jobs may run at once; each call works on
// its own context and the checkpointer is thread-safe.
#pragma once

#include <chrono>
#include <memory>

#include "jobs/job_manager.h"
#include "gpu/checkpointer.h"
#include "gpu/discovery.h"
#include "gpu/orchestrator.h"

namespace ckptd {

class GpuHooks final : public JobHooks {
 public:
  GpuHooks(gpu::GpuBackend backend, std::chrono::milliseconds lock_timeout,
           gpu::DiscoveryOptions discovery = {}, gpu::OrchestratorOptions orchestrator = {});

  Status CheckMode(const std::string& mode) override;
  Status BeforeDump(int pid, GpuJobContext* ctx) override;
  Status AfterDump(int pid, bool dumped, bool leave_running, GpuJobContext* ctx) override;
  Status AfterRestore(int pid, GpuJobContext* ctx) override;

  const gpu::GpuAvailability& availability() const { return backend_.availability; }

 private:
  std::string Unavailable() const;

  gpu::GpuBackend backend_;
  std::chrono::milliseconds lock_timeout_;
  gpu::DiscoveryOptions discovery_;
  gpu::OrchestratorOptions orch_opts_;
};

}  // namespace ckptd

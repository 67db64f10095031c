// The GPU side of the checkpoint and restore jobs (JobHooks implemented with
// gpu/): finds the GPU processes of the target tree and drives them through
// the orchestrator around CRIU.
//
// Contract (beyond jobs/job_hooks.h)
// - gpu mode "off": nothing is touched (catalog gpu "none").
// - "auto": the tree's GPU processes, if any, are handled; none found:
//   nothing to do. Found but the driver is unavailable: Find fails ("GPU
//   checkpointing unavailable: <why>") rather than let CRIU dump a process
//   whose device memory it cannot save.
// - "on": refused at submit time (503) when the driver is unavailable; Find
//   fails when the tree has no GPU process (the caller asked for a GPU
//   checkpoint and would otherwise get a CPU-only one silently).
// - Lock times out after lock_timeout per process (the driver leaves it
//   RUNNING); Lock and Checkpoint roll every process back on failure.
// - ctx->model is the model of the node's first GPU ("NVIDIA H200") once GPU
//   processes were checkpointed (or, for a restore, once PlanRestore looked
//   at this node's GPUs), "cuda" when the backend cannot list the GPUs, else
//   "none". Checkpoint records the node's GPUs and driver version in
//   ctx->platform for the manifest.
// - Lock first records each process's device memory in the report, where
//   the backend has NVML (report "device_memory_bytes"); a failing NVML is
//   logged, never fails the job.
// - PlanRestore refuses a node the checkpoint cannot run on (older driver,
//   fewer GPUs, other models) and settles the device map (gpu/compat.h);
//   without a recorded platform (older manifests) or a backend that cannot
//   list GPUs it passes the request through unchecked.
// Thread safety: hooks of different jobs may run at once; each call works on
// its own context and the checkpointer is thread-safe.
#pragma once

#include <chrono>
#include <memory>

#include "gpu/checkpointer.h"
#include "gpu/compat.h"
#include "gpu/discovery.h"
#include "gpu/orchestrator.h"
#include "jobs/job_hooks.h"

namespace ckptd {

class GpuHooks final : public JobHooks {
 public:
  GpuHooks(gpu::GpuBackend backend, std::chrono::milliseconds lock_timeout, gpu::DiscoveryOptions discovery = {},
           gpu::OrchestratorOptions orchestrator = {});

  Status CheckMode(const std::string& mode) override;
  Status Find(int pid, GpuJobContext* ctx) override;
  Status Lock(GpuJobContext* ctx) override;
  Status Checkpoint(GpuJobContext* ctx) override;
  Status Resume(GpuJobContext* ctx) override;
  Status PlanRestore(GpuJobContext* ctx) override;
  Status AfterRestore(int pid, GpuJobContext* ctx) override;

  const gpu::GpuAvailability& availability() const { return backend_.availability; }

 private:
  std::string Unavailable() const;
  // The context's report, created on first use.
  gpu::GpuReport* Report(GpuJobContext* ctx) const;
  // Each GPU process's device memory into the report, before the lock
  // (a checkpointed process holds none); nothing when NVML is not there.
  void RecordDeviceMemory(GpuJobContext* ctx) const;
  // The node's platform; Unavailable when the backend cannot list its GPUs.
  Result<gpu::GpuPlatform> Platform() const;

  gpu::GpuBackend backend_;
  std::chrono::milliseconds lock_timeout_;
  gpu::DiscoveryOptions discovery_;
  gpu::OrchestratorOptions orch_opts_;
};

}  // namespace ckptd

// The GPU seam of the job pipelines: what a job asks of the GPU around
// CRIU, in steps the job journals one by one (jobs/journal.h). The default
// implementation has no GPU support: it finds no GPU processes and refuses
// gpu=on; jobs/gpu_hooks.h implements it with gpu/.
//
// Contract of every implementation:
// - Lock and Checkpoint are all-or-nothing over ctx->pids: when one fails,
//   every process is back to RUNNING before the call returns.
// - Resume brings every process of ctx->pids back to RUNNING whatever its
//   state (retrying; it tries them all even when one fails).
// - AfterRestore restores (with ctx->device_map) and unlocks ctx->pids
//   after CRIU restored the tree; on error the caller kills the tree.
// - ctx->report is the GPU report JSON after each call (null when no GPU
//   work was done).
// Thread safety: calls for different jobs may run at once; each works on
// its own context.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/value.hpp>

#include "common/proc.h"
#include "common/status.h"

namespace ckptd {

namespace gpu {
struct GpuReport;
}

// What a job tells the GPU seam and what the seam hands back. Owned by the
// job; the same object is passed to every hook of that job.
struct GpuJobContext {
  std::string mode = "auto";  // checkpoint: auto | on | off (api::CheckpointJobRequest::gpu)
  std::vector<std::pair<std::string, std::string>> device_map;  // restore: GPU UUID from -> to
  std::vector<int> pids;                  // the GPU processes handled (checkpoint: found; restore: from the manifest)
  // Their pids in the tree root's PID namespace (common/proc.h PidSeenFrom):
  // what identifies them after a restore into a new PID namespace. Empty
  // when not known (older checkpoints): pids are used as they are.
  std::vector<int> ns_pids;
  std::string model = "none";             // the catalog's gpu field: GPU model, "cuda", or "none"
  boost::json::value report;              // GpuReport::ToJson() (null when no GPU work was done)
  std::shared_ptr<gpu::GpuReport> state;  // the hooks' own record between calls
  // Checkpoint: the node's GPU platform (gpu::GpuPlatform::ToJson, null when
  // the backend cannot list GPUs), for the manifest; restore: the manifest's.
  boost::json::value platform;
  std::string log_tag;                    // "job <id> checkpoint <id>", leads the hooks' log lines
};

// After a restore of the tree rooted at `root`: ctx->pids become the host
// pids of ctx->ns_pids in that tree (a container's restore gives its
// processes new host pids; a tree in the daemon's namespace keeps them).
// NotFound when the tree lacks one; nothing changes without ns_pids.
inline Status FollowRestoredGpuPids(int root, GpuJobContext* ctx) {
  if (ctx->ns_pids.empty() || ctx->ns_pids.size() != ctx->pids.size()) return Status::Ok();
  std::optional<std::vector<int>> host = HostPidsOf(root, ctx->ns_pids);
  if (!host) return NotFound("a GPU process of the checkpoint is not in the restored tree of pid " + std::to_string(root));
  ctx->pids = std::move(*host);
  return Status::Ok();
}

class JobHooks {
 public:
  virtual ~JobHooks() = default;
  // At submit time: Unavailable when `mode` is "on" and GPU checkpointing
  // cannot work here.
  virtual Status CheckMode(const std::string& mode) {
    if (mode == "on") return Unavailable("GPU checkpointing unavailable: no GPU support in this daemon");
    return Status::Ok();
  }
  // The GPU processes of the tree rooted at `pid` to handle (ctx->mode
  // "off": none), into ctx->pids. Errors: gpu=on and none found; GPU
  // processes found but no driver to checkpoint them.
  virtual Status Find(int pid, GpuJobContext* ctx) { return Status::Ok(); }
  // RUNNING -> LOCKED for every process of ctx->pids.
  virtual Status Lock(GpuJobContext* ctx) { return Status::Ok(); }
  // LOCKED -> CHECKPOINTED (device memory to host) for every process.
  virtual Status Checkpoint(GpuJobContext* ctx) { return Status::Ok(); }
  // Back to RUNNING (restore + unlock): after a leave-running dump, after a
  // failure, and at recovery.
  virtual Status Resume(GpuJobContext* ctx) { return Status::Ok(); }
  // Before a restore of ctx->pids touches anything: whether this node can
  // take GPU processes checkpointed on ctx->platform, and the device map to
  // use (ctx->device_map: the request's, checked, or an automatic one).
  // Errors name the reason (gpu/compat.h).
  virtual Status PlanRestore(GpuJobContext* ctx) { return Status::Ok(); }
  // After CRIU restored the tree rooted at `pid`.
  virtual Status AfterRestore(int pid, GpuJobContext* ctx) { return Status::Ok(); }
};

}  // namespace ckptd

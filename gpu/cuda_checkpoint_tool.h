// Backend 2: NVIDIA's cuda-checkpoint utility (driver 550+; --timeout and
// --action from 570, --device-map from 580), run through the ProcessRunner
// seam. CLI used:
//   cuda-checkpoint --get-state --pid N            -> prints running|locked|checkpointed|failed
//   cuda-checkpoint --action lock --pid N [--timeout MS]
//   cuda-checkpoint --action checkpoint|unlock --pid N
//   cuda-checkpoint --action restore --pid N [--device-map old=new,...]
//   cuda-checkpoint --help                          -> "Version 580.65.06. ..."
//
// Contract: every run has a deadline (config.tool_deadline, plus the lock
// timeout for lock); a non-zero exit becomes an error carrying the command and
// the tool's output. Probe() runs --help once to check the tool starts.
// Thread safety: safe to call concurrently (stateless; the runner is).
#pragma once

#include <memory>
#include <string>

#include "common/subprocess.h"
#include "gpu/checkpointer.h"

namespace ckptd::gpu {

class CudaCheckpointTool final : public GpuCheckpointer {
 public:
  // Finds the tool (PATH lookup for a bare name), runs --help, reads the
  // version. Unavailable("GPU checkpointing unavailable: ...") on failure.
  static Result<std::unique_ptr<CudaCheckpointTool>> Probe(const GpuConfig& config, ProcessRunner* runner);

  Result<GpuProcessState> GetState(int pid) override;
  Status Lock(int pid, std::chrono::milliseconds timeout) override;
  Status Checkpoint(int pid) override;
  Status Restore(int pid, const DeviceMap& device_map) override;
  Status Unlock(int pid) override;
  GpuDriverInfo DriverInfo() const override { return info_; }

  const std::string& path() const { return path_; }

 private:
  CudaCheckpointTool(std::string path, const GpuConfig& config, ProcessRunner* runner)
      : path_(std::move(path)), config_(config), runner_(runner) {}
  // Runs the tool; error if it cannot start, times out or exits non-zero.
  Result<RunResult> RunTool(std::vector<std::string> args, std::chrono::milliseconds extra_deadline, bool lock_action);

  std::string path_;
  GpuConfig config_;
  ProcessRunner* runner_;
  GpuDriverInfo info_;
};

// A bare name is searched in $PATH; a name with '/' is checked as is.
// Returns the path of an executable file, or NotFound.
Result<std::string> FindExecutable(const std::string& name_or_path);

}  // namespace ckptd::gpu

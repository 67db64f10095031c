// The GPU checkpoint seam: one interface, two backends (the CUDA driver API
// loaded with dlopen, and NVIDIA's cuda-checkpoint tool), chosen by
// OpenGpuCheckpointer().
//
// Contract: every method acts on one process (by PID) and returns when the
// driver/tool has finished or failed; errors are Status values carrying the
// entry point or command line and the driver's error name or the tool's
// output. Code mapping: CUDA_ERROR_TIMEOUT / tool deadline -> kDeadlineExceeded,
// CUDA_ERROR_ILLEGAL_STATE -> kConflict, driver not usable (not initialized,
// not supported, no device) -> kUnavailable, bad arguments -> kInvalidArgument,
// anything else -> kInternal.
// Thread safety: implementations are safe to call from many threads at once
// (calls on the same PID must be serialized by the caller, as with the driver).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/value.hpp>

#include "common/status.h"
#include "gpu/nvml.h"

namespace ckptd {
class ProcessRunner;
}

namespace ckptd::gpu {

// Mirrors CUprocessState.
enum class GpuProcessState { kRunning = 0, kLocked = 1, kCheckpointed = 2, kFailed = 3 };

// "running" | "locked" | "checkpointed" | "failed" (cuda-checkpoint's words).
std::string_view StateName(GpuProcessState s);
Result<GpuProcessState> ParseState(std::string_view word);

// A GPU UUID, printed as nvidia-smi does: "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
struct GpuUuid {
  std::array<uint8_t, 16> bytes{};
  std::string ToString() const;
  // Accepts the form above, with or without the "GPU-" prefix.
  static Result<GpuUuid> Parse(std::string_view text);
  bool operator==(const GpuUuid&) const = default;
};

// Restore GPU `old_uuid`'s state onto `new_uuid`. If a map is given it must
// name every GPU the process was checkpointed on (driver rule).
struct GpuPair {
  GpuUuid old_uuid;
  GpuUuid new_uuid;
  bool operator==(const GpuPair&) const = default;
};
using DeviceMap = std::vector<GpuPair>;

// cuda-checkpoint's --device-map format: "old=new,old=new".
std::string FormatDeviceMap(const DeviceMap& map);
Result<DeviceMap> ParseDeviceMap(std::string_view text);

// One GPU of this node, as the driver lists it (ordinal order).
struct GpuDevice {
  GpuUuid uuid;
  std::string name;  // "NVIDIA H200"
  bool operator==(const GpuDevice&) const = default;
};

struct GpuDriverInfo {
  std::string backend;   // "driver-api" | "cuda-checkpoint"
  int cuda_version = 0;  // cuDriverGetVersion, e.g. 13000; 0 when unknown
  std::string version;   // "13.0" (driver API) or the tool's "Version ..." field
  boost::json::value ToJson() const;
};

class GpuCheckpointer {
 public:
  virtual ~GpuCheckpointer() = default;
  virtual Result<GpuProcessState> GetState(int pid) = 0;
  // RUNNING -> LOCKED. timeout 0 = wait forever. On timeout the driver leaves
  // the process RUNNING and we return kDeadlineExceeded.
  virtual Status Lock(int pid, std::chrono::milliseconds timeout) = 0;
  // LOCKED -> CHECKPOINTED (device memory copied to host, GPU released).
  virtual Status Checkpoint(int pid) = 0;
  // CHECKPOINTED -> LOCKED, optionally onto other GPUs.
  virtual Status Restore(int pid, const DeviceMap& device_map) = 0;
  // LOCKED -> RUNNING.
  virtual Status Unlock(int pid) = 0;
  virtual GpuDriverInfo DriverInfo() const = 0;
  // The node's GPUs; Unavailable where the backend cannot list them (the
  // cuda-checkpoint tool, no driver).
  virtual Result<std::vector<GpuDevice>> Devices() { return Unavailable("this GPU backend cannot list the GPUs"); }
};

// ---- choosing a backend ---------------------------------------------------

struct GpuConfig {
  // dlopen() name or path of the CUDA driver; the fake lives at
  // <build>/tests/fake_cuda/libcuda.so.1.
  std::string driver_library = "libcuda.so.1";
  // cuda-checkpoint: a name looked up in PATH, or a path. Empty: no fallback.
  std::string tool_path = "cuda-checkpoint";
  // Deadline of each tool run (a lock run gets its lock timeout on top).
  std::chrono::milliseconds tool_deadline{std::chrono::seconds(120)};
  // Extra environment for tool runs (tests point the fake at its state dir).
  std::vector<std::pair<std::string, std::string>> tool_env;
  // Try the driver API at all (false: go straight to the tool).
  bool use_driver_api = true;
  // dlopen() name or path of NVML, for each process's device memory (the
  // fake: <build>/tests/fake_cuda/libnvidia-ml.so.1). Empty: not used.
  std::string nvml_library = "libnvidia-ml.so.1";
};

// For /healthz and the checkpoint's platform info.
struct GpuAvailability {
  bool available = false;
  std::string backend = "none";  // "driver-api" | "cuda-checkpoint" | "none"
  // Why not (or why the fallback): "GPU checkpointing unavailable: ..."
  std::string reason;
  GpuDriverInfo driver;
  boost::json::value ToJson() const;
};

struct GpuBackend {
  // Never null: when unavailable it answers every call with
  // Unavailable("GPU checkpointing unavailable: <reason>").
  std::unique_ptr<GpuCheckpointer> checkpointer;
  GpuAvailability availability;
  // Each process's device memory; null when NVML is not there (why: in
  // memory_unavailable) or no checkpointing backend is.
  std::unique_ptr<GpuMemoryProbe> memory;
  std::string memory_unavailable;
};

// Driver API first (library loads, has the entry points, cuInit succeeds),
// then the tool (found and `--help` answers), else unavailable; with a
// backend, NVML for the device memory when it opens.
// `runner` must outlive the returned checkpointer.
GpuBackend OpenGpuCheckpointer(const GpuConfig& config, ProcessRunner* runner);

// The checkpointer used when no backend works.
std::unique_ptr<GpuCheckpointer> MakeUnavailableCheckpointer(std::string reason);

}  // namespace ckptd::gpu

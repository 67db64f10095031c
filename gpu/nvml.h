// Device memory of the processes using a GPU, through NVML
// (libnvidia-ml.so.1, loaded with dlopen like the driver: no NVIDIA library
// at build or link time). The checkpoint's GPU report gives each process's
// device memory from here: the driver's checkpoint API does not say it.
//
// Contract:
// - OpenNvml: Unavailable with the reason when the library does not load,
//   lacks an entry point or nvmlInit fails; the probe then is simply absent.
// - DeviceMemoryByPid: pid (as the host sees it) -> bytes in use, summed
//   over the GPUs a process uses, for every process NVML lists now; a
//   process whose use NVML cannot tell (NVML_VALUE_NOT_AVAILABLE) is left
//   out. An NVML error fails the call.
// Thread safety: NVML is thread-safe; calls may come from any thread. The
// probe shuts NVML down and unloads it when destroyed.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "common/status.h"

namespace ckptd::gpu {

class GpuMemoryProbe {
 public:
  virtual ~GpuMemoryProbe() = default;
  virtual Result<std::map<int, uint64_t>> DeviceMemoryByPid() = 0;
};

// `library`: dlopen() name or path; the fake lives at
// <build>/tests/fake_cuda/libnvidia-ml.so.1.
Result<std::unique_ptr<GpuMemoryProbe>> OpenNvml(const std::string& library);

namespace nvmlabi {
// NVML's C ABI, as far as the probe uses it.
using nvmlReturn_t = int;
using nvmlDevice_t = struct nvmlDevice_st*;
inline constexpr nvmlReturn_t NVML_SUCCESS = 0;
inline constexpr nvmlReturn_t NVML_ERROR_INSUFFICIENT_SIZE = 7;
inline constexpr unsigned long long NVML_VALUE_NOT_AVAILABLE = ~0ULL;
struct nvmlProcessInfo_t {  // the v2/v3 layout
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
};
}  // namespace nvmlabi

}  // namespace ckptd::gpu

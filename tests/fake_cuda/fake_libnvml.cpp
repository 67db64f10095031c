// Fake NVML, built as libnvidia-ml.so.1: the entry points gpu/nvml.cpp uses,
// with NVML's C signatures. One GPU; its compute processes are the fake
// driver's processes that hold device memory (fake_cuda_state.h,
// DeviceMemory()), so the memory goes away when a process is checkpointed,
// as on the real driver.
// Environment: CKPTD_FAKE_CUDA_STATE_DIR (the fake driver's state dir);
// CKPTD_FAKE_NVML_INIT_ERROR: an nvmlReturn_t for nvmlInit_v2 to return.
#include <cstdlib>
#include <vector>

#include "fake_cuda_state.h"
#include "gpu/nvml.h"

using namespace ckptd::gpu::nvmlabi;

#define FAKE_EXPORT extern "C" __attribute__((visibility("default")))

namespace {
// Any non-null value names the one device.
nvmlDevice_t const kDevice = reinterpret_cast<nvmlDevice_t>(0x1);
constexpr nvmlReturn_t kInvalidArgument = 2;
}  // namespace

FAKE_EXPORT nvmlReturn_t nvmlInit_v2() {
  const char* e = std::getenv("CKPTD_FAKE_NVML_INIT_ERROR");
  return e ? std::atoi(e) : NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlShutdown() { return NVML_SUCCESS; }

FAKE_EXPORT const char* nvmlErrorString(nvmlReturn_t r) {
  switch (r) {
    case NVML_SUCCESS:
      return "Success";
    case kInvalidArgument:
      return "Invalid Argument";
    case NVML_ERROR_INSUFFICIENT_SIZE:
      return "Insufficient Size";
    default:
      return "Unknown Error";
  }
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count) {
  if (!count) return kInvalidArgument;
  *count = 1;
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
  if (!device || index != 0) return kInvalidArgument;
  *device = kDevice;
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int* count,
                                                                 nvmlProcessInfo_t* infos) {
  if (device != kDevice || !count) return kInvalidArgument;
  auto procs = fakecuda::DeviceMemory();
  if (*count < procs.size() || (!infos && !procs.empty())) {
    *count = static_cast<unsigned int>(procs.size());
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  for (size_t i = 0; i < procs.size(); ++i)
    infos[i] = nvmlProcessInfo_t{static_cast<unsigned int>(procs[i].first), procs[i].second, ~0u, ~0u};
  *count = static_cast<unsigned int>(procs.size());
  return NVML_SUCCESS;
}

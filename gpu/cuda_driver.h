// Backend 1: the CUDA driver's checkpoint API, loaded at run time with dlopen.
//
// Contract: Load() dlopens the library (RTLD_NOW | RTLD_LOCAL), resolves the
// five cuCheckpointProcess* entry points plus cuInit and cuDriverGetVersion
// (and, optionally, the device queries Devices() needs),
// calls cuInit(0) (the driver requires it before restore) and reads the
// version. Any of that failing gives Unavailable("GPU checkpointing
// unavailable: <why>"). The library is never dlclosed: the CUDA driver does
// not support being unloaded from a process once initialized.
// Thread safety: all methods may be called concurrently (the driver is).
#pragma once

#include <memory>
#include <string>

#include "gpu/checkpointer.h"
#include "gpu/cuda_abi.h"

namespace ckptd::gpu {

class CudaDriverCheckpointer final : public GpuCheckpointer {
 public:
  static Result<std::unique_ptr<CudaDriverCheckpointer>> Load(const std::string& library);

  Result<GpuProcessState> GetState(int pid) override;
  Status Lock(int pid, std::chrono::milliseconds timeout) override;
  Status Checkpoint(int pid) override;
  Status Restore(int pid, const DeviceMap& device_map) override;
  Status Unlock(int pid) override;
  GpuDriverInfo DriverInfo() const override { return info_; }
  Result<std::vector<GpuDevice>> Devices() override;

 private:
  struct Api {
    cuabi::PFN_cuInit init = nullptr;
    cuabi::PFN_cuDriverGetVersion get_version = nullptr;
    cuabi::PFN_cuCheckpointProcessGetState get_state = nullptr;
    cuabi::PFN_cuCheckpointProcessLock lock = nullptr;
    cuabi::PFN_cuCheckpointProcessCheckpoint checkpoint = nullptr;
    cuabi::PFN_cuCheckpointProcessRestore restore = nullptr;
    cuabi::PFN_cuCheckpointProcessUnlock unlock = nullptr;
    // Optional: without them Devices() is Unavailable.
    cuabi::PFN_cuDeviceGetCount device_count = nullptr;
    cuabi::PFN_cuDeviceGet device_get = nullptr;
    cuabi::PFN_cuDeviceGetName device_name = nullptr;
    cuabi::PFN_cuDeviceGetUuid device_uuid = nullptr;
  };
  CudaDriverCheckpointer(Api api, GpuDriverInfo info) : api_(api), info_(std::move(info)) {}

  Api api_;
  GpuDriverInfo info_;
};

// Status for a failed driver call: "<call>: CUDA_ERROR_X (n)" with the code
// mapping documented in gpu/checkpointer.h.
Status CudaError(cuabi::CUresult r, std::string_view call);

}  // namespace ckptd::gpu

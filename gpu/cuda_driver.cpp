#include "gpu/cuda_driver.h"

#include <dlfcn.h>

#include <cstring>

#include <fmt/format.h>

#include "gpu/dl.h"

namespace ckptd::gpu {

namespace cuabi {
const char* CuResultName(CUresult r) {
  switch (r) {
    case CUDA_SUCCESS:
      return "CUDA_SUCCESS";
    case CUDA_ERROR_INVALID_VALUE:
      return "CUDA_ERROR_INVALID_VALUE";
    case CUDA_ERROR_OUT_OF_MEMORY:
      return "CUDA_ERROR_OUT_OF_MEMORY";
    case CUDA_ERROR_NOT_INITIALIZED:
      return "CUDA_ERROR_NOT_INITIALIZED";
    case CUDA_ERROR_DEINITIALIZED:
      return "CUDA_ERROR_DEINITIALIZED";
    case CUDA_ERROR_NO_DEVICE:
      return "CUDA_ERROR_NO_DEVICE";
    case CUDA_ERROR_OPERATING_SYSTEM:
      return "CUDA_ERROR_OPERATING_SYSTEM";
    case CUDA_ERROR_ILLEGAL_STATE:
      return "CUDA_ERROR_ILLEGAL_STATE";
    case CUDA_ERROR_NOT_FOUND:
      return "CUDA_ERROR_NOT_FOUND";
    case CUDA_ERROR_NOT_READY:
      return "CUDA_ERROR_NOT_READY";
    case CUDA_ERROR_NOT_PERMITTED:
      return "CUDA_ERROR_NOT_PERMITTED";
    case CUDA_ERROR_NOT_SUPPORTED:
      return "CUDA_ERROR_NOT_SUPPORTED";
    case CUDA_ERROR_TIMEOUT:
      return "CUDA_ERROR_TIMEOUT";
    case CUDA_ERROR_UNKNOWN:
      return "CUDA_ERROR_UNKNOWN";
    default:
      return "CUDA_ERROR_OTHER";
  }
}
}  // namespace cuabi

using namespace cuabi;

Status CudaError(CUresult r, std::string_view call) {
  std::string msg = fmt::format("{}: {} ({})", call, CuResultName(r), r);
  switch (r) {
    case CUDA_ERROR_TIMEOUT:
      return DeadlineExceeded(std::move(msg));
    case CUDA_ERROR_ILLEGAL_STATE:
      return Conflict(std::move(msg));
    case CUDA_ERROR_NOT_INITIALIZED:
    case CUDA_ERROR_DEINITIALIZED:
    case CUDA_ERROR_NO_DEVICE:
    case CUDA_ERROR_NOT_SUPPORTED:
    case CUDA_ERROR_NOT_PERMITTED:
      return Unavailable(std::move(msg));
    case CUDA_ERROR_INVALID_VALUE:
      return InvalidArgument(std::move(msg));
    default:
      return Internal(std::move(msg));
  }
}

Result<std::unique_ptr<CudaDriverCheckpointer>> CudaDriverCheckpointer::Load(const std::string& library) {
  auto unavailable = [&](const std::string& why) {
    return Unavailable(fmt::format("GPU checkpointing unavailable: {}: {}", library, why));
  };
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) return unavailable("dlopen: " + DlError());

  Api api;
  std::vector<std::string> missing;
  Resolve(handle, "cuInit", &api.init, &missing);
  Resolve(handle, "cuDriverGetVersion", &api.get_version, &missing);
  Resolve(handle, "cuCheckpointProcessGetState", &api.get_state, &missing);
  Resolve(handle, "cuCheckpointProcessLock", &api.lock, &missing);
  Resolve(handle, "cuCheckpointProcessCheckpoint", &api.checkpoint, &missing);
  Resolve(handle, "cuCheckpointProcessRestore", &api.restore, &missing);
  Resolve(handle, "cuCheckpointProcessUnlock", &api.unlock, &missing);
  Resolve(handle, "cuDeviceGetCount", &api.device_count, nullptr);
  Resolve(handle, "cuDeviceGet", &api.device_get, nullptr);
  Resolve(handle, "cuDeviceGetName", &api.device_name, nullptr);
  Resolve(handle, "cuDeviceGetUuid_v2", &api.device_uuid, nullptr);
  if (!missing.empty()) {
    // Nothing was initialized yet, so unloading is safe here.
    dlclose(handle);
    return unavailable(
        fmt::format("driver lacks the checkpoint API (missing {}; needs driver 570+)", fmt::join(missing, ", ")));
  }

  // Restore needs an initialized driver in the caller (or persistence mode).
  if (CUresult r = api.init(0); r != CUDA_SUCCESS) {
    return unavailable(fmt::format("cuInit: {} ({})", CuResultName(r), r));
  }
  int version = 0;
  if (CUresult r = api.get_version(&version); r != CUDA_SUCCESS) {
    return unavailable(fmt::format("cuDriverGetVersion: {} ({})", CuResultName(r), r));
  }
  GpuDriverInfo info;
  info.backend = "driver-api";
  info.cuda_version = version;
  info.version = fmt::format("{}.{}", version / 1000, (version % 1000) / 10);
  return std::unique_ptr<CudaDriverCheckpointer>(new CudaDriverCheckpointer(api, std::move(info)));
}

Result<GpuProcessState> CudaDriverCheckpointer::GetState(int pid) {
  CUprocessState state = CU_PROCESS_STATE_FAILED;
  CUresult r = api_.get_state(pid, &state);
  if (r != CUDA_SUCCESS) return CudaError(r, fmt::format("cuCheckpointProcessGetState(pid {})", pid));
  if (state < CU_PROCESS_STATE_RUNNING || state > CU_PROCESS_STATE_FAILED) {
    return Internal(fmt::format("cuCheckpointProcessGetState(pid {}): unknown state {}", pid, static_cast<int>(state)));
  }
  return static_cast<GpuProcessState>(state);
}

Status CudaDriverCheckpointer::Lock(int pid, std::chrono::milliseconds timeout) {
  CUcheckpointLockArgs args;
  std::memset(&args, 0, sizeof args);
  // The driver takes an unsigned int; clamp rather than wrap.
  auto ms = timeout.count();
  args.timeoutMs = ms <= 0 ? 0u : ms > 0xFFFFFFFFLL ? 0xFFFFFFFFu : static_cast<unsigned>(ms);
  CUresult r = api_.lock(pid, &args);
  if (r != CUDA_SUCCESS) {
    return CudaError(r, fmt::format("cuCheckpointProcessLock(pid {}, timeout {} ms)", pid, args.timeoutMs));
  }
  return Status::Ok();
}

Status CudaDriverCheckpointer::Checkpoint(int pid) {
  CUcheckpointCheckpointArgs args;
  std::memset(&args, 0, sizeof args);
  CUresult r = api_.checkpoint(pid, &args);
  if (r != CUDA_SUCCESS) return CudaError(r, fmt::format("cuCheckpointProcessCheckpoint(pid {})", pid));
  return Status::Ok();
}

Status CudaDriverCheckpointer::Restore(int pid, const DeviceMap& device_map) {
  std::vector<CUcheckpointGpuPair> pairs(device_map.size());
  for (size_t i = 0; i < device_map.size(); ++i) {
    std::memcpy(pairs[i].oldUuid.bytes, device_map[i].old_uuid.bytes.data(), 16);
    std::memcpy(pairs[i].newUuid.bytes, device_map[i].new_uuid.bytes.data(), 16);
  }
  CUcheckpointRestoreArgs args;
  std::memset(&args, 0, sizeof args);
  args.gpuPairs = pairs.empty() ? nullptr : pairs.data();
  args.gpuPairsCount = static_cast<unsigned>(pairs.size());
  // No map: pass NULL args, the form every driver since 550 accepts.
  CUresult r = api_.restore(pid, pairs.empty() ? nullptr : &args);
  if (r != CUDA_SUCCESS) {
    std::string call = pairs.empty() ? fmt::format("cuCheckpointProcessRestore(pid {})", pid)
                                     : fmt::format("cuCheckpointProcessRestore(pid {}, device map {})", pid,
                                                   FormatDeviceMap(device_map));
    return CudaError(r, call);
  }
  return Status::Ok();
}

Result<std::vector<GpuDevice>> CudaDriverCheckpointer::Devices() {
  if (!api_.device_count || !api_.device_get || !api_.device_name || !api_.device_uuid)
    return Unavailable("the driver lacks cuDeviceGetCount/cuDeviceGet/cuDeviceGetName/cuDeviceGetUuid_v2");
  int count = 0;
  if (CUresult r = api_.device_count(&count); r != CUDA_SUCCESS) return CudaError(r, "cuDeviceGetCount");
  std::vector<GpuDevice> out;
  for (int i = 0; i < count; ++i) {
    CUdevice dev = 0;
    if (CUresult r = api_.device_get(&dev, i); r != CUDA_SUCCESS) return CudaError(r, fmt::format("cuDeviceGet({})", i));
    char name[256] = {};
    if (CUresult r = api_.device_name(name, sizeof name - 1, dev); r != CUDA_SUCCESS)
      return CudaError(r, fmt::format("cuDeviceGetName({})", i));
    CUuuid uuid{};
    if (CUresult r = api_.device_uuid(&uuid, dev); r != CUDA_SUCCESS)
      return CudaError(r, fmt::format("cuDeviceGetUuid({})", i));
    GpuDevice d;
    std::memcpy(d.uuid.bytes.data(), uuid.bytes, 16);
    d.name = name;
    out.push_back(std::move(d));
  }
  return out;
}

Status CudaDriverCheckpointer::Unlock(int pid) {
  CUcheckpointUnlockArgs args;
  std::memset(&args, 0, sizeof args);
  CUresult r = api_.unlock(pid, &args);
  if (r != CUDA_SUCCESS) return CudaError(r, fmt::format("cuCheckpointProcessUnlock(pid {})", pid));
  return Status::Ok();
}

}  // namespace ckptd::gpu

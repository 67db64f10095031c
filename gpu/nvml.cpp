#include "gpu/nvml.h"

#include <vector>

#include <fmt/format.h>

#include "gpu/dl.h"

namespace ckptd::gpu {

using namespace nvmlabi;

namespace {

struct NvmlApi {
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*shutdown)() = nullptr;
  const char* (*error_string)(nvmlReturn_t) = nullptr;
  nvmlReturn_t (*device_count)(unsigned int*) = nullptr;
  nvmlReturn_t (*device_by_index)(unsigned int, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*compute_processes)(nvmlDevice_t, unsigned int*, nvmlProcessInfo_t*) = nullptr;
};

class Nvml final : public GpuMemoryProbe {
 public:
  Nvml(void* handle, NvmlApi api) : handle_(handle), api_(api) {}
  ~Nvml() override {
    api_.shutdown();
    dlclose(handle_);
  }

  Result<std::map<int, uint64_t>> DeviceMemoryByPid() override {
    unsigned int devices = 0;
    CKPTD_RETURN_IF_ERROR(Check(api_.device_count(&devices), "nvmlDeviceGetCount_v2"));
    std::map<int, uint64_t> out;
    for (unsigned int i = 0; i < devices; ++i) {
      nvmlDevice_t dev = nullptr;
      CKPTD_RETURN_IF_ERROR(Check(api_.device_by_index(i, &dev), fmt::format("nvmlDeviceGetHandleByIndex_v2({})", i)));
      CKPTD_ASSIGN_OR_RETURN(std::vector<nvmlProcessInfo_t> procs, ComputeProcesses(dev, i));
      for (const auto& p : procs)
        if (p.usedGpuMemory != NVML_VALUE_NOT_AVAILABLE) out[static_cast<int>(p.pid)] += p.usedGpuMemory;
    }
    return out;
  }

 private:
  Status Check(nvmlReturn_t r, const std::string& call) const {
    if (r == NVML_SUCCESS) return Status::Ok();
    return Unavailable(fmt::format("{}: {} ({})", call, api_.error_string(r), r));
  }

  // The list grows between the size query and the read when a process
  // starts meanwhile: asked again, a few times.
  Result<std::vector<nvmlProcessInfo_t>> ComputeProcesses(nvmlDevice_t dev, unsigned int index) const {
    std::vector<nvmlProcessInfo_t> procs;
    for (int attempt = 0; attempt < 4; ++attempt) {
      unsigned int count = static_cast<unsigned int>(procs.size());
      nvmlReturn_t r = api_.compute_processes(dev, &count, procs.empty() ? nullptr : procs.data());
      if (r == NVML_SUCCESS) {
        procs.resize(count);
        return procs;
      }
      if (r != NVML_ERROR_INSUFFICIENT_SIZE) break;
      procs.resize(count + 8);
    }
    unsigned int count = static_cast<unsigned int>(procs.size());
    return Check(api_.compute_processes(dev, &count, procs.data()),
                 fmt::format("nvmlDeviceGetComputeRunningProcesses_v3({})", index));
  }

  void* handle_;
  NvmlApi api_;
};

}  // namespace

Result<std::unique_ptr<GpuMemoryProbe>> OpenNvml(const std::string& library) {
  auto unavailable = [&](const std::string& why) { return Unavailable(fmt::format("NVML: {}: {}", library, why)); };
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) return unavailable("dlopen: " + DlError());
  NvmlApi api;
  std::vector<std::string> missing;
  Resolve(handle, "nvmlInit_v2", &api.init, &missing);
  Resolve(handle, "nvmlShutdown", &api.shutdown, &missing);
  Resolve(handle, "nvmlErrorString", &api.error_string, &missing);
  Resolve(handle, "nvmlDeviceGetCount_v2", &api.device_count, &missing);
  Resolve(handle, "nvmlDeviceGetHandleByIndex_v2", &api.device_by_index, &missing);
  Resolve(handle, "nvmlDeviceGetComputeRunningProcesses_v3", &api.compute_processes, &missing);
  if (!missing.empty()) {
    dlclose(handle);
    return unavailable(fmt::format("missing {}", fmt::join(missing, ", ")));
  }
  if (nvmlReturn_t r = api.init(); r != NVML_SUCCESS) {
    std::string why = fmt::format("nvmlInit_v2: {} ({})", api.error_string(r), r);
    dlclose(handle);
    return unavailable(why);
  }
  return std::unique_ptr<GpuMemoryProbe>(std::make_unique<Nvml>(handle, api));
}

}  // namespace ckptd::gpu

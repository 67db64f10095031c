#include "tests/testing/cuda_workload.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "common/subprocess.h"
#include "gpu/checkpointer.h"
#include "tests/testing/test_util.h"

namespace ckptd::testing {

std::string CudaWorkloadPath() {
  const char* env = std::getenv("CKPTD_CUDA_WORKLOAD");
  return env && *env ? env : CKPTD_BINARY_DIR "/tests/cuda/ckptd_cuda_workload";
}

std::string WhyNoRealGpu() {
  if (!std::filesystem::exists("/dev/nvidiactl")) return "no NVIDIA driver on this machine (/dev/nvidiactl is absent)";
  gpu::GpuConfig cfg;
  cfg.tool_path = "";
  auto backend = gpu::OpenGpuCheckpointer(cfg, SystemProcessRunner::Default());
  if (!backend.availability.available) return "the NVIDIA driver is not usable: " + backend.availability.reason;
  if (access(CudaWorkloadPath().c_str(), X_OK) != 0) {
    return "the CUDA workload " + CudaWorkloadPath() + " was not built (no nvcc when ckptd was built)";
  }
  return "";
}

namespace {

bool ParseReady(const std::string& line, CudaProcess* p) {
  std::istringstream in(line);
  std::string word, bw;
  if (!(in >> word >> p->pid >> p->uuid) || word != "ready") return false;
  if (in >> bw && bw.rfind("d2h_gbps=", 0) == 0) p->d2h_gbps = std::atof(bw.c_str() + 9);
  return true;
}

}  // namespace

std::vector<CudaProcess> StartCudaWorkload(const std::vector<std::string>& args, size_t processes, pid_t* root,
                                           std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {CudaWorkloadPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  ReadyChild child(argv, processes, timeout);
  std::vector<CudaProcess> ready;
  for (const auto& line : child.ready_lines()) {
    CudaProcess r;
    if (ParseReady(line, &r)) ready.push_back(r);
  }
  *root = child.Release();
  std::stable_partition(ready.begin(), ready.end(), [&](const CudaProcess& r) { return r.pid == *root; });
  return ready;
}

}  // namespace ckptd::testing

// The real CUDA workload (tests/cuda/cuda_workload.cu) for the `gpu` tests
// and the real-GPU benchmark: where it is, whether this machine can run it,
// and starting it.
// Thread safety: free functions, no shared state.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace ckptd::testing {

// $CKPTD_CUDA_WORKLOAD, else the one built next to the tests.
std::string CudaWorkloadPath();

// Why real-GPU tests cannot run here ("" when they can): no NVIDIA driver
// (/dev/nvidiactl), a libcuda.so.1 without the checkpoint API, or no
// CUDA workload (it is built only where nvcc is).
std::string WhyNoRealGpu();

// One process of the workload, from its "ready <pid> <uuid> d2h_gbps=<x>" line.
struct CudaProcess {
  pid_t pid = -1;
  std::string uuid;   // "GPU-xxxxxxxx-..."
  double d2h_gbps = 0;  // its own device-to-host copy of its memory
};

// Starts the workload with `args` and waits (up to `timeout`) for the ready
// lines of `processes` processes; the root's comes first. *root is the
// started process (the caller kills it); fewer lines mean it failed.
std::vector<CudaProcess> StartCudaWorkload(const std::vector<std::string>& args, size_t processes, pid_t* root,
                                           std::chrono::milliseconds timeout = std::chrono::minutes(2));

}  // namespace ckptd::testing

// Finding the GPU processes of a process tree, from procfs.
//
// Contract: the tree is the root plus every descendant, found through
// <proc_root>/<pid>/task/<tid>/children (needs CONFIG_PROC_CHILDREN, as CRIU
// does). A process "uses the GPU" when its maps or open fds name an NVIDIA
// device file (/dev/nvidia*) or the CUDA driver library (libcuda.so*).
// Processes that exit during the walk are skipped; a missing root is
// NotFound; other read errors (e.g. EACCES) are IOError. proc_root is a
// parameter so tests can point at a fake tree ("/proc" in production).
// The walk is bounded (max_processes) so a fork bomb cannot stall a job.
// Thread safety: free functions, no shared state.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace ckptd::gpu {

struct GpuProcessInfo {
  int pid = 0;
  // What matched, e.g. "maps:/dev/nvidiactl", "maps:/usr/lib/x86_64-linux-gnu/libcuda.so.1",
  // "fd:/dev/nvidia0" (deduplicated, at most a few entries).
  std::vector<std::string> evidence;
};

struct DiscoveryOptions {
  std::string proc_root = "/proc";
  size_t max_processes = 65536;
  bool check_fds = true;  // also look at <pid>/fd/* links
};

// Root first, then breadth-first order.
Result<std::vector<int>> ListProcessTree(int root_pid, const DiscoveryOptions& opts = {});

// The subset of the tree that uses the GPU, in tree order.
Result<std::vector<GpuProcessInfo>> FindGpuProcesses(int root_pid, const DiscoveryOptions& opts = {});

// One process; false (not an error) when it has exited meanwhile.
Result<bool> ProcessUsesGpu(int pid, const DiscoveryOptions& opts, std::vector<std::string>* evidence);

// True for "/dev/nvidia*" and any path whose file name starts with "libcuda.so".
bool IsGpuPath(std::string_view path);

}  // namespace ckptd::gpu

// Whether a node can restore a checkpoint's GPU processes, and with which
// device map, decided before CRIU runs.
//
// Contract: GpuPlatform is what the checkpoint's node had: the driver's CUDA
// version and its GPUs in ordinal order (the manifest's "gpu_platform").
// PlanGpuRestore(checkpointed, here, requested) returns the map to pass to
// the driver, or why this node cannot take the checkpoint:
// - a driver older than the checkpoint's, or fewer GPUs: Conflict;
// - a requested map: every pair's `from` is a GPU of the checkpoint and its
//   `to` a GPU of this node, of the same model, no GPU mapped twice, every
//   GPU of the checkpoint mapped (the driver's rule); else InvalidArgument
//   naming the pair. It is returned as given.
// - no map, and every GPU of the checkpoint is here: an empty map (the
//   driver restores onto the same GPUs);
// - no map, other UUIDs: when this node's GPUs have the checkpoint's models
//   in the same order, the map pairs them by ordinal; else Conflict.
// Thread safety: value types and a pure function.
#pragma once

#include <vector>

#include <boost/json/value.hpp>

#include "common/status.h"
#include "gpu/checkpointer.h"

namespace ckptd::gpu {

struct GpuPlatform {
  int cuda_version = 0;  // cuDriverGetVersion, e.g. 13000
  std::vector<GpuDevice> devices;
  // {"cuda_version":13000,"devices":[{"uuid":"GPU-...","name":"NVIDIA H200"}]}
  boost::json::value ToJson() const;
  // InvalidArgument for anything malformed.
  static Result<GpuPlatform> FromJson(const boost::json::value& v);
};

Result<DeviceMap> PlanGpuRestore(const GpuPlatform& checkpointed, const GpuPlatform& here, const DeviceMap& requested);

}  // namespace ckptd::gpu

#include "gpu/compat.h"

#include <algorithm>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace ckptd::gpu {

namespace {

std::string VersionText(int v) { return fmt::format("{}.{}", v / 1000, (v % 1000) / 10); }

const GpuDevice* FindDevice(const std::vector<GpuDevice>& devices, const GpuUuid& uuid) {
  for (const auto& d : devices)
    if (d.uuid == uuid) return &d;
  return nullptr;
}

Status CheckRequestedMap(const GpuPlatform& checkpointed, const GpuPlatform& here, const DeviceMap& map) {
  std::vector<GpuUuid> from_seen, to_seen;
  for (const auto& pair : map) {
    const GpuDevice* from = FindDevice(checkpointed.devices, pair.old_uuid);
    if (!from) {
      return InvalidArgument(
          fmt::format("device_map: {} is not a GPU of the checkpoint's node", pair.old_uuid.ToString()));
    }
    const GpuDevice* to = FindDevice(here.devices, pair.new_uuid);
    if (!to) return InvalidArgument(fmt::format("device_map: this node has no GPU {}", pair.new_uuid.ToString()));
    if (from->name != to->name) {
      return InvalidArgument(fmt::format("device_map: {} is a {}, {} a {}: a GPU restores onto the same model",
                                         from->uuid.ToString(), from->name, to->uuid.ToString(), to->name));
    }
    if (std::count(from_seen.begin(), from_seen.end(), pair.old_uuid) ||
        std::count(to_seen.begin(), to_seen.end(), pair.new_uuid)) {
      return InvalidArgument(fmt::format("device_map: {}={} maps a GPU twice", pair.old_uuid.ToString(),
                                         pair.new_uuid.ToString()));
    }
    from_seen.push_back(pair.old_uuid);
    to_seen.push_back(pair.new_uuid);
  }
  for (const auto& d : checkpointed.devices) {
    if (!std::count(from_seen.begin(), from_seen.end(), d.uuid))
      return InvalidArgument(fmt::format("device_map leaves {} ({}) unmapped: map every GPU of the checkpoint",
                                         d.uuid.ToString(), d.name));
  }
  return Status::Ok();
}

}  // namespace

boost::json::value GpuPlatform::ToJson() const {
  boost::json::array devs;
  for (const auto& d : devices) devs.push_back(boost::json::object{{"uuid", d.uuid.ToString()}, {"name", d.name}});
  return boost::json::object{{"cuda_version", cuda_version}, {"devices", std::move(devs)}};
}

Result<GpuPlatform> GpuPlatform::FromJson(const boost::json::value& v) {
  const auto* o = v.if_object();
  const auto* version = o ? o->if_contains("cuda_version") : nullptr;
  const auto* devices = o ? o->if_contains("devices") : nullptr;
  if (!version || !version->is_int64() || !devices || !devices->is_array())
    return InvalidArgument("gpu_platform: needs an integer cuda_version and a devices array");
  GpuPlatform p;
  p.cuda_version = static_cast<int>(version->as_int64());
  for (const auto& d : devices->as_array()) {
    const auto* dev = d.if_object();
    const auto* uuid = dev ? dev->if_contains("uuid") : nullptr;
    const auto* name = dev ? dev->if_contains("name") : nullptr;
    if (!uuid || !uuid->is_string() || !name || !name->is_string())
      return InvalidArgument("gpu_platform: every device needs a uuid and a name");
    CKPTD_ASSIGN_OR_RETURN(GpuUuid u, GpuUuid::Parse(uuid->as_string()));
    p.devices.push_back(GpuDevice{u, std::string(name->as_string())});
  }
  return p;
}

Result<DeviceMap> PlanGpuRestore(const GpuPlatform& checkpointed, const GpuPlatform& here, const DeviceMap& requested) {
  if (here.cuda_version < checkpointed.cuda_version) {
    return Conflict(fmt::format("the GPU driver here (CUDA {}) is older than the checkpoint's (CUDA {})",
                                VersionText(here.cuda_version), VersionText(checkpointed.cuda_version)));
  }
  if (here.devices.size() < checkpointed.devices.size()) {
    return Conflict(fmt::format("this node has {} GPU(s), the checkpoint's node had {}", here.devices.size(),
                                checkpointed.devices.size()));
  }
  if (!requested.empty()) {
    CKPTD_RETURN_IF_ERROR(CheckRequestedMap(checkpointed, here, requested));
    return requested;
  }
  bool all_here = std::all_of(checkpointed.devices.begin(), checkpointed.devices.end(),
                              [&](const GpuDevice& d) { return FindDevice(here.devices, d.uuid) != nullptr; });
  if (all_here) return DeviceMap{};
  DeviceMap automatic;
  for (size_t i = 0; i < checkpointed.devices.size(); ++i) {
    const GpuDevice& from = checkpointed.devices[i];
    const GpuDevice& to = here.devices[i];
    if (from.name != to.name) {
      return Conflict(fmt::format("GPU {} of the checkpoint is a {}, GPU {} here a {}: give a device_map onto the same "
                                  "model",
                                  i, from.name, i, to.name));
    }
    automatic.push_back(GpuPair{from.uuid, to.uuid});
  }
  return automatic;
}

}  // namespace ckptd::gpu

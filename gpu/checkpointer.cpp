#include "gpu/checkpointer.h"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "common/subprocess.h"
#include "gpu/cuda_checkpoint_tool.h"
#include "gpu/cuda_driver.h"

namespace ckptd::gpu {

std::string_view StateName(GpuProcessState s) {
  switch (s) {
    case GpuProcessState::kRunning:
      return "running";
    case GpuProcessState::kLocked:
      return "locked";
    case GpuProcessState::kCheckpointed:
      return "checkpointed";
    case GpuProcessState::kFailed:
      return "failed";
  }
  return "unknown";
}

Result<GpuProcessState> ParseState(std::string_view word) {
  for (auto s : {GpuProcessState::kRunning, GpuProcessState::kLocked, GpuProcessState::kCheckpointed,
                 GpuProcessState::kFailed}) {
    if (word == StateName(s)) return s;
  }
  return InvalidArgument(fmt::format("unknown GPU process state \"{}\"", word));
}

std::string GpuUuid::ToString() const {
  const auto& b = bytes;
  return fmt::format(
      "GPU-{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}", b[0],
      b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

Result<GpuUuid> GpuUuid::Parse(std::string_view text) {
  std::string_view s = text;
  if (s.substr(0, 4) == "GPU-") s.remove_prefix(4);
  // 8-4-4-4-12 hex digits.
  static constexpr size_t kGroups[] = {8, 4, 4, 4, 12};
  GpuUuid out;
  size_t byte = 0;
  size_t pos = 0;
  auto bad = [&] { return InvalidArgument(fmt::format("malformed GPU UUID \"{}\"", text)); };
  for (size_t g = 0; g < 5; ++g) {
    if (g > 0) {
      if (pos >= s.size() || s[pos] != '-') return bad();
      ++pos;
    }
    for (size_t i = 0; i < kGroups[g]; i += 2) {
      if (pos + 2 > s.size()) return bad();
      unsigned v = 0;
      for (int k = 0; k < 2; ++k) {
        char c = s[pos + k];
        v <<= 4;
        if (c >= '0' && c <= '9')
          v |= c - '0';
        else if (c >= 'a' && c <= 'f')
          v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
          v |= c - 'A' + 10;
        else
          return bad();
      }
      out.bytes[byte++] = static_cast<uint8_t>(v);
      pos += 2;
    }
  }
  if (pos != s.size()) return bad();
  return out;
}

std::string FormatDeviceMap(const DeviceMap& map) {
  std::string s;
  for (const auto& p : map) {
    if (!s.empty()) s += ',';
    s += p.old_uuid.ToString() + "=" + p.new_uuid.ToString();
  }
  return s;
}

Result<DeviceMap> ParseDeviceMap(std::string_view text) {
  DeviceMap map;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return InvalidArgument(fmt::format("device map entry \"{}\" is not old=new", item));
    }
    CKPTD_ASSIGN_OR_RETURN(GpuUuid old_uuid, GpuUuid::Parse(item.substr(0, eq)));
    CKPTD_ASSIGN_OR_RETURN(GpuUuid new_uuid, GpuUuid::Parse(item.substr(eq + 1)));
    map.push_back({old_uuid, new_uuid});
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return map;
}

boost::json::value GpuDriverInfo::ToJson() const {
  return boost::json::object{{"backend", backend}, {"cuda_version", cuda_version}, {"version", version}};
}

boost::json::value GpuAvailability::ToJson() const {
  boost::json::object o{{"available", available}, {"backend", backend}};
  if (!reason.empty()) o["reason"] = reason;
  if (available) o["driver"] = driver.ToJson();
  return o;
}

namespace {

class UnavailableCheckpointer final : public GpuCheckpointer {
 public:
  explicit UnavailableCheckpointer(std::string reason) : reason_(std::move(reason)) {}
  Result<GpuProcessState> GetState(int) override { return Err(); }
  Status Lock(int, std::chrono::milliseconds) override { return Err(); }
  Status Checkpoint(int) override { return Err(); }
  Status Restore(int, const DeviceMap&) override { return Err(); }
  Status Unlock(int) override { return Err(); }
  GpuDriverInfo DriverInfo() const override { return {"none", 0, ""}; }

 private:
  Status Err() const { return Unavailable(reason_); }
  std::string reason_;
};

}  // namespace

std::unique_ptr<GpuCheckpointer> MakeUnavailableCheckpointer(std::string reason) {
  return std::make_unique<UnavailableCheckpointer>(std::move(reason));
}

namespace {

GpuBackend OpenCheckpointingBackend(const GpuConfig& config, ProcessRunner* runner) {
  GpuBackend out;
  std::string driver_why;
  if (config.use_driver_api) {
    auto driver = CudaDriverCheckpointer::Load(config.driver_library);
    if (driver.ok()) {
      out.availability.available = true;
      out.availability.backend = "driver-api";
      out.availability.driver = (*driver)->DriverInfo();
      out.checkpointer = std::move(driver).value();
      return out;
    }
    driver_why = driver.status().message();
  } else {
    driver_why = "GPU checkpointing unavailable: driver API disabled by configuration";
  }

  std::string tool_why;
  if (!config.tool_path.empty() && runner != nullptr) {
    auto tool = CudaCheckpointTool::Probe(config, runner);
    if (tool.ok()) {
      out.availability.available = true;
      out.availability.backend = "cuda-checkpoint";
      out.availability.driver = (*tool)->DriverInfo();
      // Say why the preferred backend was skipped.
      out.availability.reason = "using " + (*tool)->path() + " because " + driver_why;
      out.checkpointer = std::move(tool).value();
      return out;
    }
    tool_why = tool.status().message();
  } else {
    tool_why = "no cuda-checkpoint fallback configured";
  }
  // "GPU checkpointing unavailable: <driver why>; <tool why>"
  constexpr std::string_view kPrefix = "GPU checkpointing unavailable: ";
  auto strip = [&](std::string s) {
    if (s.rfind(kPrefix, 0) == 0) s.erase(0, kPrefix.size());
    return s;
  };
  out.availability.reason = std::string(kPrefix) + strip(driver_why) + "; " + strip(tool_why);
  out.checkpointer = MakeUnavailableCheckpointer(out.availability.reason);
  return out;
}

}  // namespace

GpuBackend OpenGpuCheckpointer(const GpuConfig& config, ProcessRunner* runner) {
  GpuBackend out = OpenCheckpointingBackend(config, runner);
  if (!out.availability.available) return out;
  if (config.nvml_library.empty()) {
    out.memory_unavailable = "NVML not configured";
    return out;
  }
  auto nvml = OpenNvml(config.nvml_library);
  if (nvml.ok())
    out.memory = std::move(nvml).value();
  else
    out.memory_unavailable = nvml.status().message();
  return out;
}

}  // namespace ckptd::gpu

#include "jobs/gpu_hooks.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace ckptd {

GpuHooks::GpuHooks(gpu::GpuBackend backend, std::chrono::milliseconds lock_timeout, gpu::DiscoveryOptions discovery,
                   gpu::OrchestratorOptions orchestrator)
    : backend_(std::move(backend)),
      lock_timeout_(lock_timeout),
      discovery_(std::move(discovery)),
      orch_opts_(orchestrator) {}

std::string GpuHooks::Unavailable() const {
  const std::string& r = backend_.availability.reason;
  return r.empty() ? "GPU checkpointing unavailable: no backend" : r;
}

gpu::GpuReport* GpuHooks::Report(GpuJobContext* ctx) const {
  if (!ctx->state) ctx->state = std::make_shared<gpu::GpuReport>();
  return ctx->state.get();
}

Result<gpu::GpuPlatform> GpuHooks::Platform() const {
  CKPTD_ASSIGN_OR_RETURN(std::vector<gpu::GpuDevice> devices, backend_.checkpointer->Devices());
  return gpu::GpuPlatform{backend_.availability.driver.cuda_version, std::move(devices)};
}

Status GpuHooks::CheckMode(const std::string& mode) {
  if (mode == "on" && !backend_.availability.available) return ckptd::Unavailable(Unavailable());
  return Status::Ok();
}

Status GpuHooks::Find(int pid, GpuJobContext* ctx) {
  ctx->pids.clear();
  if (ctx->mode == "off") return Status::Ok();
  auto found = gpu::FindGpuProcesses(pid, discovery_);
  if (!found.ok()) return found.status().WithContext(fmt::format("finding GPU processes of pid {}", pid));
  if (found->empty()) {
    if (ctx->mode == "on")
      return InvalidArgument(fmt::format("gpu=on but no process in the tree of pid {} uses the GPU", pid));
    return Status::Ok();
  }
  if (!backend_.availability.available)
    return ckptd::Unavailable(fmt::format("{} (pid {} uses the GPU)", Unavailable(), found->front().pid));
  for (const auto& p : *found) ctx->pids.push_back(p.pid);
  return Status::Ok();
}

void GpuHooks::RecordDeviceMemory(GpuJobContext* ctx) const {
  if (!backend_.memory) return;
  auto use = backend_.memory->DeviceMemoryByPid();
  if (!use.ok()) {
    spdlog::warn("{}: device memory of the GPU processes unknown: {}", ctx->log_tag, use.status().ToString());
    return;
  }
  gpu::GpuReport* report = Report(ctx);
  report->device_memory_source = "nvml";
  for (int pid : ctx->pids) {
    auto it = use->find(pid);
    if (it != use->end()) report->ForPid(pid).device_memory_bytes = it->second;
  }
}

Status GpuHooks::Lock(GpuJobContext* ctx) {
  if (ctx->pids.empty()) return Status::Ok();
  RecordDeviceMemory(ctx);
  gpu::GpuOrchestrator orch(backend_.checkpointer.get(), orch_opts_);
  Status st = orch.LockAll(ctx->pids, lock_timeout_, Report(ctx));
  ctx->report = ctx->state->ToJson();
  return st;
}

Status GpuHooks::Checkpoint(GpuJobContext* ctx) {
  if (ctx->pids.empty()) return Status::Ok();
  gpu::GpuOrchestrator orch(backend_.checkpointer.get(), orch_opts_);
  Status st = orch.CheckpointAll(ctx->pids, Report(ctx));
  ctx->report = ctx->state->ToJson();
  if (!st.ok()) return st;
  ctx->model = "cuda";
  if (auto platform = Platform(); platform.ok()) {
    ctx->platform = platform->ToJson();
    if (!platform->devices.empty()) ctx->model = platform->devices.front().name;
  }
  spdlog::info("{}: {} GPU process(es) checkpointed in {:.1f} ms", ctx->log_tag, ctx->pids.size(),
               ctx->state->prepare_ms);
  return Status::Ok();
}

Status GpuHooks::Resume(GpuJobContext* ctx) {
  if (ctx->pids.empty()) return Status::Ok();
  if (!backend_.availability.available) return ckptd::Unavailable(Unavailable());
  gpu::GpuOrchestrator orch(backend_.checkpointer.get(), orch_opts_);
  Status st = orch.ResumeAfterDump(ctx->pids, Report(ctx));
  ctx->report = ctx->state->ToJson();
  return st;
}

namespace {

Result<gpu::DeviceMap> ParseMap(const std::vector<std::pair<std::string, std::string>>& pairs) {
  gpu::DeviceMap map;
  for (const auto& [from, to] : pairs) {
    auto a = gpu::GpuUuid::Parse(from);
    if (!a.ok()) return a.status().WithContext("device_map 'from'");
    auto b = gpu::GpuUuid::Parse(to);
    if (!b.ok()) return b.status().WithContext("device_map 'to'");
    map.push_back({*a, *b});
  }
  return map;
}

}  // namespace

Status GpuHooks::PlanRestore(GpuJobContext* ctx) {
  if (ctx->pids.empty()) return Status::Ok();
  if (!backend_.availability.available) return ckptd::Unavailable(Unavailable());
  CKPTD_ASSIGN_OR_RETURN(gpu::DeviceMap requested, ParseMap(ctx->device_map));
  auto here = Platform();
  ctx->model = here.ok() && !here->devices.empty() ? here->devices.front().name : "cuda";
  if (ctx->platform.is_null()) return Status::Ok();
  CKPTD_ASSIGN_OR_RETURN(gpu::GpuPlatform checkpointed, gpu::GpuPlatform::FromJson(ctx->platform));
  if (!here.ok()) return Status::Ok();  // the tool backend: the driver decides
  CKPTD_ASSIGN_OR_RETURN(gpu::DeviceMap map, gpu::PlanGpuRestore(checkpointed, *here, requested));
  if (requested.empty() && !map.empty()) {
    spdlog::info("{}: restoring onto other GPUs, automatic device map {}", ctx->log_tag, gpu::FormatDeviceMap(map));
  }
  ctx->device_map.clear();
  for (const auto& pair : map) ctx->device_map.emplace_back(pair.old_uuid.ToString(), pair.new_uuid.ToString());
  return Status::Ok();
}

Status GpuHooks::AfterRestore(int pid, GpuJobContext* ctx) {
  if (ctx->pids.empty()) return Status::Ok();
  CKPTD_ASSIGN_OR_RETURN(gpu::DeviceMap map, ParseMap(ctx->device_map));
  if (!backend_.availability.available) return ckptd::Unavailable(Unavailable());
  gpu::GpuOrchestrator orch(backend_.checkpointer.get(), orch_opts_);
  Status st = orch.RestoreAfterCriu(ctx->pids, map, Report(ctx));
  ctx->report = ctx->state->ToJson();
  return st;
}

}  // namespace ckptd

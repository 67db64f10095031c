#include "jobs/restore_pipeline.h"

#include <signal.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/proc.h"
#include "images/image_transfer.h"
#include "jobs/container_steps.h"
#include "jobs/criu_requests.h"
#include "jobs/job_logs.h"
#include "jobs/restore_fds.h"
#include "store/digest.h"

namespace ckptd {

namespace json = boost::json;
namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

RestorePipeline::RestorePipeline(const JobOptions& opts, const JobEnv& env, Catalog* catalog, JobContext* ctx)
    : opts_(opts), env_(env), catalog_(catalog), ctx_(ctx), job_(ctx->job()) {
  staging_ = job_.journal.staging.empty() ? fs::path(opts.staging_dir) / ("restore-" + job_.id)
                                          : fs::path(job_.journal.staging);
  images_dir_ = staging_ / "images";
  gpu_.log_tag = job_.LogTag();
  gpu_.device_map = job_.rst.device_map;
  // Recovery: the map PlanGpu settled on (the request's, or an automatic one).
  if (job_.journal.gpu_device_map.is_array()) gpu_.device_map = DeviceMapFromJson(job_.journal.gpu_device_map);
  for (const auto& g : job_.journal.gpu) gpu_.pids.push_back(g.pid);
  gpu_.ns_pids = job_.journal.gpu_ns;
}

void RestorePipeline::Phase(JobPhase p) {
  phase_ = p;
  ctx_->SetPhase(p);
}

Status RestorePipeline::Run() {
  auto t_total = SteadyClock::now();
  Status st = ReadManifest();
  if (st.ok()) st = PlanGpu();
  if (st.ok()) st = Download();
  if (st.ok()) st = CriuRestore();
  if (st.ok()) st = GpuRestore();
  // The error names CRIU's (or runc's) log: kept past the staging directory.
  st = KeepLogsOf(st, opts_.keep_every_job_log, staging_, opts_.job_log_dir, job_.id);
  std::error_code ec;
  fs::remove_all(staging_, ec);
  if (!st.ok())
    return Status(st.code(),
                  st.WithContext(fmt::format("restore of {}: {}", job_.restore_path, PhaseName(phase_))).message());
  timings_["total"] = MillisSince(t_total);
  json::object result{{"pid", restored_pid_},
                      {"image_bytes", manifest_.TotalSize()},
                      {"criu_version", manifest_.criu_version},
                      {"source_pid", manifest_.pid},
                      {"timings_ms", timings_}};
  if (!gpu_.report.is_null()) result["gpu"] = gpu_.report;
  if (!container_.empty()) result["container"] = container_;
  ctx_->ObserveGpuSteps(gpu_.report);
  ctx_->SetResult(std::move(result), restored_pid_);
  return Status::Ok();
}

Status RestorePipeline::ReadManifest() {
  Phase(JobPhase::kManifest);
  auto t = SteadyClock::now();
  Status st = RunStep(ctx_, Step::kReadManifest, [&]() -> Status {
    // Deprecation waits for this hold (jobs/checkpoint_readers.h).
    CKPTD_ASSIGN_OR_RETURN(hold_, HoldForRead(env_.readers, *catalog_, job_.checkpoint_id));
    CKPTD_ASSIGN_OR_RETURN(store_, env_.open_store(job_.restore_path));
    auto bytes = store_->GetBytes(kManifestName);
    if (!bytes.ok()) {
      if (bytes.status().code() == Code::kNotFound)
        return NotFound(fmt::format("no {} under {}", kManifestName, job_.restore_path));
      return bytes.status();
    }
    if (job_.expected_checksum && Sha256::HexOf(*bytes) != *job_.expected_checksum)
      return Corruption(fmt::format("manifest sha256 {} does not match the catalog's checksum {}",
                                    Sha256::HexOf(*bytes), *job_.expected_checksum));
    CKPTD_ASSIGN_OR_RETURN(manifest_, Manifest::Parse(*bytes));
    return Status::Ok();
  });
  timings_["manifest"] = MillisSince(t);
  return st;
}

Status RestorePipeline::Download() {
  Phase(JobPhase::kDownload);
  auto t = SteadyClock::now();
  CKPTD_RETURN_IF_ERROR(ResetDir(staging_));
  CKPTD_RETURN_IF_ERROR(ResetDir(images_dir_));
  int linked = 0;
  Status st = RunStep(
      ctx_, Step::kDownload,
      [&] {
        return DownloadAll(
            store_.get(), manifest_.files, images_dir_, opts_.restore_parallelism,
            [this](uint64_t n) { return ctx_->Progress(n); }, &linked);
      },
      [&](Journal& j) { j.staging = staging_.string(); });
  hold_.Release();
  timings_["download"] = MillisSince(t);
  if (linked > 0) timings_["images_linked"] = linked;
  return st;
}

Status RestorePipeline::CriuRestore() {
  Phase(JobPhase::kRestore);
  const bool of_container = manifest_.options.is_object() && manifest_.options.as_object().contains("container");
  if (job_.rst.container) return ContainerRestoreStep();
  if (of_container)
    return InvalidArgument(
        "the checkpoint is of a container: restore it with \"container\": {\"id\", \"bundle\"} (runc)");
  CKPTD_ASSIGN_OR_RETURN(criu::RestoreOptions ro, RestoreOptionsFor(manifest_.options, images_dir_, staging_, &job_.rst));
  if (ro.orphan_pts_master == job_.rst.console_socket.empty())
    return InvalidArgument(
        ro.orphan_pts_master
            ? "the checkpoint was taken with orphan_pts_master: give 'console_socket', the unix socket its new "
              "terminal is sent to"
            : "'console_socket' is for checkpoints taken with orphan_pts_master; this one was not");
  // The files the request hands to CRIU, held until it has taken them.
  CKPTD_ASSIGN_OR_RETURN(std::vector<UniqueFd> inherited, OpenInheritFds(job_.rst.inherit_fd, opts_.file_roots));
  for (size_t i = 0; i < inherited.size(); ++i) ro.inherit_fds.emplace_back(job_.rst.inherit_fd[i].key, inherited[i].get());
  // The killed original's orphans must be reaped or their pids stay taken.
  if (env_.reaper) env_.reaper->ReapOrphans();
  ro.deadline = std::chrono::seconds(job_.rst.timeout_s);
  ro.on_criu_started = NoteToolStarted(ctx_, "criu-restore:criu-started");
  ro.notify = [this](const std::string& script, int pid) -> Status {
    if (pid <= 0 || (script != "setup-namespaces" && script != "post-restore")) return Status::Ok();
    return ctx_->Note("criu-restore:root-known", [&](Journal& j) { j.restored = Identify(pid); });
  };
  // CRIU kills what it forked when a restore fails; should a tree with the
  // dumped root pid appear anyway, it is ours to remove (no half-restored
  // workload). A root already running before is left alone.
  const bool root_existed = manifest_.pid > 0 && kill(manifest_.pid, 0) == 0;
  return JournaledRestore(manifest_.pid, root_existed, [&]() -> Result<int> {
    auto res = env_.criu->Restore(ro);
    // The new terminal's master goes to the console socket within the
    // restore step: a daemon killed before it is sent fails the job (the
    // half-restored tree is killed by recovery), never leaves it unheld.
    Status st = res.ok() ? DeliverConsole(res->orphan_pts_master) : res.status();
    if (st.ok()) return res->pid;
    if (KillHalfRestored() > 0)
      spdlog::warn("{}: restore failed but the dumped tree (pid {}) appeared: killed it", job_.LogTag(), manifest_.pid);
    return st;
  });
}

Status RestorePipeline::DeliverConsole(const UniqueFd& master) const {
  if (master.get() < 0) return Status::Ok();  // the tree had no such terminal
  return SendConsole(job_.rst.console_socket, opts_.file_roots, master.get()).WithContext("orphan_pts_master");
}

Status RestorePipeline::ContainerRestoreStep() {
  const json::object* opts = manifest_.options.if_object();
  auto flag = [opts](const char* k) {
    auto* v = opts ? opts->if_contains(k) : nullptr;
    return v && v->is_bool() && v->as_bool();
  };
  ContainerRestore r;
  r.target = *job_.rst.container;
  r.images_dir = images_dir_;
  r.work_dir = staging_ / "work";
  r.log_dir = opts_.container_log_dir;
  r.tcp_established = flag("tcp_established");
  r.file_locks = flag("file_locks");
  r.ext_unix_sk = flag("ext_unix_sk");
  r.on_started = NoteToolStarted(ctx_, "criu-restore:criu-started");
  // A container's pids live in its own namespace: no dumped root to watch.
  return JournaledRestore(0, false, [&]() -> Result<int> {
    CKPTD_ASSIGN_OR_RETURN(runc::ContainerState s, RestoreContainer(env_.runc, r, SystemProcessRunner::Default()));
    container_ = json::object{{"id", s.id}, {"pid", s.pid}, {"bundle", s.bundle}};
    return s.pid;
  });
}

// The restore as the journaled step kCriuRestore: the intent says what a
// restart must kill should the daemon die inside it (the dumped root pid
// appearing after restore_began, unless it ran before; the GPU processes),
// the restored root is noted as soon as it is known.
Status RestorePipeline::JournaledRestore(int dumped_root, bool root_existed, const std::function<Result<int>()>& restore) {
  auto t = SteadyClock::now();
  std::vector<ProcRef> gpu;
  for (int p : manifest_.gpu_pids) gpu.push_back(ProcRef{p, 0});
  Status st = RunStep(
      ctx_, Step::kCriuRestore,
      [&]() -> Status {
        CKPTD_ASSIGN_OR_RETURN(restored_pid_, restore());
        return ctx_->Note("", [&](Journal& j) { j.restored = Identify(restored_pid_); });
      },
      [&](Journal& j) {
        j.staging = staging_.string();
        j.dumped_root = dumped_root;
        j.root_existed = root_existed;
        j.restore_began = BootTicksNow();
        j.restored.reset();
        j.gpu = gpu;
        j.gpu_ns = manifest_.gpu_ns_pids;
        j.gpu_device_map = DeviceMapToJson(gpu_.device_map);
      });
  gpu_.pids = manifest_.gpu_pids;
  gpu_.ns_pids = manifest_.gpu_ns_pids;
  timings_["restore"] = MillisSince(t);
  return st;
}

Status RestorePipeline::PlanGpu() {
  if (!env_.gpu || manifest_.gpu_pids.empty()) return Status::Ok();
  GpuJobContext plan = gpu_;
  plan.pids = manifest_.gpu_pids;
  plan.platform = manifest_.gpu_platform;
  CKPTD_RETURN_IF_ERROR(env_.gpu->PlanRestore(&plan).WithContext("GPU compatibility"));
  gpu_.device_map = plan.device_map;
  return Status::Ok();
}

Status RestorePipeline::GpuRestore() {
  if (!env_.gpu || gpu_.pids.empty()) return Status::Ok();
  // The restored processes' host pids (new ones in a container's new PID
  // namespace), journaled for a restart that finishes this step.
  Status st = FollowRestoredGpuPids(restored_pid_, &gpu_);
  if (st.ok()) {
    std::vector<ProcRef> refs;
    for (int p : gpu_.pids)
      if (auto r = Identify(p)) refs.push_back(*r);
    st = RunStep(
        ctx_, Step::kGpuRestore, [&] { return env_.gpu->AfterRestore(restored_pid_, &gpu_); },
        [&](Journal& j) { j.gpu = refs; });
  }
  if (st.ok()) return st;
  // Never leave a half-restored workload behind.
  KillTree(restored_pid_);
  if (job_.rst.container && env_.runc)
    env_.runc->Remove(job_.rst.container->runtime_root, job_.rst.container->id).IgnoreError();
  return st.WithContext("gpu after restore");
}

int KillRestoringTree(const Journal& j) {
  int killed = 0;
  if (j.criu && IsAlive(*j.criu)) {
    kill(-j.criu->pid, SIGKILL);  // CRIU leads its own session and group
    killed += KillRef(*j.criu);
    WaitGone(*j.criu, std::chrono::seconds(5));
  }
  if (j.restored && IsAlive(*j.restored)) {
    killed += KillTree(j.restored->pid);
  } else if (j.dumped_root > 0 && !j.root_existed) {
    // Before CRIU named the root: the dumped pid, if it appeared since.
    auto ref = Identify(j.dumped_root);
    if (ref && ref->start >= j.restore_began && IsAlive(*ref)) killed += KillTree(ref->pid);
  }
  return killed;
}

Status RestorePipeline::FinishGpuRestore() {
  const Journal& j = job_.journal;
  if (!j.restored || !IsAlive(*j.restored)) return NotFound("the restored tree is gone");
  restored_pid_ = j.restored->pid;
  Status st = GpuRestore();
  if (!st.ok()) return st;
  ctx_->SetResult(json::object{{"pid", restored_pid_}, {"gpu", gpu_.report}, {"recovered", true}}, restored_pid_);
  return Status::Ok();
}

}  // namespace ckptd

#include "jobs/checkpoint_pipeline.h"

#include <signal.h>
#include <sys/utsname.h>

#include <algorithm>
#include <iterator>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/crash_point.h"
#include "common/proc.h"
#include "images/image_transfer.h"
#include "jobs/criu_requests.h"
#include "jobs/job_logs.h"
#include "store/digest.h"

namespace ckptd {

namespace json = boost::json;
namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

CheckpointPipeline::CheckpointPipeline(const JobOptions& opts, const JobEnv& env, Catalog* catalog, JobContext* ctx)
    : opts_(opts),
      env_(env),
      catalog_(catalog),
      ctx_(ctx),
      job_(ctx->job()),
      id_(job_.checkpoint_id),
      pid_(job_.pid),
      started_(SteadyClock::now()) {
  staging_ = job_.journal.staging.empty() ? fs::path(opts.staging_dir) / id_ : fs::path(job_.journal.staging);
  images_dir_ = staging_ / "images";
  auto codec = ParseCodec(job_.ckpt.compression);
  codec_.codec = codec.ok() ? *codec : Codec::kZstd;  // validated at submit
  if (codec_.codec == Codec::kZstd) codec_.level = opts.zstd_level;
  if (env.probe.valid() && env.probe.get().version) criu_version_ = env.probe.get().version->ToString();
  if (job_.journal.options.is_object()) options_ = job_.journal.options.as_object();
  gpu_.log_tag = job_.LogTag();
  gpu_.mode = job_.ckpt.gpu;
  for (const auto& g : job_.journal.gpu) gpu_.pids.push_back(g.pid);
  gpu_.ns_pids = job_.journal.gpu_ns;
}

CheckpointPipeline::~CheckpointPipeline() { StopUploaders(); }

void CheckpointPipeline::Phase(JobPhase p) {
  phase_ = p;
  ctx_->SetPhase(p);
}

ProgressFn CheckpointPipeline::Progress() {
  return [this](uint64_t n) { return ctx_->Progress(n); };
}

Status CheckpointPipeline::Run() {
  Status st = Describe();
  if (st.ok()) st = GpuPrepare();
  if (st.ok()) st = Dump();
  if (st.ok()) st = GpuResumeAfterDump();
  if (st.ok()) st = Upload();
  if (st.ok()) st = WriteManifest();
  if (st.ok()) st = MarkReady();
  if (!st.ok()) return OnFailure(st);
  KeepLogsOf(st, opts_.keep_every_job_log, staging_, opts_.job_log_dir, job_.id).IgnoreError();
  std::error_code ec;
  fs::remove_all(staging_, ec);
  return Status::Ok();
}

Status CheckpointPipeline::Describe() {
  Phase(JobPhase::kInfo);
  auto t = SteadyClock::now();
  if (kill(pid_, 0) != 0) return NotFound(fmt::format("process {} is gone", pid_));
  utsname u{};
  uname(&u);
  options_ = CheckpointOptionsToJson(job_.ckpt);
  if (job_.ckpt.container) {
    // runc handles the container's namespaces and mounts; what a rollback
    // needs of it (bundle, runtime root) goes with the options.
    CKPTD_ASSIGN_OR_RETURN(runc::ContainerState s, RunningContainer(env_.runc, *job_.ckpt.container));
    if (s.pid != pid_) return Conflict(fmt::format("container {}: its init is pid {} now, not {}", s.id, s.pid, pid_));
    auto version = env_.runc->Probe();
    options_["container"] = ContainerInfo(s, *job_.ckpt.container, version.ok() ? version->text : "");
    container_ = std::move(s);
  } else {
    // A target with a mount namespace of its own (unshare --mount-proc) is
    // dumped with auto external mounts and restored with those and CRIU's
    // root (criu_driver.h); both go with the options into info, the journal
    // and the manifest, so every restore (a rollback too) passes them.
    CKPTD_ASSIGN_OR_RETURN(std::string restore_root, criu::RestoreRootFor(pid_));
    if (!restore_root.empty()) {
      options_["restore_root"] = restore_root;
      options_["auto_ext_mounts"] = true;
    }
  }
  json::object platform{{"os", u.sysname}, {"kernel", u.release}, {"arch", u.machine}, {"criu_version", criu_version_}};
  json::object info{{"pid", pid_},          {"cmdline", Cmdline(pid_)}, {"options", options_},
                    {"platform", platform}, {"job_id", job_.id},        {"node", u.nodename}};
  if (container_) info["container"] = options_["container"];
  std::string platform_str = fmt::format("{}/{} kernel {}; criu {}", u.sysname, u.machine, u.release, criu_version_);
  Status st = RunStep(
      ctx_, Step::kDescribe, [&] { return catalog_->SetInfo(id_, "none", platform_str, info).status(); },
      [&](Journal& j) { j.options = options_; });
  timings_["info"] = MillisSince(t);
  return st;
}

Status CheckpointPipeline::GpuPrepare() {
  if (!env_.gpu) return Status::Ok();
  auto t = SteadyClock::now();
  CKPTD_RETURN_IF_ERROR(env_.gpu->Find(pid_, &gpu_).WithContext("gpu"));
  if (gpu_.pids.empty()) return Status::Ok();
  std::vector<ProcRef> refs;
  for (int p : gpu_.pids)
    if (auto r = Identify(p)) refs.push_back(*r);
  // What identifies them in a restored tree, where a container's processes
  // get new host pids.
  gpu_.ns_pids.clear();
  for (size_t i = 0; i < gpu_.pids.size() && refs.size() == gpu_.pids.size(); ++i) {
    auto seen = PidSeenFrom(gpu_.pids[i], pid_);
    if (!seen) {
      gpu_.ns_pids.clear();
      break;
    }
    gpu_.ns_pids.push_back(*seen);
  }
  Status st = RunStep(
      ctx_, Step::kGpuLock, [&] { return env_.gpu->Lock(&gpu_).WithContext("gpu lock"); },
      [&](Journal& j) {
        j.gpu = refs;
        j.gpu_ns = gpu_.ns_pids;
      });
  // Locked processes are ours to bring back, whatever happens next.
  gpu_held_ = st.ok();
  if (st.ok()) {
    st = RunStep(ctx_, Step::kGpuCheckpoint, [&] { return env_.gpu->Checkpoint(&gpu_).WithContext("gpu checkpoint"); });
  }
  timings_["gpu_prepare"] = MillisSince(t);
  return st;
}

Status CheckpointPipeline::Dump() {
  Phase(JobPhase::kDump);
  auto t = SteadyClock::now();
  CKPTD_RETURN_IF_ERROR(ResetDir(staging_));
  CKPTD_RETURN_IF_ERROR(ResetDir(images_dir_));
  CKPTD_ASSIGN_OR_RETURN(criu::DumpOptions d,
                         DumpOptionsFor(job_.ckpt, images_dir_, staging_, options_.contains("restore_root")));
  // CRIU's pre-dump notification comes before it freezes the tree and
  // post-dump before it resumes (or kills) it: the span between them is
  // how long the workload stood still. At post-dump every image is
  // written: from there on the staging dir is a complete copy.
  d.notify = [this](const std::string& script, int) -> Status {
    if (script == "pre-dump") frozen_from_ = SteadyClock::now();
    if (script != "post-dump") return Status::Ok();
    frozen_until_ = SteadyClock::now();
    return ctx_->Note("dump:images-written", [](Journal& j) { j.images_complete = true; });
  };
  CKPTD_RETURN_IF_ERROR(ctx_->Begin(Step::kDump, [&](Journal& j) {
    j.staging = staging_.string();
    j.target = Identify(pid_);
    j.tree = TreeOf(pid_);
    j.images_complete = false;
  }));
  Status st = container_ ? DumpContainer(&d) : StartUploaders(&d);
  if (st.ok() && !container_) st = env_.criu->Dump(d).status();
  CKPTD_RETURN_IF_ERROR(ctx_->End(Step::kDump, st));
  if (!st.ok()) return st;
  dumped_ = true;
  timings_["dump"] = MillisSince(t);
  if (frozen_from_ && frozen_until_) {
    double frozen = std::chrono::duration<double>(*frozen_until_ - *frozen_from_).count();
    timings_["freeze"] = static_cast<int64_t>(frozen * 1000);
    ctx_->ObserveStep("freeze", frozen);
  }
  return Status::Ok();
}

// The container is paused first, and its files saved (its rootfs may go
// with it when the dump ends it): the rootfs diff then holds exactly the
// files the dumped processes have open. Then `runc checkpoint` of the
// paused container with the uploaders on (CRIU leaves the freezer as it
// found it: a kept container is resumed after). runc gets no notify
// callbacks through, so "every image written" is noted when it returns.
// Any failure resumes it; so does recovery after a crash (ReleaseTree).
Status CheckpointPipeline::DumpContainer(criu::DumpOptions* d) {
  const api::ContainerTarget& t = *job_.ckpt.container;
  CKPTD_RETURN_IF_ERROR(env_.runc->Pause(t.runtime_root, t.id));
  Status st = ctx_->Note("dump:container-paused", [](Journal&) {});
  if (st.ok())
    st = SaveContainerFiles(*container_, options_["container"].as_object(), images_dir_,
                            SystemProcessRunner::Default());
  if (st.ok()) st = StartUploaders(d);
  if (st.ok()) {
    runc::CheckpointArgs a = CheckpointArgsFor(job_.ckpt, images_dir_, staging_ / "work");
    a.on_started = d->on_criu_started;
    a.init_pid = container_->pid;
    st = env_.runc->Checkpoint(a);
  }
  if (st.ok()) st = ctx_->Note("dump:images-written", [](Journal& j) { j.images_complete = true; });
  Status thaw = env_.runc->Thaw(t.runtime_root, t.id);
  if (!thaw.ok()) spdlog::warn("{}: resuming container {}: {}", job_.LogTag(), t.id, thaw.ToString());
  return st;
}

Status CheckpointPipeline::FirstByte() {
  MutexLock lock(first_byte_mu_);
  if (uploading_) return Status::Ok();
  uploading_ = true;
  return catalog_->MarkPossiblyUploaded(id_).status();
}

// Images go to the store while CRIU writes them (image_streamer.h):
// possibly_uploaded just before the first byte. Holes are punched behind
// the upload only when the target keeps running: otherwise the staging
// images are the rollback copy should the upload fail.
Status CheckpointPipeline::StartUploaders(criu::DumpOptions* d) {
  const bool lr = job_.ckpt.leave_running;
  criu::DumpOptions& dump = *d;
  auto note_criu = [this](pid_t criu_pid) {
    Status st = ctx_->Note("dump:criu-started", [&](Journal& j) { j.criu = Identify(criu_pid); });
    if (!st.ok()) spdlog::warn("{}: {}", job_.LogTag(), st.ToString());
  };
  dump.on_criu_started = note_criu;
  if (!opts_.stream_images) return Status::Ok();
  ImageStreamerOptions so;
  so.store = env_.images;
  so.key_prefix = id_ + "/";
  so.log_tag = job_.LogTag();
  so.dir = images_dir_;
  so.codec = codec_;
  so.encoding.hash = opts_.image_checksum;
  so.punch_holes = lr;
  // Backpressure only bounds anything when shipped bytes are released.
  // (Not for runc: pausing runc would not pause the CRIU it runs.)
  if (lr && !container_) so.max_backlog_bytes = opts_.staging_backlog_bytes;
  so.on_first_byte = [this] { return FirstByte(); };
  so.progress = Progress();
  const bool backpressure = so.max_backlog_bytes > 0;
  // The memory itself comes over CRIU's page-server socket (it is not in
  // the staging files that a stopped target's rollback needs).
  if (lr && opts_.page_server && !container_) {
    PageUploaderOptions po;
    static_cast<ImageUploadOptions&>(po) = so;          // same store, prefix, codec and job
    po.max_queued_bytes = opts_.staging_backlog_bytes;  // pages queue in memory instead of staging
    CKPTD_ASSIGN_OR_RETURN(pages_, PageUploader::Start(std::move(po)));
    dump.page_server_fd = pages_->criu_fd();
  }
  CKPTD_ASSIGN_OR_RETURN(streamer_, ImageStreamer::Start(std::move(so)));
  dump.on_criu_started = [this, backpressure, note_criu](pid_t criu_pid) {
    note_criu(criu_pid);
    if (pages_) pages_->CriuStarted();
    // The streamer pauses CRIU when it gets too far ahead.
    if (!backpressure) return;
    if (Status st = streamer_->SetWriterProcess(criu_pid); !st.ok())
      spdlog::warn("{}: {}: no backpressure", job_.LogTag(), st.ToString());
  };
  return Status::Ok();
}

void CheckpointPipeline::StopUploaders() {
  if (pages_) pages_->Abort();
  if (streamer_) streamer_->Abort();
  pages_.reset();
  streamer_.reset();
}

Status CheckpointPipeline::GpuResumeAfterDump() {
  // CRIU ended a tree dumped without leave_running: nothing runs to resume.
  if (gpu_.pids.empty() || !job_.ckpt.leave_running) return Status::Ok();
  return ResumeGpu().WithContext("gpu after dump");
}

Status CheckpointPipeline::ResumeGpu() {
  if (!env_.gpu || gpu_.pids.empty()) return Status::Ok();
  Status st = RunStep(ctx_, Step::kGpuResume, [&] { return env_.gpu->Resume(&gpu_); });
  if (st.ok()) gpu_held_ = false;
  return st;
}

Status CheckpointPipeline::CollectStreamed(std::vector<ManifestFile>* out) {
  if (pages_) {
    auto r = pages_->Finish();
    timings_["pages_over_socket_bytes"] = pages_->bytes();
    if (!r.ok()) return r.status();
    *out = std::move(*r);
  }
  if (!streamer_) return Status::Ok();
  auto t = SteadyClock::now();
  auto r = streamer_->Finish();
  StreamStats ss = streamer_->stats();
  // Overlap: upload_after_dump is what streaming could not hide.
  timings_["upload_first_byte"] = ss.first_byte_ms;
  timings_["upload_after_dump"] = MillisSince(t);
  timings_["staging_peak_backlog_bytes"] = ss.peak_backlog;
  timings_["upload_bytes_during_dump"] = ss.bytes_before_finish;
  if (ss.linked_files > 0) timings_["images_linked"] = ss.linked_files;
  if (ss.writer_pauses > 0) {
    timings_["criu_paused_for_upload"] = ss.writer_paused_ms;
    timings_["criu_pauses"] = ss.writer_pauses;
  }
  if (!r.ok()) return r.status();
  std::move(r->begin(), r->end(), std::back_inserter(*out));
  auto by_name = [](const auto& a, const auto& b) { return a.name < b.name; };
  std::sort(out->begin(), out->end(), by_name);
  auto dup =
      std::adjacent_find(out->begin(), out->end(), [](const auto& a, const auto& b) { return a.name == b.name; });
  if (dup != out->end())
    return Internal(fmt::format("image {} came both over the page server and as a file", dup->name));
  return Status::Ok();
}

Status CheckpointPipeline::ConfirmObjects(const std::vector<ManifestFile>& files) {
  for (const auto& f : files) {
    auto h = env_.images->Head(id_ + "/" + f.name);
    if (!h.ok()) return h.status().WithContext("confirm " + f.name);
    if (h->size != f.stored_size)
      return IOError(fmt::format("confirm {}: {} bytes stored, {} written", f.name, h->size, f.stored_size));
  }
  return Status::Ok();
}

Manifest CheckpointPipeline::BaseManifest() const {
  Manifest m;
  m.checkpoint_id = id_;
  m.pid = pid_;
  m.criu_version = criu_version_;
  m.codec = std::string(CodecName(codec_.codec));
  m.options = options_;
  m.gpu_pids = gpu_.pids;
  if (gpu_.ns_pids.size() == gpu_.pids.size()) m.gpu_ns_pids = gpu_.ns_pids;
  if (!gpu_.pids.empty()) m.gpu_platform = gpu_.platform;
  return m;
}

Status CheckpointPipeline::Upload() {
  Phase(JobPhase::kUpload);
  auto t = SteadyClock::now();
  manifest_ = BaseManifest();
  Status st = RunStep(ctx_, Step::kUpload, [&]() -> Status {
    CKPTD_RETURN_IF_ERROR(CollectStreamed(&manifest_.files));
    if (!streamer_) {
      CKPTD_RETURN_IF_ERROR(FirstByte());
      CKPTD_RETURN_IF_ERROR(
          UploadDir(env_.images, id_ + "/", images_dir_, codec_, opts_.image_checksum, Progress(), &manifest_.files));
      if (manifest_.files.empty()) return IOError("CRIU wrote no image files");
    }
    CKPTD_RETURN_IF_ERROR(FirstByte());
    return ConfirmObjects(manifest_.files);
  });
  StopUploaders();
  timings_["upload"] = MillisSince(t);
  return st;
}

Status CheckpointPipeline::WriteManifest() {
  Phase(JobPhase::kManifest);
  auto t = SteadyClock::now();
  manifest_.created_at_ms = env_.clock->NowMillis();
  std::string bytes = manifest_.Serialize();
  checksum_ = Sha256::HexOf(bytes);
  stored_bytes_ = bytes.size();
  for (const auto& f : manifest_.files) stored_bytes_ += f.stored_size;
  Status st = RunStep(ctx_, Step::kManifest, [&]() -> Status {
    const std::string key = id_ + "/" + kManifestName;
    CKPTD_RETURN_IF_ERROR(env_.images->PutBytes(key, bytes).WithContext("write manifest"));
    auto h = env_.images->Head(key);
    if (!h.ok()) return h.status().WithContext("confirm manifest");
    if (h->size != bytes.size()) return IOError("confirm manifest: size differs from what was written");
    return Status::Ok();
  });
  timings_["manifest"] = MillisSince(t);
  return st;
}

Status CheckpointPipeline::UpdateInfo(const json::object& extra) {
  return catalog_
      ->Update(id_,
               [&](CheckpointRecord& r) {
                 if (!r.info.is_object()) r.info = json::object{};
                 auto& o = r.info.as_object();
                 for (const auto& [k, v] : extra) o[k] = v;
                 if (!gpu_.report.is_null()) o["gpu"] = gpu_.report;
                 if (gpu_.model != "none") r.gpu = gpu_.model;
                 return Status::Ok();
               })
      .status();
}

Status CheckpointPipeline::MarkReady() {
  Phase(JobPhase::kReady);
  timings_["total"] = MillisSince(started_);
  json::object result{{"restore_path", job_.restore_path},
                      {"checksum", checksum_},
                      {"image_bytes", manifest_.TotalSize()},
                      {"stored_bytes", stored_bytes_},
                      {"files", manifest_.files.size()},
                      {"codec", manifest_.codec},
                      {"timings_ms", timings_}};
  if (!gpu_.report.is_null()) result["gpu"] = gpu_.report;
  if (options_.contains("container")) result["container"] = options_["container"];
  ctx_->ObserveGpuSteps(gpu_.report);
  CKPTD_RETURN_IF_ERROR(ctx_->Begin(Step::kReady));
  Status st = UpdateInfo({{"image_size", manifest_.TotalSize()},
                          {"stored_size", stored_bytes_},
                          {"files", manifest_.files.size()},
                          {"codec", manifest_.codec},
                          {"timings_ms", timings_}});
  if (st.ok()) {
    ctx_->SetResult(std::move(result));
    st = ctx_->Conclude(Status::Ok(), Step::kReady, [&](const Catalog::BatchExtra& extra) {
      return catalog_->MarkReady(id_, job_.restore_path, checksum_, extra).status();
    });
  }
  if (!st.ok()) ctx_->End(Step::kReady, st).IgnoreError();
  return st;
}

Status CheckpointPipeline::OnFailure(const Status& st) {
  StopUploaders();
  Status err = st.WithContext(fmt::format("checkpoint {}: {}", id_, PhaseName(phase_)));
  const bool tree_runs = !dumped_ || job_.ckpt.leave_running;
  // Never leave the tree frozen: GPU processes back to running, stopped
  // tasks continued.
  if (gpu_held_ && tree_runs) {
    Status g = ResumeGpu();
    if (!g.ok()) spdlog::error("{}: GPU processes of pid {} may stay frozen: {}", job_.LogTag(), pid_, g.ToString());
  }
  if (tree_runs) ContinueTree(pid_);
  if (!tree_runs) {
    // CRIU ended the tree at the end of a good dump and a later step
    // failed: bring the workload back from the local images we still have.
    auto back = RollbackFromStaging();
    std::string note = back.ok() ? fmt::format("; the target was restored from the local images as pid {}", *back)
                                 : fmt::format("; the target could not be restored: {}; its images are kept in {}",
                                               back.status().message(), images_dir_.string());
    spdlog::warn("{}{}", job_.LogTag(), note);
    return Abandon(Status(err.code(), err.message() + note), !back.ok());
  }
  return Abandon(err);
}

Result<int> CheckpointPipeline::RollbackFromStaging() {
  if (options_.contains("container")) return RollbackContainer();
  if (env_.reaper) env_.reaper->ReapOrphans();
  CKPTD_ASSIGN_OR_RETURN(criu::RestoreOptions ro, RestoreOptionsFor(options_, images_dir_, staging_));
  ro.log_file = "rollback-restore.log";
  ro.deadline = std::chrono::seconds(job_.ckpt.timeout_s);
  ro.on_criu_started = NoteToolStarted(ctx_, "rollback:criu-started");
  ro.notify = [this](const std::string& script, int pid) -> Status {
    if (pid <= 0 || (script != "setup-namespaces" && script != "post-restore")) return Status::Ok();
    return ctx_->Note("rollback:root-known", [&](Journal& j) { j.restored = Identify(pid); });
  };
  int restored = 0;
  Status st = RunStep(
      ctx_, Step::kRollback,
      [&]() -> Status {
        CKPTD_ASSIGN_OR_RETURN(criu::RestoreResult back, env_.criu->Restore(ro));
        restored = back.pid;
        // orphan_pts_master: a rollback has no console to hand the new
        // terminal to (back.orphan_pts_master closes): it hangs up.
        // The restored tree's GPU processes are still checkpointed.
        if (env_.gpu && !gpu_.pids.empty()) {
          Status g = FollowRestoredGpuPids(back.pid, &gpu_);
          if (g.ok()) g = env_.gpu->AfterRestore(back.pid, &gpu_);
          if (!g.ok()) return Status(g.code(), "gpu restore of the rolled-back tree: " + g.message());
        }
        return Status::Ok();
      },
      [&](Journal& j) {
        j.dumped_root = pid_;
        j.root_existed = false;
        j.restore_began = BootTicksNow();
        j.restored.reset();
      });
  if (!st.ok()) return st;
  return restored;
}

// The container back under its own id and bundle from the staging images
// (its rootfs never changed: no diff is applied).
Result<int> CheckpointPipeline::RollbackContainer() {
  std::optional<api::ContainerTarget> target = ContainerFromJson(options_);
  if (!target) return Internal("rollback of a container: the job's options name none");
  ContainerRestore r;
  r.target = std::move(*target);
  r.images_dir = images_dir_;
  r.work_dir = staging_ / "rollback-work";
  r.log_dir = opts_.container_log_dir;
  r.apply_rootfs_diff = false;
  r.tcp_established = job_.ckpt.tcp_established;
  r.file_locks = job_.ckpt.file_locks;
  r.ext_unix_sk = job_.ckpt.ext_unix_sk;
  r.on_started = NoteToolStarted(ctx_, "rollback:criu-started");
  int restored = 0;
  Status st = RunStep(
      ctx_, Step::kRollback,
      [&]() -> Status {
        CKPTD_ASSIGN_OR_RETURN(runc::ContainerState s, RestoreContainer(env_.runc, r, SystemProcessRunner::Default()));
        restored = s.pid;
        CKPTD_RETURN_IF_ERROR(ctx_->Note("rollback:root-known", [&](Journal& j) { j.restored = Identify(s.pid); }));
        if (env_.gpu && !gpu_.pids.empty()) {
          CKPTD_RETURN_IF_ERROR(FollowRestoredGpuPids(s.pid, &gpu_).WithContext("gpu restore"));
          return env_.gpu->AfterRestore(s.pid, &gpu_).WithContext("gpu restore");
        }
        return Status::Ok();
      },
      [&](Journal& j) {
        j.dumped_root = 0;  // a container's pids live in its own namespace
        j.root_existed = false;
        j.restore_began = BootTicksNow();
        j.restored.reset();
      });
  if (!st.ok()) return st;
  return restored;
}

Status CheckpointPipeline::Abandon(const Status& failure, bool keep_staging) {
  StopUploaders();
  // The error names CRIU's log: kept past the staging directory.
  const Status err = KeepLogsOf(failure, opts_.keep_every_job_log, staging_, opts_.job_log_dir, job_.id);
  if (env_.images) {
    Status st = env_.images->DeletePrefix(id_ + "/");
    if (st.ok()) st = env_.images->RemoveIncomplete(id_ + "/");
    if (!st.ok()) spdlog::warn("{}: removing objects: {}", job_.LogTag(), st.ToString());
  }
  if (!gpu_.report.is_null()) UpdateInfo({}).IgnoreError();
  if (keep_staging) ctx_->Note("", [](Journal& j) { j.staging_kept = true; }).IgnoreError();
  Status c = ctx_->Conclude(err, Step::kRecover, [&](const Catalog::BatchExtra& extra) {
    return catalog_->Deprecate(id_, err.message(), extra).status();
  });
  if (!c.ok()) spdlog::warn("{}: deprecate: {}", job_.LogTag(), c.ToString());
  if (!keep_staging) {
    std::error_code ec;
    fs::remove_all(staging_, ec);
  }
  return err;
}

Status CheckpointPipeline::FinishFromStaging() {
  Phase(JobPhase::kUpload);
  // Whatever the dead daemon had streamed is incomplete or unconfirmed:
  // start the objects afresh from the staged copy.
  CKPTD_RETURN_IF_ERROR(env_.images->DeletePrefix(id_ + "/"));
  CKPTD_RETURN_IF_ERROR(env_.images->RemoveIncomplete(id_ + "/"));
  manifest_ = BaseManifest();
  CKPTD_RETURN_IF_ERROR(RunStep(ctx_, Step::kUpload, [&]() -> Status {
    auto rec = catalog_->Get(id_);
    {
      MutexLock lock(first_byte_mu_);
      if (rec.ok() && rec->status == CheckpointStatus::kUpdatedInfo)
        uploading_ = false;
      else
        uploading_ = true;
    }
    CKPTD_RETURN_IF_ERROR(FirstByte());
    CKPTD_RETURN_IF_ERROR(
        UploadDir(env_.images, id_ + "/", images_dir_, codec_, opts_.image_checksum, Progress(), &manifest_.files));
    if (manifest_.files.empty()) return IOError("no staged image files");
    return ConfirmObjects(manifest_.files);
  }));
  CKPTD_RETURN_IF_ERROR(WriteManifest());
  CKPTD_RETURN_IF_ERROR(MarkReady());
  std::error_code ec;
  fs::remove_all(staging_, ec);
  return Status::Ok();
}

}  // namespace ckptd

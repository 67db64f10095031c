// The checkpoint pipeline of a job (see job_manager.h for the contract).
#include <fcntl.h>
#include <signal.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "images/image_streamer.h"
#include "images/page_uploader.h"
#include "common/clock.h"
#include "jobs/job_manager.h"
#include "images/manifest.h"
#include "store/codec.h"
#include "store/digest.h"

namespace ckptd {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

using SteadyClock = std::chrono::steady_clock;

std::string Cmdline(int pid) {
  std::ifstream f(fmt::format("/proc/{}/cmdline", pid), std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(f)), {});
  while (!s.empty() && s.back() == '\0') s.pop_back();
  std::replace(s.begin(), s.end(), '\0', ' ');
  return s;
}

// Streams one image file into the store through an EncodingWriter.
Status UploadFile(ObjectStore* store, const std::string& key, const fs::path& file, const CodecOptions& co, HashAlg hash,
                  const std::function<Status(uint64_t)>& progress, ManifestFile* out) {
  int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + file.string(), errno);
  struct FdCloser {
    int fd;
    ~FdCloser() { close(fd); }
  } closer{fd};
  uint64_t size = fs::file_size(file);
  CKPTD_ASSIGN_OR_RETURN(auto inner, store->NewWriter(key, WriteOptions{size}));
  EncodingOptions eo;
  eo.hash = hash;
  CKPTD_ASSIGN_OR_RETURN(auto w, EncodingWriter::Create(std::move(inner), co, eo));
  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      w->Abort();
      return ErrnoError("read " + file.string(), errno);
    }
    if (n == 0) break;
    if (Status st = w->Write(std::string_view(buf.data(), static_cast<size_t>(n))); !st.ok()) {
      w->Abort();
      return st.WithContext("upload " + key);
    }
    if (Status st = progress(static_cast<uint64_t>(n)); !st.ok()) {
      w->Abort();
      return st;
    }
  }
  CKPTD_RETURN_IF_ERROR(w->Commit().WithContext("upload " + key));
  *out = CommittedFile(file.filename().string(), *w);
  if (out->size != size)
    return IOError(fmt::format("{} changed while uploading ({} bytes, then {})", file.string(), size, out->size));
  return Status::Ok();
}

}  // namespace

Status JobManager::RunCheckpoint(const JobPtr& job) {
  const std::string id = job->checkpoint_id;
  const api::CheckpointJobRequest& req = job->ckpt;
  const int pid = job->pid;
  const fs::path staging = fs::path(opts_.staging_dir) / id;
  const fs::path images_dir = staging / "images";
  auto t_total = SteadyClock::now();
  json::object timings;
  bool uploading = false;
  bool dumped = false;
  bool hooked = false;
  GpuJobContext gpu;
  gpu.log_tag = fmt::format("job {} checkpoint {}", job->id, id);
  gpu.mode = req.gpu;
  std::string phase = "info";
  std::string criu_version = probe_.get().version ? probe_.get().version->ToString() : "";

  Status st = [&]() -> Status {
    // 1. info: who we dump, on what.
    SetPhase(job, phase);
    auto t = SteadyClock::now();
    CKPTD_ASSIGN_OR_RETURN(Codec codec, ParseCodec(req.compression));
    CodecOptions codec_opts;
    codec_opts.codec = codec;
    if (codec == Codec::kZstd) codec_opts.level = opts_.zstd_level;
    if (kill(pid, 0) != 0) return NotFound(fmt::format("process {} is gone", pid));
    utsname u{};
    uname(&u);
    json::object platform{{"os", u.sysname}, {"kernel", u.release}, {"arch", u.machine}, {"criu_version", criu_version}};
    json::object opts = CheckpointOptionsToJson(req);
    // A target with a mount namespace of its own (unshare --mount-proc) is
    // dumped with auto external mounts and restored with those and CRIU's
    // root (criu_driver.h); both go with the options into info and the
    // manifest, so every restore passes them.
    CKPTD_ASSIGN_OR_RETURN(std::string restore_root, criu::RestoreRootFor(pid));
    if (!restore_root.empty()) {
      opts["restore_root"] = restore_root;
      opts["auto_ext_mounts"] = true;
    }
    json::object info{{"pid", pid},
                      {"cmdline", Cmdline(pid)},
                      {"options", opts},
                      {"platform", platform},
                      {"job_id", job->id},
                      {"node", u.nodename}};
    hooked = true;
    CKPTD_RETURN_IF_ERROR(hooks_->BeforeDump(pid, &gpu).WithContext("gpu before dump"));
    if (!gpu.report.is_null()) info["gpu"] = gpu.report;
    std::string platform_str = fmt::format("{}/{} kernel {}; criu {}", u.sysname, u.machine, u.release, criu_version);
    CKPTD_RETURN_IF_ERROR(catalog_->SetInfo(id, gpu.model, platform_str, info).status());
    timings["info"] = MillisSince(t);

    // 2. CRIU dump into staging.
    phase = "dump";
    SetPhase(job, phase);
    t = SteadyClock::now();
    std::error_code ec;
    fs::remove_all(staging, ec);
    fs::create_directories(images_dir, ec);
    if (ec) return IOError(fmt::format("create {}: {}", images_dir.string(), ec.message()));
    criu::DumpOptions d;
    d.pid = pid;
    d.images_dir = images_dir;
    d.work_dir = staging;
    d.log_level = req.log_level;
    d.leave_running = req.leave_running;
    d.tcp_established = req.tcp_established;
    d.shell_job = req.shell_job;
    d.ext_unix_sk = req.ext_unix_sk;
    d.file_locks = req.file_locks;
    d.link_remap = req.link_remap;
    d.manage_cgroups = req.manage_cgroups;
    d.external = req.external;
    d.auto_ext_mounts = !restore_root.empty();
    d.deadline = std::chrono::seconds(req.timeout_s);
    // CRIU's pre-dump notification comes before it freezes the tree and
    // post-dump before it resumes (or kills) it: the span between them is
    // how long the workload stood still.
    std::optional<SteadyClock::time_point> frozen_from, frozen_until;
    d.notify = [&](const std::string& script, int) -> Status {
      if (script == "pre-dump") frozen_from = SteadyClock::now();
      if (script == "post-dump") frozen_until = SteadyClock::now();
      return Status::Ok();
    };
    // Images go to the store while CRIU writes them (image_streamer.h):
    // possibly_uploaded just before the first byte. Holes are punched behind
    // the upload only when the target keeps running: otherwise the staging
    // images are the rollback copy should the upload fail.
    std::unique_ptr<ImageStreamer> streamer;
    std::unique_ptr<PageUploader> pages;
    // Both may store the first byte; possibly_uploaded is marked once.
    std::mutex first_byte_mu;
    auto first_byte = [&]() -> Status {
      std::lock_guard lock(first_byte_mu);
      if (uploading) return Status::Ok();
      uploading = true;
      return catalog_->MarkPossiblyUploaded(id).status();
    };
    if (opts_.stream_images) {
      ImageStreamerOptions so;
      so.store = images_;
      so.key_prefix = id + "/";
      so.log_tag = gpu.log_tag;
      so.dir = images_dir;
      so.codec = codec_opts;
      so.encoding.hash = opts_.image_checksum;
      so.punch_holes = req.leave_running;
      // Backpressure only bounds anything when shipped bytes are released.
      if (req.leave_running) so.max_backlog_bytes = opts_.staging_backlog_bytes;
      so.on_first_byte = first_byte;
      so.progress = [&](uint64_t n) -> Status {
        AddBytes(job, n);
        return cancelled() ? Cancelled("daemon shutting down") : Status::Ok();
      };
      const bool backpressure = so.max_backlog_bytes > 0;
      // The memory itself comes over CRIU's page-server socket (it is not
      // in the staging files that a stopped target's rollback needs).
      if (req.leave_running && opts_.page_server) {
        PageUploaderOptions po;
        static_cast<ImageUploadOptions&>(po) = so;  // same store, prefix, codec and job
        // The pages queue in memory instead of in staging: the same bound.
        po.max_queued_bytes = static_cast<uint64_t>(opts_.staging_backlog_bytes);
        CKPTD_ASSIGN_OR_RETURN(pages, PageUploader::Start(std::move(po)));
        d.page_server_fd = pages->criu_fd();
      }
      CKPTD_ASSIGN_OR_RETURN(streamer, ImageStreamer::Start(std::move(so)));
      d.on_criu_started = [&, backpressure](pid_t criu_pid) {
        if (pages) pages->CriuStarted();
        // The streamer pauses CRIU when it gets too far ahead.
        if (!backpressure) return;
        if (Status st = streamer->SetWriterProcess(criu_pid); !st.ok())
          spdlog::warn("{}: {}: no backpressure", gpu.log_tag, st.ToString());
      };
    }
    auto dump = criu_->Dump(d);
    if (!dump.ok()) return dump.status();
    dumped = true;
    // A failed GPU resume keeps `hooked`: the failure path tries once more.
    CKPTD_RETURN_IF_ERROR(hooks_->AfterDump(pid, true, req.leave_running, &gpu).WithContext("gpu after dump"));
    hooked = false;
    timings["dump"] = MillisSince(t);
    if (frozen_from && frozen_until) {
      double frozen = std::chrono::duration<double>(*frozen_until - *frozen_from).count();
      timings["freeze"] = static_cast<int64_t>(frozen * 1000);
      ObserveStep("checkpoint", "freeze", frozen);
    }
    ObserveGpuSteps("checkpoint", gpu.report);

    // 3. Upload every image file (possibly_uploaded before the first byte).
    phase = "upload";
    SetPhase(job, phase);
    t = SteadyClock::now();
    std::vector<ManifestFile> streamed;
    if (pages) {
      auto r = pages->Finish();
      timings["pages_over_socket_bytes"] = pages->bytes();
      if (!r.ok()) return r.status();
      streamed = std::move(*r);
    }
    if (streamer) {
      auto r = streamer->Finish();
      StreamStats ss = streamer->stats();
      // Overlap: upload_after_dump is what streaming could not hide.
      timings["upload_first_byte"] = ss.first_byte_ms;
      timings["upload_after_dump"] = MillisSince(t);
      timings["staging_peak_backlog_bytes"] = ss.peak_backlog;
      timings["upload_bytes_during_dump"] = ss.bytes_before_finish;
      if (ss.writer_pauses > 0) {
        timings["criu_paused_for_upload"] = ss.writer_paused_ms;
        timings["criu_pauses"] = ss.writer_pauses;
      }
      if (!r.ok()) return r.status();
      std::move(r->begin(), r->end(), std::back_inserter(streamed));
      auto by_name = [](const auto& a, const auto& b) { return a.name < b.name; };
      std::sort(streamed.begin(), streamed.end(), by_name);
      auto dup = std::adjacent_find(streamed.begin(), streamed.end(),
                                    [](const auto& a, const auto& b) { return a.name == b.name; });
      if (dup != streamed.end())
        return Internal(fmt::format("image {} came both over the page server and as a file", dup->name));
    }
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(streamer ? fs::path() : images_dir, ec)) {
      if (e.is_regular_file()) files.push_back(e.path());
      else spdlog::warn("job {} checkpoint {}: skipping non-regular image entry {}", job->id, id, e.path().string());
    }
    if (!streamer && ec) return IOError(fmt::format("list {}: {}", images_dir.string(), ec.message()));
    if (!streamer && files.empty()) return IOError("CRIU wrote no image files");
    std::sort(files.begin(), files.end());
    if (!uploading) CKPTD_RETURN_IF_ERROR(catalog_->MarkPossiblyUploaded(id).status());
    uploading = true;
    Manifest m;
    m.checkpoint_id = id;
    m.pid = pid;
    m.criu_version = criu_version;
    m.codec = std::string(CodecName(codec));
    m.created_at_ms = clock_->NowMillis();
    m.options = opts;
    m.gpu_pids = gpu.pids;
    auto progress = [&](uint64_t n) -> Status {
      AddBytes(job, n);
      return cancelled() ? Cancelled("daemon shutting down") : Status::Ok();
    };
    m.files = std::move(streamed);
    for (const auto& f : files) {
      ManifestFile mf;
      CKPTD_RETURN_IF_ERROR(UploadFile(images_, id + "/" + f.filename().string(), f, codec_opts, opts_.image_checksum,
                                       progress, &mf));
      m.files.push_back(std::move(mf));
    }
    // Confirm: every object is there with the size written.
    for (const auto& f : m.files) {
      auto h = images_->Head(id + "/" + f.name);
      if (!h.ok()) return h.status().WithContext("confirm " + f.name);
      if (h->size != f.stored_size)
        return IOError(fmt::format("confirm {}: {} bytes stored, {} written", f.name, h->size, f.stored_size));
    }
    timings["upload"] = MillisSince(t);

    // 4. Manifest last, then ready.
    phase = "manifest";
    SetPhase(job, phase);
    t = SteadyClock::now();
    std::string manifest = m.Serialize();
    std::string checksum = Sha256::HexOf(manifest);
    CKPTD_RETURN_IF_ERROR(images_->PutBytes(id + "/" + kManifestName, manifest).WithContext("write manifest"));
    {
      auto h = images_->Head(id + "/" + kManifestName);
      if (!h.ok()) return h.status().WithContext("confirm manifest");
      if (h->size != manifest.size()) return IOError("confirm manifest: size differs from what was written");
    }
    timings["manifest"] = MillisSince(t);
    uint64_t stored = 0;
    for (const auto& f : m.files) stored += f.stored_size;
    timings["total"] = MillisSince(t_total);
    json::object result{{"restore_path", job->restore_path},
                        {"checksum", checksum},
                        {"image_bytes", m.TotalSize()},
                        {"stored_bytes", stored + manifest.size()},
                        {"files", m.files.size()},
                        {"codec", m.codec},
                        {"timings_ms", timings}};
    CKPTD_RETURN_IF_ERROR(catalog_
                              ->Update(id,
                                       [&](CheckpointRecord& r) {
                                         if (!r.info.is_object()) r.info = json::object{};
                                         auto& o = r.info.as_object();
                                         o["image_size"] = m.TotalSize();
                                         o["stored_size"] = stored + manifest.size();
                                         o["files"] = m.files.size();
                                         o["codec"] = m.codec;
                                         o["timings_ms"] = timings;
                                         if (!gpu.report.is_null()) o["gpu"] = gpu.report;
                                         return Status::Ok();
                                       })
                              .status());
    phase = "ready";
    CKPTD_RETURN_IF_ERROR(catalog_->MarkReady(id, job->restore_path, checksum).status());
    {
      std::lock_guard lock(mu_);
      job->result = std::move(result);
      job->phase = "done";
    }
    return Status::Ok();
  }();

  std::error_code ec;
  if (st.ok()) {
    fs::remove_all(staging, ec);
    return st;
  }
  // Failure: never leave the tree frozen, remove what was written, deprecate.
  if (hooked) {
    Status g = hooks_->AfterDump(pid, false, true, &gpu);
    if (!g.ok()) spdlog::error("job {} checkpoint {}: GPU processes of pid {} may stay frozen: {}", job->id, id, pid, g.ToString());
  }
  if (!dumped || req.leave_running) criu::ResumeStoppedTree(pid);
  Status err = st.WithContext(fmt::format("checkpoint {}: {}", id, phase));
  (void)uploading;
  if (dumped && !req.leave_running) {
    // CRIU ended the tree at the end of a good dump, and a later step
    // failed: bring the workload back from the local images we still have.
    if (reaper_) reaper_->ReapOrphans();
    criu::RestoreOptions ro;
    ro.images_dir = images_dir;
    ro.work_dir = staging;
    ro.log_file = "rollback-restore.log";
    ro.tcp_established = req.tcp_established;
    ro.shell_job = req.shell_job;
    ro.ext_unix_sk = req.ext_unix_sk;
    ro.file_locks = req.file_locks;
    ro.manage_cgroups = req.manage_cgroups;
    ro.deadline = std::chrono::seconds(req.timeout_s);
    auto back = criu_->Restore(ro);
    if (back.ok() && !gpu.pids.empty()) {
      // The restored tree's GPU processes are still checkpointed.
      if (Status g = hooks_->AfterRestore(back->pid, &gpu); !g.ok())
        back = Status(g.code(), "gpu restore of the rolled-back tree: " + g.message());
    }
    std::string note = back.ok() ? fmt::format("; the target was restored from the local images as pid {}", back->pid)
                                 : "; the target could not be restored: " + back.status().message();
    spdlog::warn("job {} checkpoint {}{}", job->id, id, note);
    err = Status(err.code(), err.message() + note);
  }
  CleanupCheckpoint(id);
  if (!gpu.report.is_null()) {
    // Keep what the GPU steps did (which one failed, the rollback) in info.
    catalog_
        ->Update(id,
                 [&](CheckpointRecord& r) {
                   if (!r.info.is_object()) r.info = json::object{};
                   r.info.as_object()["gpu"] = gpu.report;
                   return Status::Ok();
                 })
        .status()
        .IgnoreError();
  }
  auto d = catalog_->Deprecate(id, err.message());
  if (!d.ok()) spdlog::warn("job {} checkpoint {}: deprecate: {}", job->id, id, d.status().ToString());
  {
    std::lock_guard lock(mu_);
    job->phase = phase;
  }
  return Status(st.code(), err.message());
}

}  // namespace ckptd

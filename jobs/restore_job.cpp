// The restore pipeline of a job (see job_manager.h for the contract).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <thread>
#include <fstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "jobs/job_manager.h"
#include "images/manifest.h"
#include "store/codec.h"
#include "store/digest.h"
#include "store/object_uri.h"

namespace ckptd {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

using SteadyClock = std::chrono::steady_clock;

bool Opt(const json::value& o, const char* k) {
  if (!o.is_object()) return false;
  auto* v = o.as_object().if_contains(k);
  return v && v->is_bool() && v->as_bool();
}

// Streams one object back, decoding it, into `dest`; verifies size and SHA-256.
Status DownloadFile(ObjectStore* store, const ManifestFile& f, const fs::path& dest,
                    const std::function<Status(uint64_t)>& progress) {
  CKPTD_ASSIGN_OR_RETURN(Codec codec, ParseCodec(f.codec));
  auto inner = store->NewReader(f.name);
  if (!inner.ok()) return inner.status().WithContext(fmt::format("image {}", f.name));
  DecodingReader r(std::move(*inner), codec, f.hash);
  int fd = open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("create " + dest.string(), errno);
  struct FdCloser {
    int fd;
    ~FdCloser() { close(fd); }
  } closer{fd};
  std::string buf(1 << 20, '\0');
  for (;;) {
    auto n = r.Read(std::span<char>(buf.data(), buf.size()));
    if (!n.ok()) return n.status().WithContext(fmt::format("image {}", f.name));
    if (*n == 0) break;
    if (r.bytes_read() > f.size)
      return Corruption(fmt::format("image {}: longer than the manifest's {} bytes", f.name, f.size));
    size_t off = 0;
    while (off < *n) {
      ssize_t w = write(fd, buf.data() + off, *n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return ErrnoError("write " + dest.string(), errno);
      off += static_cast<size_t>(w);
    }
    CKPTD_RETURN_IF_ERROR(progress(*n));
  }
  if (r.bytes_read() != f.size)
    return Corruption(fmt::format("image {}: {} bytes, manifest says {}", f.name, r.bytes_read(), f.size));
  if (r.digest_hex() != f.digest)
    return Corruption(fmt::format("image {}: {} {} does not match the manifest's {}", f.name,
                                  HashAlgName(f.hash), r.digest_hex(), f.digest));
  return Status::Ok();
}

// Downloads every file with up to `parallelism` threads (largest first so
// the big pages image starts at once). The first error stops the others at
// their next chunk and is returned. Memory: parallelism x (1 MiB buffer +
// decoder window).
Status DownloadAll(ObjectStore* store, const std::vector<ManifestFile>& files, const fs::path& dir,
                   int parallelism, const std::function<Status(uint64_t)>& progress) {
  std::vector<const ManifestFile*> order;
  for (const auto& f : files) order.push_back(&f);
  std::stable_sort(order.begin(), order.end(),
                   [](const ManifestFile* a, const ManifestFile* b) { return a->size > b->size; });
  std::mutex mu;
  size_t next = 0;
  Status first_error;
  auto locked_progress = [&](uint64_t n) -> Status {
    std::lock_guard lock(mu);
    if (!first_error.ok()) return Cancelled("another image failed");
    return progress(n);
  };
  auto worker = [&] {
    for (;;) {
      const ManifestFile* f;
      {
        std::lock_guard lock(mu);
        if (next >= order.size() || !first_error.ok()) return;
        f = order[next++];
      }
      Status st = DownloadFile(store, *f, dir / f->name, locked_progress);
      if (!st.ok()) {
        std::lock_guard lock(mu);
        if (first_error.ok() || first_error.code() == Code::kCancelled) first_error = st;
        return;
      }
    }
  };
  int n = std::clamp<int>(parallelism, 1, static_cast<int>(std::max<size_t>(order.size(), 1)));
  std::vector<std::thread> threads;
  for (int i = 1; i < n; ++i) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  return first_error;
}

// SIGKILLs the tree rooted at `root` (children first found through
// /proc/<pid>/task/<tid>/children).
void KillTree(int root) {
  std::vector<int> todo{root}, all;
  while (!todo.empty()) {
    int p = todo.back();
    todo.pop_back();
    all.push_back(p);
    std::error_code ec;
    for (const auto& t : fs::directory_iterator(fmt::format("/proc/{}/task", p), ec)) {
      std::ifstream f(t.path() / "children");
      int c;
      while (f >> c) todo.push_back(c);
    }
  }
  for (int p : all) kill(p, SIGKILL);
}

}  // namespace

Status JobManager::RunRestore(const JobPtr& job) {
  const fs::path staging = fs::path(opts_.staging_dir) / ("restore-" + job->id);
  const fs::path images_dir = staging / "images";
  json::object timings;
  auto t_total = SteadyClock::now();
  std::string phase = "manifest";
  int restored_pid = 0;

  Status st = [&]() -> Status {
    SetPhase(job, phase);
    // Deprecation waits for this hold (jobs/checkpoint_readers.h).
    CKPTD_ASSIGN_OR_RETURN(CheckpointReaders::Hold reading, HoldForRead(readers_.load(), *catalog_, job->checkpoint_id));
    auto t = SteadyClock::now();
    CKPTD_ASSIGN_OR_RETURN(auto store, OpenObjectStore(job->restore_path, opts_.store_config));
    auto bytes = store->GetBytes(kManifestName);
    if (!bytes.ok()) {
      if (bytes.status().code() == Code::kNotFound)
        return NotFound(fmt::format("no {} under {}", kManifestName, job->restore_path));
      return bytes.status();
    }
    if (job->expected_checksum && Sha256::HexOf(*bytes) != *job->expected_checksum)
      return Corruption(fmt::format("manifest sha256 {} does not match the catalog's checksum {}",
                                    Sha256::HexOf(*bytes), *job->expected_checksum));
    CKPTD_ASSIGN_OR_RETURN(Manifest m, Manifest::Parse(*bytes));
    timings["manifest"] = MillisSince(t);

    // Every byte verified before CRIU sees any of it.
    phase = "download";
    SetPhase(job, phase);
    t = SteadyClock::now();
    std::error_code ec;
    fs::remove_all(staging, ec);
    fs::create_directories(images_dir, ec);
    if (ec) return IOError(fmt::format("create {}: {}", images_dir.string(), ec.message()));
    auto progress = [&](uint64_t n) -> Status {
      AddBytes(job, n);
      return cancelled() ? Cancelled("daemon shutting down") : Status::Ok();
    };
    CKPTD_RETURN_IF_ERROR(DownloadAll(store.get(), m.files, images_dir, opts_.restore_parallelism, progress));
    timings["download"] = MillisSince(t);
    reading.Release();

    phase = "restore";
    SetPhase(job, phase);
    t = SteadyClock::now();
    // The killed original's orphans must be reaped or their pids stay taken.
    if (reaper_) reaper_->ReapOrphans();
    criu::RestoreOptions ro;
    ro.images_dir = images_dir;
    ro.work_dir = staging;
    ro.tcp_established = Opt(m.options, "tcp_established");
    ro.shell_job = Opt(m.options, "shell_job");
    ro.ext_unix_sk = Opt(m.options, "ext_unix_sk");
    ro.file_locks = Opt(m.options, "file_locks");
    ro.manage_cgroups = Opt(m.options, "manage_cgroups");
    // Dumped with its own mount namespace: CRIU's root for it. Only "/" is
    // ever written (criu::RestoreRootFor); a manifest asking for another
    // directory is not ours to trust.
    if (auto* o = m.options.is_object() ? m.options.as_object().if_contains("restore_root") : nullptr) {
      if (!o->is_string() || o->as_string() != "/")
        return Corruption(fmt::format("manifest: restore_root {} is not supported (only \"/\")", json::serialize(*o)));
      ro.root = "/";
    }
    ro.auto_ext_mounts = Opt(m.options, "auto_ext_mounts");
    ro.deadline = std::chrono::seconds(job->rst.timeout_s);
    // CRIU kills what it forked when a restore fails; should a tree with the
    // dumped root pid appear anyway, it is ours to remove (no half-restored
    // workload). A root already running before is left alone.
    bool root_existed = m.pid > 0 && kill(m.pid, 0) == 0;
    auto res = criu_->Restore(ro);
    if (!res.ok()) {
      if (m.pid > 0 && !root_existed && kill(m.pid, 0) == 0) {
        spdlog::warn("job {} checkpoint {}: restore failed but pid {} of the dumped tree exists: killing it",
                     job->id, job->checkpoint_id.empty() ? "-" : job->checkpoint_id, m.pid);
        KillTree(m.pid);
      }
      return res.status();
    }
    restored_pid = res->pid;
    GpuJobContext gpu;
    gpu.log_tag = fmt::format("job {} checkpoint {}", job->id, job->checkpoint_id.empty() ? "-" : job->checkpoint_id);
    gpu.device_map = job->rst.device_map;
    gpu.pids = m.gpu_pids;
    if (Status h = hooks_->AfterRestore(restored_pid, &gpu); !h.ok()) {
      // Never leave a half-restored workload behind.
      KillTree(restored_pid);
      return h.WithContext("gpu after restore");
    }
    timings["restore"] = MillisSince(t);
    timings["total"] = MillisSince(t_total);
    ObserveGpuSteps("restore", gpu.report);
    std::lock_guard lock(mu_);
    job->pid = restored_pid;
    job->phase = "done";
    job->result = json::object{{"pid", restored_pid},
                               {"image_bytes", m.TotalSize()},
                               {"criu_version", m.criu_version},
                               {"source_pid", m.pid},
                               {"timings_ms", timings}};
    if (!gpu.report.is_null()) job->result["gpu"] = gpu.report;
    return Status::Ok();
  }();

  std::error_code ec;
  fs::remove_all(staging, ec);
  if (st.ok()) return st;
  return Status(st.code(), st.WithContext(fmt::format("restore of {}: {}", job->restore_path, phase)).message());
}

}  // namespace ckptd

#include "daemon/job_system.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "api/job_handlers.h"
#include "common/cpus.h"
#include "common/crash_point.h"
#include "common/subprocess.h"
#include "store/local_object_store.h"
#include "store/object_uri.h"

#include <algorithm>
#include <filesystem>

namespace ckptd {

namespace json = boost::json;

ObjectStoreConfig StoreConfigFrom(const Config& config) {
  ObjectStoreConfig sc;
  sc.s3.endpoint = config.s3_endpoint;
  sc.s3.region = config.s3_region;
  sc.s3.access_key = config.s3_access_key;
  sc.s3.secret_key = config.s3_secret_key;
  if (config.s3_path_style != "auto") sc.s3.path_style = config.s3_path_style == "true";
  sc.s3.max_retries = config.s3_max_retries;
  sc.s3.retry_max_ms = static_cast<int>(config.s3_retry_max_ms);
  sc.s3.retry_base_ms = std::min(sc.s3.retry_base_ms, sc.s3.retry_max_ms);
  // Upload memory of one checkpoint: the multipart writer of the object
  // being streamed holds part_size x (max_in_flight + 1).
  uint64_t parts = static_cast<uint64_t>(config.upload_memory_bytes) / sc.s3.part_size;
  sc.s3.max_in_flight = static_cast<int>(std::clamp<uint64_t>(parts / 2, 1, 16));
  sc.s3_from_env = true;
  return sc;
}

JobSystem::~JobSystem() {
  Drain(std::chrono::milliseconds(0));
  jobs_.reset();
  if (probe_.valid()) probe_.wait();
  if (reaper_) reaper_->Stop();
}

namespace {

// The CRIU start-up probe, in the background: the daemon starts (and says
// why jobs fail) even when CRIU is missing.
std::shared_future<criu::ProbeResult> ProbeCriu(const criu::CriuDriver* c, std::string path, std::string error) {
  return std::async(std::launch::async,
                    [c, path, error] {
                      if (!c) {
                        criu::ProbeResult p;
                        p.path = path;
                        p.error = error;
                        return p;
                      }
                      criu::ProbeResult p = c->Probe();
                      if (p.ok()) {
                        spdlog::info("CRIU {} at {}: usable", p.version ? p.version->ToString() : "?", p.path);
                      } else {
                        spdlog::warn("CRIU at {} is not usable; checkpoint and restore jobs will fail: {}", p.path,
                                     p.error);
                      }
                      return p;
                    })
      .share();
}

gpu::GpuBackend OpenGpu(const Config& config) {
  gpu::GpuConfig gc;
  gc.driver_library = config.cuda_library;
  gc.tool_path = config.cuda_checkpoint_path;
  gc.nvml_library = config.nvml_library;
  gpu::GpuBackend backend = gpu::OpenGpuCheckpointer(gc, SystemProcessRunner::Default());
  const auto& a = backend.availability;
  if (a.available) {
    spdlog::info("GPU checkpointing via {} ({}){}; device memory per process: {}", a.backend, a.driver.version,
                 a.reason.empty() ? "" : ": " + a.reason, backend.memory ? "NVML" : backend.memory_unavailable);
  } else {
    spdlog::info("{}; GPU processes cannot be checkpointed", a.reason);
  }
  return backend;
}

Result<JobOptions> JobOptionsFrom(const Config& config) {
  JobOptions jo;
  jo.file_roots = config.FileRoots();
  jo.workers = config.job_workers;
  jo.queue = config.job_queue;
  jo.job_retention_ms = config.job_retention_s * 1000;
  jo.staging_dir = config.StagingDir();
  jo.container_log_dir = config.ContainerLogDir();
  jo.job_log_dir = config.JobLogDir();
  jo.keep_every_job_log = config.log_level == "debug";
  jo.staging_backlog_bytes = static_cast<uint64_t>(config.staging_backlog_bytes);
  jo.restore_parallelism = config.restore_parallelism;
  jo.zstd_level = static_cast<int>(config.zstd_level);
  auto alg = ParseHashAlg(config.image_checksum);
  if (!alg.ok()) return alg.status().WithContext("image_checksum");
  jo.image_checksum = *alg;
  jo.stream_images = config.stream_images == "true";
  const unsigned cpus = UsableCpus();
  jo.page_server = PageServerOn(config.page_server, cpus);
  spdlog::info("leave-running checkpoints take the memory {} (page_server = {}, {} CPUs)",
               jo.page_server ? "over CRIU's page-server socket" : "through staging files", config.page_server, cpus);
  return jo;
}

}  // namespace

Status JobSystem::OpenImageStore(const Config& config, JobOptions* jo) {
  // The image store from images_uri (file:// by default); the S3 settings
  // also serve restores from any s3:// restore_path.
  auto uri = ObjectUri::Parse(config.ImagesUri());
  if (!uri.ok()) return uri.status().WithContext("images_uri");
  if (uri->scheme == ObjectUri::Scheme::kFile) {
    auto store = LocalObjectStore::Open(uri->path);
    if (!store.ok()) return store.status().WithContext("image store");
    jo->images_uri = "file://" + (*store)->root() + "/";
    images_root_ = (*store)->root();
    images_ = std::move(*store);
  } else {
    auto store = OpenObjectStore(uri->ToString(), store_config_);
    if (!store.ok()) return store.status().WithContext("image store");
    images_ = std::move(*store);
    jo->images_uri = uri->ToString();
  }
  return Status::Ok();
}

Status JobSystem::Start(const Config& config, Db* db, Catalog* catalog, CheckpointReaders* readers,
                        MetricsRegistry* metrics, const RecoveryProgress& progress) {
  if (std::string armed = ArmedFailpoints(); !armed.empty())
    spdlog::warn("failpoints armed from the environment (tests only): {}", armed);
  reaper_ = std::make_unique<Reaper>();
  if (!reaper_->Start()) spdlog::warn("not a child subreaper: restored trees' orphans may stay zombies");
  criu::DriverConfig dc;
  dc.criu_path = config.criu_path;
  // A plugin dir that outlives a killed daemon: none left behind in /tmp.
  dc.plugin_dir = std::filesystem::path(config.data_dir) / "criu-plugins";
  Status plugins = criu::PrepareEmptyPluginDir(dc.plugin_dir);
  auto driver = plugins.ok() ? criu::CriuDriver::Create(dc) : Result<std::unique_ptr<criu::CriuDriver>>(plugins);
  if (driver.ok())
    criu_ = std::move(*driver);
  else
    spdlog::error("CRIU driver: {}", driver.status().ToString());
  probe_ = ProbeCriu(criu_.get(), config.criu_path, driver.ok() ? "" : driver.status().message());

  store_config_ = StoreConfigFrom(config);
  CKPTD_ASSIGN_OR_RETURN(JobOptions jo, JobOptionsFrom(config));
  CKPTD_RETURN_IF_ERROR(OpenImageStore(config, &jo));
  gpu_ = std::make_unique<GpuHooks>(OpenGpu(config), std::chrono::milliseconds(config.gpu_lock_timeout_ms));

  JobEnv env;
  env.criu = criu_.get();
  env.probe = probe_;
  env.gpu = gpu_.get();
  runc_ = std::make_unique<runc::RuncDriver>(runc::RuncOptions{config.runc_path, config.criu_path});
  env.runc = runc_.get();
  env.images = images_.get();
  env.open_store = [sc = store_config_](const std::string& uri) { return OpenObjectStore(uri, sc); };
  env.reaper = reaper_.get();
  env.readers = readers;
  env.metrics = metrics;
  env.clock = SystemClock::Default();
  jobs_ = std::make_unique<JobEngine>(std::move(jo), std::move(env), db, catalog);
  CKPTD_RETURN_IF_ERROR(jobs_->Recover(progress).WithContext("recovering jobs"));
  jobs_->Start();
  return Status::Ok();
}

void JobSystem::RegisterRoutes(api::Router* router) { api::RegisterJobRoutes(router, jobs_.get()); }

json::value JobSystem::GpuHealth() const { return gpu_ ? gpu_->availability().ToJson() : json::value(nullptr); }

bool JobSystem::WaitForCriuProbe(std::chrono::milliseconds timeout) const {
  return probe_.valid() && probe_.wait_for(timeout) == std::future_status::ready;
}

json::value JobSystem::CriuHealth() const {
  if (!probe_.valid()) return json::object{{"found", false}, {"error", "not started"}};
  if (probe_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return json::object{{"probing", true}};
  const criu::ProbeResult& p = probe_.get();
  return json::object{{"found", p.found},
                      {"path", p.path},
                      {"version", p.version ? json::value(p.version->ToString()) : json::value(nullptr)},
                      {"version_ok", p.version_ok},
                      {"check_passed", p.check_passed},
                      {"ok", p.ok()},
                      {"error", p.error.empty() ? json::value(nullptr) : json::value(p.error)}};
}

void JobSystem::Drain(std::chrono::milliseconds timeout) {
  if (jobs_) jobs_->Drain(timeout);
}

}  // namespace ckptd

// Everything the daemon's jobs need, built and torn down as one piece so the
// daemon's wiring stays a few lines: the orphan reaper (and subreaper flag),
// the CRIU driver and its cached start-up probe, the GPU backend (probed once;
// the daemon runs without one), the local image store and the job manager.
// Thread safety: Start/Stop from one thread; Health and the routes from any.
#pragma once

#include <future>
#include <memory>

#include <boost/json/value.hpp>

#include "api/router.h"
#include "criu/criu_driver.h"
#include "daemon/config.h"
#include "jobs/gpu_hooks.h"
#include "jobs/job_engine.h"
#include "jobs/reaper.h"
#include "store/catalog.h"
#include "store/db.h"
#include "store/object_store.h"
#include "store/object_uri.h"

namespace ckptd {

// The image-store settings of `config` (S3 endpoint, credentials, upload
// memory); AWS_* variables fill what is empty.
ObjectStoreConfig StoreConfigFrom(const Config& config);

class JobSystem {
 public:
  JobSystem() = default;
  ~JobSystem();
  // Starts the reaper, creates the CRIU driver and probes it in the
  // background (the daemon starts even when CRIU is missing), opens the image
  // store and the GPU backend, recovers what a dead daemon left unfinished
  // (jobs/recovery.h; `progress` hears how it goes) and starts the workers.
  // `readers` and `metrics` may be null; everything must outlive the job
  // system.
  Status Start(const Config& config, Db* db, Catalog* catalog, CheckpointReaders* readers, MetricsRegistry* metrics,
               const RecoveryProgress& progress = {});
  void RegisterRoutes(api::Router* router);
  // {found, path, version, version_ok, check_passed, error} (probing: true
  // until the start-up probe has finished).
  boost::json::value CriuHealth() const;
  // Waits (up to `timeout`) for the start-up CRIU probe; true when it ended.
  bool WaitForCriuProbe(std::chrono::milliseconds timeout) const;
  // GpuAvailability::ToJson() of the backend probed once at Start.
  boost::json::value GpuHealth() const;
  // Stops taking jobs and waits up to `timeout` for running ones.
  void Drain(std::chrono::milliseconds timeout);

  JobEngine* jobs() { return jobs_.get(); }
  ObjectStore* images() { return images_.get(); }
  // The image store's directory when it is local, else "".
  const std::string& images_root() const { return images_root_; }

 private:
  Status OpenImageStore(const Config& config, JobOptions* jo);

  std::unique_ptr<Reaper> reaper_;
  ObjectStoreConfig store_config_;
  std::string images_root_;
  std::unique_ptr<criu::CriuDriver> criu_;
  std::unique_ptr<runc::RuncDriver> runc_;
  std::shared_future<criu::ProbeResult> probe_;
  std::unique_ptr<ObjectStore> images_;
  std::unique_ptr<GpuHooks> gpu_;  // outlives jobs_
  std::unique_ptr<JobEngine> jobs_;
};

}  // namespace ckptd

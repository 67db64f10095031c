// What the job engine is built from: its settings (JobOptions) and its
// seams (JobEnv), both passed to the engine's constructor, in the manner of
// leveldb's Env: the daemon wires the real CRIU, GPU backend, object stores
// and clock (daemon/job_system.cpp), tests wire fakes. Nothing is set after
// the workers start.
// Thread safety: plain structs; what they point to must be safe for
// concurrent use and outlive the engine.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "criu/criu_driver.h"
#include "jobs/checkpoint_readers.h"
#include "jobs/job_hooks.h"
#include "jobs/reaper.h"
#include "runc/runc_driver.h"
#include "store/digest.h"
#include "store/object_store.h"

namespace ckptd {

struct JobOptions {
  int workers = 2;
  int queue = 16;
  std::string staging_dir;  // <data_dir>/staging
  // The image store's canonical URI (ends in '/'); restore_path is
  // <images_uri><id>/.
  std::string images_uri;
  // Directories file:// restore paths may name (Config::FileRoots()).
  std::vector<std::string> file_roots;
  // Streaming with leave_running: CRIU is paused (SIGSTOP) while this many
  // written bytes wait for upload, so the staging dir stays bounded. 0: never.
  uint64_t staging_backlog_bytes = 2ull << 30;
  // Checksum of each image's uncompressed bytes in the manifest (restore
  // verifies whichever algorithm a manifest names).
  HashAlg image_checksum = HashAlg::kBlake3;
  // zstd compression level (negative: zstd's fast modes; 0: 1).
  int zstd_level = 1;
  int restore_parallelism = 4;
  // Upload images while CRIU writes them (false: dump, then upload).
  bool stream_images = true;
  // Leave-running checkpoints (with stream_images): CRIU sends the pages
  // over its page-server protocol to the daemon (images/page_uploader.h)
  // instead of writing them into staging files. The daemon's config turns
  // it on with enough CPUs (page_server = "auto"); the tree stays frozen
  // until every page is taken in, which wants cores (see README).
  bool page_server = false;
  // Restored containers' stdout and stderr go to <container_log_dir>/<id>.log.
  std::string container_log_dir;
  // The tools' logs of failed jobs (of every job with keep_every_job_log)
  // are kept in <job_log_dir>/<job id>/ (jobs/job_logs.h); empty: never.
  std::string job_log_dir;
  bool keep_every_job_log = false;
  // Finished job records older than this are deleted (checked at start and
  // after a job ends, at most every min(retention, 10 min)); 0: kept forever.
  int64_t job_retention_ms = 7ll * 86400 * 1000;
};

// Opens the object store a restore_path (or the image store's URI) names.
using ObjectStoreOpener = std::function<Result<std::unique_ptr<ObjectStore>>(const std::string& uri)>;

struct JobEnv {
  // CRIU; null: every job answers Unavailable with the probe's error.
  const criu::CriuApi* criu = nullptr;
  std::shared_future<criu::ProbeResult> probe;  // CRIU's start-up probe (may still run)
  JobHooks* gpu = nullptr;                      // null: no GPU support
  const runc::RuncApi* runc = nullptr;          // null: container jobs answer Unavailable
  ObjectStore* images = nullptr;                // the daemon's image store
  ObjectStoreOpener open_store;                 // restore paths
  Reaper* reaper = nullptr;                     // may be null (no orphan reaping before restores)
  CheckpointReaders* readers = nullptr;         // may be null (no read holds)
  MetricsRegistry* metrics = nullptr;           // may be null (no metrics)
  const Clock* clock = SystemClock::Default();
};

}  // namespace ckptd

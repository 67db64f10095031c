// The daemon's job system: a bounded executor for checkpoint and restore
// jobs, their records in RocksDB (cf::kJobs) and start-up recovery.
//
// Contract
// - Submit*() validates synchronously (see api/job_service.h for the error
//   codes), creates the catalog record of a checkpoint, persists the job as
//   "queued" and hands it to one of `workers` threads; at most
//   workers + queue jobs are admitted at once, beyond that Unavailable.
// - Every phase change (and every 64 MiB of progress) is written to
//   cf::kJobs synced, so a job's progress is visible and a job left
//   queued/running by a crash is found by Recover().
// - A checkpoint job: SetInfo -> hooks.BeforeDump -> CRIU dump into
//   <staging>/<id>/images while an ImageStreamer (images/image_streamer.h)
//   ships every image file through an EncodingWriter to "<id>/<file>" as it
//   grows (MarkPossiblyUploaded before its first byte; stream_images=false:
//   after the dump) -> every object Head-confirmed -> "<id>/manifest.json"
//   last, confirmed -> MarkReady(<images_uri><id>/, sha256(manifest)) ->
//   staging removed. Any failure:
//   objects under "<id>/" and staging removed, the tree resumed if stopped,
//   the record Deprecate(id, "<phase>: <error>").
// - A restore job: manifest (checked against the catalog checksum when the
//   restore names a checkpoint) -> every file streamed back through a
//   DecodingReader and verified (size, SHA-256) before CRIU runs -> orphan
//   zombies reaped -> CRIU restore (detached) -> hooks.AfterRestore; a hook
//   failure kills the restored tree.
// - Recover() (call before Start): jobs persisted queued/running become
//   failed "interrupted"; their checkpoints, unless ready, are deprecated
//   "interrupted" and their objects removed; the staging dir is emptied.
// - Drain(): no new jobs; queued jobs fail "daemon shutting down"; waits up
//   to the timeout for running ones, then asks them to stop at the next
//   file boundary and joins the workers (a CRIU call is bounded by its
//   deadline).
// Thread safety: all public methods may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "api/job_service.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "criu/criu_driver.h"
#include "jobs/checkpoint_readers.h"
#include "jobs/reaper.h"
#include "store/catalog.h"
#include "store/db.h"
#include "store/digest.h"
#include "store/object_store.h"
#include "store/object_uri.h"

namespace ckptd {

namespace gpu {
struct GpuReport;
}

// What a job tells the GPU seam and what the seam hands back. Owned by the
// job; the same object is passed to every hook of that job.
struct GpuJobContext {
  std::string mode = "auto";  // checkpoint: auto | on | off (api::CheckpointJobRequest::gpu)
  std::vector<std::pair<std::string, std::string>> device_map;  // restore: GPU UUID from -> to
  std::vector<int> pids;      // the GPU processes handled (checkpoint: found; restore: from the manifest)
  std::string model = "none";  // the catalog's gpu field: GPU model, "cuda", or "none"
  boost::json::value report;   // GpuReport::ToJson() (null when no GPU work was done)
  std::shared_ptr<gpu::GpuReport> state;  // the hooks' own record between calls
  std::string log_tag;  // "job <id> checkpoint <id>", leads the hooks' log lines
};

// The seam for GPU work (jobs/gpu_hooks.h): called around CRIU. The default
// does nothing (and refuses gpu=on).
class JobHooks {
 public:
  virtual ~JobHooks() = default;
  // At submit time: Unavailable when `mode` is "on" and GPU checkpointing
  // cannot work here.
  virtual Status CheckMode(const std::string& mode) {
    if (mode == "on") return Unavailable("GPU checkpointing unavailable: no GPU support in this daemon");
    return Status::Ok();
  }
  // Before the dump (lock + checkpoint device memory). An error aborts the
  // job before CRIU runs (every GPU process already back to running).
  virtual Status BeforeDump(int pid, GpuJobContext* ctx) { return Status::Ok(); }
  // After the dump, whatever its outcome (restore + unlock when the tree
  // keeps running or the dump failed). An error fails the job; the job then
  // calls AfterDump(pid, false, true, ctx) once more as its rollback.
  virtual Status AfterDump(int pid, bool dumped, bool leave_running, GpuJobContext* ctx) { return Status::Ok(); }
  // After CRIU restored the tree (GPU restore + unlock of ctx->pids). An
  // error kills it.
  virtual Status AfterRestore(int pid, GpuJobContext* ctx) { return Status::Ok(); }
};

// The dump options as stored in info.options, the manifest and job records.
boost::json::object CheckpointOptionsToJson(const api::CheckpointJobRequest& r);

struct JobManagerOptions {
  int workers = 2;
  int queue = 16;
  std::string staging_dir;  // <data_dir>/staging
  std::string images_root;  // absolute local dir of the image store (file:// stores)
  // Directories file:// restore paths may name (Config::FileRoots()).
  std::vector<std::string> file_roots;
  // The image store's canonical URI (ends in '/'); restore_path is
  // <images_uri><id>/. Empty: file://<images_root>/.
  std::string images_uri;
  // S3 settings for the image store and for restore_paths on s3://.
  ObjectStoreConfig store_config;
  // Upload buffers of one checkpoint; objects a restore downloads at once.
  uint64_t upload_memory_bytes = 256ull << 20;
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
  // over its page-server protocol to the daemon (page_uploader.h) instead
  // of writing them into staging files. The daemon's config turns it on
  // with enough CPUs (PageServerOn, page_server = "auto"); the tree stays
  // frozen until every page is taken in, which wants cores (see README).
  bool page_server = false;
  // Finished job records older than this are deleted (checked at start and
  // after a job ends, at most every min(retention, 10 min)); 0: kept forever.
  int64_t job_retention_ms = 7ll * 86400 * 1000;
};

class JobManager final : public api::JobService {
 public:
  // `criu` may be null (then every job answers Unavailable with the probe's
  // error). All pointers must outlive the manager.
  JobManager(JobManagerOptions opts, Db* db, Catalog* catalog, ObjectStore* images,
             const criu::CriuApi* criu, std::shared_future<criu::ProbeResult> probe, Reaper* reaper,
             const Clock* clock);
  ~JobManager() override;

  Status Recover();
  void Start();
  void Drain(std::chrono::milliseconds timeout);
  void set_hooks(JobHooks* hooks) { hooks_ = hooks ? hooks : &default_hooks_; }
  // Jobs running, finished by result, bytes moved and time per phase; set
  // before Start(). May be null (no metrics).
  void set_metrics(MetricsRegistry* metrics) { metrics_ = metrics; }
  // Restore jobs hold their checkpoint here while they read its objects
  // (null: no holds). Set before jobs are submitted.
  void set_readers(CheckpointReaders* readers) { readers_ = readers; }

  Result<api::JobSubmitted> SubmitCheckpoint(const api::CheckpointJobRequest& req) override;
  Result<api::JobSubmitted> SubmitRestore(const api::RestoreJobRequest& req) override;
  Result<boost::json::value> GetJob(std::string_view id) const override;
  Result<boost::json::value> WaitJob(std::string_view id, std::chrono::milliseconds timeout) override;
  Result<boost::json::array> ListJobs(size_t limit) const override;

 private:
  struct Job {
    std::string id;
    std::string kind;  // checkpoint | restore
    std::string checkpoint_id;
    int pid = 0;  // checkpoint: the target; restore: the restored root
    std::string state = "queued";  // queued | running | succeeded | failed
    // Finish() is through: the final record is stored and older ones are
    // pruned. WaitJob returns only then, so what a waiter reads next (the
    // job list, a pruned record) already reflects this job's end.
    bool settled = false;
    std::string phase = "queued";
    std::chrono::steady_clock::time_point phase_started{};  // for phase metrics
    uint64_t bytes_written = 0;
    uint64_t persisted_bytes = 0;
    int64_t created_ms = 0, started_ms = 0, finished_ms = 0;
    std::string error;
    boost::json::object result;
    api::CheckpointJobRequest ckpt;
    api::RestoreJobRequest rst;
    std::string restore_path;
    std::optional<std::string> expected_checksum;
    boost::json::value ToJson(int64_t now_ms) const;
    static Result<Job> FromJson(const boost::json::value& v);
  };
  using JobPtr = std::shared_ptr<Job>;

  Status CheckCriu() const;
  Status Admit();  // capacity; mu_ held
  Status Persist(const Job& job);
  void SetPhase(const JobPtr& job, const std::string& phase);
  void AddBytes(const JobPtr& job, uint64_t n);
  void Finish(const JobPtr& job, const Status& st);
  void Worker();
  void Run(const JobPtr& job);
  Status RunCheckpoint(const JobPtr& job);
  Status RunRestore(const JobPtr& job);
  void CleanupCheckpoint(const std::string& checkpoint_id);
  std::string RestorePathFor(const std::string& checkpoint_id) const;
  bool cancelled() const { return cancel_.load(); }

  // Deletes finished job records older than job_retention_ms (time-gated).
  void PruneJobRecords(bool force);
  int64_t last_prune_ms_ = 0;  // guarded by mu_
  JobManagerOptions opts_;
  Db* db_;
  Catalog* catalog_;
  ObjectStore* images_;
  const criu::CriuApi* criu_;
  std::shared_future<criu::ProbeResult> probe_;
  Reaper* reaper_;
  const Clock* clock_;
  JobHooks default_hooks_;
  JobHooks* hooks_ = &default_hooks_;
  MetricsRegistry* metrics_ = nullptr;
  // Records how long `job` spent in its current phase (not "queued").
  void ObservePhase(const Job& job);
  // Records a step inside a phase (freeze, gpu_lock, ...) in the same
  // histogram family.
  void ObserveStep(const std::string& kind, const std::string& step, double seconds);
  // The GPU steps of a GpuReport (summed over its processes).
  void ObserveGpuSteps(const std::string& kind, const boost::json::value& report);
  std::atomic<CheckpointReaders*> readers_{nullptr};

  mutable std::mutex mu_;
  std::condition_variable cv_;       // work queued / stop
  std::condition_variable done_cv_;  // a job finished
  std::map<std::string, JobPtr> jobs_;  // jobs of this life
  std::deque<JobPtr> queue_;
  std::set<int> busy_pids_;
  int running_ = 0;
  bool accepting_ = true;
  bool stop_ = false;
  std::atomic<bool> cancel_{false};
  std::vector<std::thread> workers_;
};

}  // namespace ckptd

// The job engine: a bounded executor for checkpoint and restore jobs, their
// records in the job table, and start-up recovery (api::JobService).
//
// Contract
// - Submit*() validates synchronously (api/job_service.h gives the error
//   codes). A checkpoint's catalog record and its job record are created in
//   one synced write (the journal's "create"), so neither exists without
//   the other. At most workers + queue jobs are admitted at once, beyond
//   that Unavailable.
// - Workers run each job's pipeline (jobs/checkpoint_pipeline.h,
//   jobs/restore_pipeline.h) through a JobRun (jobs/job_run.h): every step
//   is journaled before and after, synced, with crash points.
// - Recover() (before Start and before the API opens) finishes what a dead
//   daemon left (jobs/recovery.h); a job it cannot settle yet stays in
//   phase "recovery" with its staging kept, and is retried at the next
//   start.
// - Drain(): no new jobs; queued jobs fail "daemon shutting down"; waits up
//   to the timeout for running ones, then asks them to stop at the next
//   chunk and joins the workers (a CRIU call is bounded by its deadline).
// - Finished job records older than job_retention_ms are pruned.
// Thread safety: all public methods may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/job_service.h"
#include "common/mutex.h"
#include "jobs/job_env.h"
#include "jobs/job_metrics.h"
#include "jobs/job_run.h"
#include "jobs/recovery.h"
#include "store/catalog.h"
#include "store/db.h"
#include "store/job_store.h"

namespace ckptd {

class JobEngine final : public api::JobService {
 public:
  // `db` and `catalog` (and what `env` points to) must outlive the engine.
  JobEngine(JobOptions opts, JobEnv env, Db* db, Catalog* catalog);
  ~JobEngine() override;

  Status Recover(const RecoveryProgress& progress = {});
  void Start();
  void Drain(std::chrono::milliseconds timeout);

  Result<api::JobSubmitted> SubmitCheckpoint(const api::CheckpointJobRequest& req) override;
  Result<api::JobSubmitted> SubmitRestore(const api::RestoreJobRequest& req) override;
  Result<boost::json::value> GetJob(std::string_view id) const override;
  Result<boost::json::value> WaitJob(std::string_view id, std::chrono::milliseconds timeout) override;
  Result<boost::json::array> ListJobs(size_t limit) const override;
  void OnFinished(std::string_view id, JobDone done) override;
  Result<std::string> JobLog(std::string_view id) const override;

 private:
  using RunPtr = std::shared_ptr<JobRun>;

  Status CheckCriu() const;
  Status Admit() REQUIRES(mu_);  // capacity
  std::string RestorePathFor(const std::string& checkpoint_id) const;
  RunPtr NewRun(Job job);
  void Enqueue(const RunPtr& run) REQUIRES(mu_);
  void Worker();
  void Execute(const RunPtr& run);
  void Finish(const RunPtr& run, const Status& st);
  // Deletes finished job records older than job_retention_ms (time-gated).
  void PruneJobRecords(bool force);

  JobOptions opts_;
  JobEnv env_;
  Catalog* catalog_;
  JobStore store_;
  JobHooks default_hooks_;
  JobMetrics metrics_;

  mutable Mutex mu_;
  CondVar cv_;                                          // work queued / stop
  CondVar done_cv_;                                     // a job finished
  std::map<std::string, RunPtr> jobs_ GUARDED_BY(mu_);  // jobs of this life, until their final record is stored
  std::deque<RunPtr> queue_ GUARDED_BY(mu_);
  std::set<int> busy_pids_ GUARDED_BY(mu_);
  std::map<std::string, std::vector<JobDone>> on_finished_ GUARDED_BY(mu_);  // callbacks of jobs in jobs_
  int running_ GUARDED_BY(mu_) = 0;
  bool accepting_ GUARDED_BY(mu_) = true;
  bool stop_ GUARDED_BY(mu_) = false;
  int64_t last_prune_ms_ GUARDED_BY(mu_) = 0;
  std::atomic<bool> cancel_{false};
  std::vector<std::thread> workers_;
};

}  // namespace ckptd

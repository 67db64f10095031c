// One job as the engine runs it: the record (jobs/job.h) behind a lock, its
// persistence to the job table, and the JobContext its pipeline talks to.
//
// Contract
// - Every journal call, phase change and conclusion stores the whole record
//   synced; progress stores it every 64 MiB. Stores are serialized, each
//   taking its snapshot inside, so a later state is never overwritten by an
//   earlier one.
// - Finish() ends a job that did not Conclude() itself; once the record is
//   final (concluded or finished) later Finish() calls only store it again.
// - WaitSettled() returns once Settle() was called (the engine's Finish is
//   through), or at the timeout.
// Thread safety: as JobContext for the pipeline's calls; Snapshot, ToJson,
// Finish, Settle and WaitSettled from any thread.
#pragma once

#include <atomic>
#include <chrono>

#include "common/mutex.h"
#include "jobs/job_context.h"
#include "jobs/job_metrics.h"
#include "store/job_store.h"

namespace ckptd {

class JobRun final : public JobContext {
 public:
  // `cancel` (may be null) says the daemon shuts down.
  JobRun(Job job, JobStore* store, const Clock* clock, JobMetrics* metrics, const std::atomic<bool>* cancel);

  const Job& job() const override { return job_; }
  void SetPhase(JobPhase phase) override;
  Status Progress(uint64_t bytes) override;
  bool cancelled() const override { return cancel_ && cancel_->load(); }
  Status Begin(Step step, const std::function<void(Journal&)>& facts = {}) override;
  Status End(Step step, const Status& outcome = Status::Ok()) override;
  Status Note(std::string_view point, const std::function<void(Journal&)>& facts) override;
  void SetResult(boost::json::object result, int pid = 0) override;
  Status Conclude(const Status& outcome, Step step, const CatalogCommit& commit) override;
  void ObserveStep(std::string_view step, double seconds) override;
  void ObserveGpuSteps(const boost::json::value& report) override { metrics_->GpuSteps(job_.kind, report); }

  // The record now, and as JSON.
  Job Snapshot() const;
  boost::json::value ToJson() const;
  // queued -> running, stored.
  Status Start();
  // Final state from `st` (unless concluded already), stored.
  Status Finish(const Status& st);
  void Settle();
  bool settled() const {
    MutexLock lock(mu_);
    return settled_;
  }
  bool WaitSettled(std::chrono::milliseconds timeout);
  Status Persist();

 private:
  Job Final(const Status& outcome, int64_t now) const REQUIRES(mu_);

  JobStore* store_;
  const Clock* clock_;
  JobMetrics* metrics_;
  const std::atomic<bool>* cancel_;

  mutable Mutex mu_;
  // Written under mu_; the pipeline's own thread, its only writer but for
  // bytes_written, reads it without (job()).
  Job job_;
  bool final_ GUARDED_BY(mu_) = false;  // the stored record is final
  bool settled_ GUARDED_BY(mu_) = false;
  std::chrono::steady_clock::time_point phase_started_ GUARDED_BY(mu_);
  uint64_t persisted_bytes_ GUARDED_BY(mu_) = 0;
  CondVar settled_cv_;
  Mutex persist_mu_;  // one store at a time, snapshot taken inside (taken before mu_)
};

}  // namespace ckptd

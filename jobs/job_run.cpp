#include "jobs/job_run.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/crash_point.h"

namespace ckptd {

namespace json = boost::json;

namespace {
constexpr uint64_t kPersistEvery = 64ull << 20;
}

JobRun::JobRun(Job job, JobStore* store, const Clock* clock, JobMetrics* metrics, const std::atomic<bool>* cancel)
    : store_(store), clock_(clock), metrics_(metrics), cancel_(cancel), job_(std::move(job)) {
  phase_started_ = std::chrono::steady_clock::now();
}

Status JobRun::Persist() {
  MutexLock order(persist_mu_);
  json::value v;
  {
    MutexLock lock(mu_);
    persisted_bytes_ = job_.bytes_written;
    v = job_.ToJson(clock_->NowMillis());
  }
  return store_->Put(job_.id, v);
}

void JobRun::SetPhase(JobPhase phase) {
  {
    MutexLock lock(mu_);
    auto now = std::chrono::steady_clock::now();
    metrics_->Phase(job_.kind, job_.phase, std::chrono::duration<double>(now - phase_started_).count());
    phase_started_ = now;
    job_.phase = phase;
  }
  if (Status st = Persist(); !st.ok()) spdlog::warn("{}: {}", job_.LogTag(), st.ToString());
}

Status JobRun::Progress(uint64_t bytes) {
  bool persist = false;
  {
    MutexLock lock(mu_);
    job_.bytes_written += bytes;
    metrics_->Bytes(job_.kind, bytes);
    persist = job_.bytes_written - persisted_bytes_ >= kPersistEvery;
    if (persist) persisted_bytes_ = job_.bytes_written;
  }
  if (persist) {
    if (Status st = Persist(); !st.ok()) spdlog::warn("{}: {}", job_.LogTag(), st.ToString());
  }
  return cancelled() ? Cancelled("daemon shutting down") : Status::Ok();
}

Status JobRun::Begin(Step step, const std::function<void(Journal&)>& facts) {
  {
    MutexLock lock(mu_);
    if (facts) facts(job_.journal);
    job_.journal.entries.push_back({step, StepOutcome::kIntent, clock_->NowMillis(), ""});
  }
  CKPTD_RETURN_IF_ERROR(Persist().WithContext(fmt::format("journal {}", StepName(step))));
  CrashPoint(fmt::format("{}:before", StepName(step)));
  return FailPoint(fmt::format("{}:before", StepName(step)));
}

Status JobRun::End(Step step, const Status& outcome) {
  CrashPoint(fmt::format("{}:after", StepName(step)));
  {
    MutexLock lock(mu_);
    job_.journal.criu.reset();  // its CRIU, if any, is gone
    job_.journal.entries.push_back(
        {step, outcome.ok() ? StepOutcome::kDone : StepOutcome::kFailed, clock_->NowMillis(), outcome.message()});
  }
  return Persist().WithContext(fmt::format("journal {}", StepName(step)));
}

Status JobRun::Note(std::string_view point, const std::function<void(Journal&)>& facts) {
  {
    MutexLock lock(mu_);
    facts(job_.journal);
  }
  CKPTD_RETURN_IF_ERROR(Persist().WithContext(fmt::format("journal {}", point)));
  if (!point.empty()) CrashPoint(point);
  return Status::Ok();
}

void JobRun::SetResult(json::object result, int pid) {
  MutexLock lock(mu_);
  job_.result = std::move(result);
  if (pid) job_.pid = pid;
}

Job JobRun::Final(const Status& outcome, int64_t now) const {
  Job j = job_;
  j.state = outcome.ok() ? JobState::kSucceeded : JobState::kFailed;
  if (outcome.ok()) j.phase = JobPhase::kDone;
  if (!outcome.ok()) j.error = outcome.message();
  j.finished_ms = now;
  if (!j.started_ms) j.started_ms = now;
  return j;
}

Status JobRun::Conclude(const Status& outcome, Step step, const CatalogCommit& commit) {
  Job final;
  json::value record;
  {
    MutexLock lock(mu_);
    final = Final(outcome, clock_->NowMillis());
    if (outcome.ok()) final.journal.entries.push_back({step, StepOutcome::kDone, final.finished_ms, ""});
    record = final.ToJson(final.finished_ms);
  }
  {
    MutexLock order(persist_mu_);
    CKPTD_RETURN_IF_ERROR(commit(
        [&](const CheckpointRecord&, rocksdb::WriteBatch* batch) { return store_->AddTo(batch, final.id, record); }));
    MutexLock lock(mu_);
    final.bytes_written = job_.bytes_written;
    job_ = std::move(final);
    final_ = true;
  }
  if (outcome.ok()) CrashPoint(fmt::format("{}:after", StepName(step)));
  return Status::Ok();
}

void JobRun::ObserveStep(std::string_view step, double seconds) { metrics_->Step(job_.kind, step, seconds); }

Job JobRun::Snapshot() const {
  MutexLock lock(mu_);
  return job_;
}

json::value JobRun::ToJson() const {
  MutexLock lock(mu_);
  return job_.ToJson(clock_->NowMillis());
}

Status JobRun::Start() {
  {
    MutexLock lock(mu_);
    job_.state = JobState::kRunning;
    job_.started_ms = clock_->NowMillis();
    phase_started_ = std::chrono::steady_clock::now();
  }
  return Persist();
}

Status JobRun::Finish(const Status& st) {
  {
    MutexLock lock(mu_);
    metrics_->Phase(job_.kind, job_.phase,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - phase_started_).count());
    if (!final_) {
      uint64_t bytes = job_.bytes_written;
      job_ = Final(st, clock_->NowMillis());
      job_.bytes_written = bytes;
      final_ = true;
    }
  }
  return Persist();
}

void JobRun::Settle() {
  {
    MutexLock lock(mu_);
    settled_ = true;
  }
  settled_cv_.notify_all();
}

bool JobRun::WaitSettled(std::chrono::milliseconds timeout) {
  UniqueLock lock(mu_);
  return settled_cv_.wait_for(lock, timeout, [this]() REQUIRES(mu_) { return settled_; });
}

}  // namespace ckptd

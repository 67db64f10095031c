#include "jobs/job_engine.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "common/crash_point.h"
#include "common/proc.h"
#include "jobs/checkpoint_pipeline.h"
#include "jobs/container_steps.h"
#include "jobs/job_logs.h"
#include "jobs/recovery.h"
#include "jobs/restore_fds.h"
#include "jobs/restore_pipeline.h"
#include "store/codec.h"
#include "store/object_uri.h"

namespace ckptd {

namespace json = boost::json;
namespace fs = std::filesystem;

JobEngine::JobEngine(JobOptions opts, JobEnv env, Db* db, Catalog* catalog)
    : opts_(std::move(opts)), env_(std::move(env)), catalog_(catalog), store_(db), metrics_(env_.metrics) {
  if (!env_.gpu) env_.gpu = &default_hooks_;
}

JobEngine::~JobEngine() { Drain(std::chrono::milliseconds(0)); }

Status JobEngine::Recover(const RecoveryProgress& progress) {
  std::error_code ec;
  fs::create_directories(opts_.staging_dir, ec);
  if (ec) return IOError(fmt::format("create {}: {}", opts_.staging_dir, ec.message()));
  Recovery recovery(opts_, env_, catalog_, &store_, &metrics_, progress);
  CKPTD_RETURN_IF_ERROR(recovery.Run());
  PruneJobRecords(true);
  return Status::Ok();
}

void JobEngine::Start() {
  MutexLock lock(mu_);
  if (!workers_.empty()) return;
  for (int i = 0; i < std::max(1, opts_.workers); ++i) workers_.emplace_back([this] { Worker(); });
}

void JobEngine::Drain(std::chrono::milliseconds timeout) {
  std::vector<RunPtr> dropped;
  {
    UniqueLock lock(mu_);
    accepting_ = false;
    dropped.assign(queue_.begin(), queue_.end());
    queue_.clear();
  }
  const Status st = Cancelled("daemon shutting down");
  for (auto& run : dropped) {
    const Job& job = run->job();
    if (job.kind == JobKind::kCheckpoint) {
      // Never started: nothing to clean but the record.
      run->Conclude(st, Step::kCreate,
                    [&](const Catalog::BatchExtra& extra) {
                      return catalog_->Deprecate(job.checkpoint_id, st.message(), extra).status();
                    })
          .IgnoreError();
    }
    Finish(run, st);
  }
  {
    UniqueLock lock(mu_);
    if (!done_cv_.wait_for(lock, timeout, [this]() REQUIRES(mu_) { return running_ == 0; })) {
      spdlog::warn("shutdown: {} job(s) still running after {} ms; asking them to stop", running_, timeout.count());
    }
    cancel_ = true;
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  workers_.clear();
}

Status JobEngine::CheckCriu() const {
  const criu::ProbeResult& p = env_.probe.get();
  if (!env_.criu || !p.ok())
    return Unavailable(fmt::format("CRIU is not usable: {}", p.error.empty() ? "no CRIU driver" : p.error));
  return Status::Ok();
}

Status JobEngine::Admit() {
  if (!accepting_) return Unavailable("the daemon is shutting down; no new jobs");
  int limit = std::max(1, opts_.workers) + std::max(0, opts_.queue);
  if (running_ + static_cast<int>(queue_.size()) >= limit)
    return ResourceExhausted(
        fmt::format("job queue is full ({} running, {} waiting); retry later", running_, queue_.size()));
  return Status::Ok();
}

std::string JobEngine::RestorePathFor(const std::string& checkpoint_id) const {
  return opts_.images_uri + checkpoint_id + "/";
}

JobEngine::RunPtr JobEngine::NewRun(Job job) {
  return std::make_shared<JobRun>(std::move(job), &store_, env_.clock, &metrics_, &cancel_);
}

void JobEngine::Enqueue(const RunPtr& run) {
  jobs_[run->job().id] = run;
  queue_.push_back(run);
}

Result<api::JobSubmitted> JobEngine::SubmitCheckpoint(const api::CheckpointJobRequest& in) {
  api::CheckpointJobRequest req = in;
  if (req.container) {
    // A container is checkpointed through its init, as runc reports it.
    CKPTD_ASSIGN_OR_RETURN(runc::ContainerState s, RunningContainer(env_.runc, *req.container));
    req.pid = s.pid;
  }
  if (req.pid <= 0) return InvalidArgument(fmt::format("pid must be a positive integer, not {}", req.pid));
  if (req.pid == 1) return InvalidArgument("refusing to checkpoint PID 1 (init)");
  if (req.pid == getpid() || IsOwnThread(req.pid))
    return InvalidArgument(fmt::format("refusing to checkpoint the daemon itself (pid {})", req.pid));
  if (IsKernelThread(req.pid))
    return InvalidArgument(fmt::format("refusing to checkpoint pid {}: a kernel thread", req.pid));
  char st = ProcState(req.pid);
  if ((kill(req.pid, 0) != 0 && errno == ESRCH) || st == 0 || st == 'Z' || st == 'X')
    return NotFound(fmt::format("no running process with pid {}", req.pid));
  auto codec = ParseCodec(req.compression);
  if (!codec.ok()) return codec.status().WithContext("compression");
  if (req.gpu != "auto" && req.gpu != "on" && req.gpu != "off")
    return InvalidArgument(fmt::format("gpu must be auto, on or off, not '{}'", req.gpu));
  CKPTD_RETURN_IF_ERROR(CheckCriu());
  CKPTD_RETURN_IF_ERROR(env_.gpu->CheckMode(req.gpu));

  Job job;
  job.id = NewUuid();
  job.kind = JobKind::kCheckpoint;
  job.pid = req.pid;
  job.ckpt = req;
  job.created_ms = env_.clock->NowMillis();
  {
    MutexLock lock(mu_);
    if (busy_pids_.count(req.pid)) return Conflict(fmt::format("pid {} is already being checkpointed", req.pid));
    CKPTD_RETURN_IF_ERROR(Admit());
    busy_pids_.insert(req.pid);
    ++running_;  // reserve a slot while the records are created
  }
  // The checkpoint's record and the job's, in one write.
  auto rec = catalog_->Create(req.name, [&](const CheckpointRecord& r, rocksdb::WriteBatch* batch) {
    job.checkpoint_id = r.id;
    job.restore_path = RestorePathFor(r.id);
    job.journal.entries = {{Step::kCreate, StepOutcome::kDone, job.created_ms, ""}};
    return store_.AddTo(batch, job.id, job.ToJson(job.created_ms));
  });
  {
    MutexLock lock(mu_);
    --running_;
    if (!rec.ok()) {
      busy_pids_.erase(req.pid);
      return rec.status().WithContext("creating the checkpoint record");
    }
  }
  CrashPoint("create:after");
  RunPtr run = NewRun(std::move(job));
  const std::string tag = run->job().LogTag();
  {
    MutexLock lock(mu_);
    Enqueue(run);
  }
  cv_.notify_one();
  spdlog::info("{}: checkpoint of pid {} queued", tag, req.pid);
  return api::JobSubmitted{run->job().id, run->job().checkpoint_id};
}

Result<api::JobSubmitted> JobEngine::SubmitRestore(const api::RestoreJobRequest& req) {
  Job job;
  job.id = NewUuid();
  job.kind = JobKind::kRestore;
  job.rst = req;
  job.created_ms = env_.clock->NowMillis();
  if (req.checkpoint_id) {
    if (!IsUuid(*req.checkpoint_id)) return NotFound(fmt::format("checkpoint '{}' not found", *req.checkpoint_id));
    // Ids are stored lower-case; the Cedana routes take either case too.
    std::string id = *req.checkpoint_id;
    for (auto& c : id) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    CKPTD_ASSIGN_OR_RETURN(CheckpointRecord rec, catalog_->Get(id));
    if (rec.status != CheckpointStatus::kReady)
      return Conflict(fmt::format("checkpoint {} is {}, not ready", rec.id, StatusName(rec.status)));
    if (!rec.restore_path) return Conflict(fmt::format("checkpoint {} has no restore_path", rec.id));
    job.checkpoint_id = rec.id;
    job.restore_path = *rec.restore_path;
    job.expected_checksum = rec.checksum;
  } else {
    job.restore_path = *req.restore_path;
  }
  {
    auto uri = ObjectUri::Parse(job.restore_path);
    if (!uri.ok()) return uri.status().WithContext("restore_path");
    CKPTD_RETURN_IF_ERROR(CheckFileUriWithin(*uri, opts_.file_roots).WithContext("restore_path"));
  }
  for (const auto& f : req.inherit_fd) CKPTD_RETURN_IF_ERROR(CheckUnderRoots(f.path, opts_.file_roots, "inherit_fd path"));
  // "mnt[KEY]:/host/dir" binds a host directory into the restored tree.
  for (const auto& e : req.external) {
    if (!e.starts_with("mnt[")) continue;
    const size_t at = e.find("]:");
    if (at != std::string::npos && e.size() > at + 2 && e[at + 2] == '/')
      CKPTD_RETURN_IF_ERROR(CheckUnderRoots(e.substr(at + 2), opts_.file_roots, "external mount source"));
  }
  if (!req.console_socket.empty())
    CKPTD_RETURN_IF_ERROR(CheckUnderRoots(req.console_socket, opts_.file_roots, "console_socket"));
  CKPTD_RETURN_IF_ERROR(CheckCriu());
  if (req.container) CKPTD_RETURN_IF_ERROR(CheckContainerRestore(env_.runc, *req.container));
  RunPtr run = NewRun(std::move(job));
  {
    MutexLock lock(mu_);
    CKPTD_RETURN_IF_ERROR(Admit());
    // Stored under the lock so the worker's first write comes after it.
    CKPTD_RETURN_IF_ERROR(run->Persist());
    Enqueue(run);
  }
  cv_.notify_one();
  spdlog::info("{}: restore of {} queued", run->job().LogTag(), run->job().restore_path);
  return api::JobSubmitted{run->job().id, run->job().checkpoint_id};
}

Result<json::value> JobEngine::GetJob(std::string_view id) const {
  {
    MutexLock lock(mu_);
    auto it = jobs_.find(std::string(id));
    if (it != jobs_.end()) return it->second->ToJson();
  }
  return store_.Get(id);
}

Result<std::string> JobEngine::JobLog(std::string_view id) const {
  CKPTD_RETURN_IF_ERROR(GetJob(id).status());
  if (opts_.job_log_dir.empty()) return NotFound(fmt::format("job {} kept no log", id));
  auto log = ReadJobLogs(opts_.job_log_dir, std::string(id));
  if (!log.ok() && log.status().code() == Code::kNotFound)
    return NotFound(fmt::format("job {} kept no log: logs are kept for failed jobs (for every job with log_level "
                                "\"debug\") until the job record is removed",
                                id));
  return log;
}

Result<json::value> JobEngine::WaitJob(std::string_view id, std::chrono::milliseconds timeout) {
  RunPtr run;
  {
    MutexLock lock(mu_);
    auto it = jobs_.find(std::string(id));
    if (it != jobs_.end()) run = it->second;
  }
  if (!run) return GetJob(id);
  run->WaitSettled(timeout);
  return run->ToJson();
}

void JobEngine::OnFinished(std::string_view id, JobDone done) {
  RunPtr run;
  {
    MutexLock lock(mu_);
    auto it = jobs_.find(std::string(id));
    if (it != jobs_.end() && !it->second->settled()) {
      on_finished_[std::string(id)].push_back(std::move(done));
      return;
    }
    if (it != jobs_.end()) run = it->second;
  }
  done(run ? Result<json::value>(run->ToJson()) : GetJob(id));  // finished already (or unknown)
}

Result<json::array> JobEngine::ListJobs(size_t limit) const {
  std::vector<json::value> all;
  CKPTD_RETURN_IF_ERROR(store_.ForEach([&](std::string_view, const json::value& v) {
    if (v.is_object()) all.push_back(v);
    return true;
  }));
  // Live jobs are fresher than their last stored write.
  {
    MutexLock lock(mu_);
    for (auto& v : all) {
      auto* id = v.as_object().if_contains("id");
      auto it = id && id->is_string() ? jobs_.find(std::string(id->as_string())) : jobs_.end();
      if (it != jobs_.end()) v = it->second->ToJson();
    }
  }
  auto created = [](const json::value& v) {
    auto* c = v.as_object().if_contains("created_at_ms");
    return c ? c->to_number<int64_t>() : 0;
  };
  std::stable_sort(all.begin(), all.end(), [&](const auto& a, const auto& b) { return created(a) > created(b); });
  json::array out;
  for (size_t i = 0; i < all.size() && i < limit; ++i) out.push_back(std::move(all[i]));
  return out;
}

void JobEngine::Worker() {
  for (;;) {
    RunPtr run;
    {
      UniqueLock lock(mu_);
      cv_.wait(lock, [this]() REQUIRES(mu_) { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_ and nothing left
      run = queue_.front();
      queue_.pop_front();
      ++running_;
    }
    const JobKind kind = run->job().kind;
    metrics_.Running(kind, 1);
    Execute(run);
    metrics_.Running(kind, -1);
    {
      MutexLock lock(mu_);
      --running_;
    }
    done_cv_.notify_all();
  }
}

void JobEngine::Execute(const RunPtr& run) {
  Status st;
  try {
    st = run->Start();
    if (run->job().kind == JobKind::kCheckpoint) {
      CheckpointPipeline pipeline(opts_, env_, catalog_, run.get());
      // Not started (the job table failed): its record must not linger.
      st = st.ok() ? pipeline.Run() : pipeline.Abandon(st);
    } else if (st.ok()) {
      RestorePipeline pipeline(opts_, env_, catalog_, run.get());
      st = pipeline.Run();
    }
  } catch (const std::exception& e) {
    st = Internal(fmt::format("unexpected exception: {}", e.what()));
  }
  Finish(run, st);
}

void JobEngine::Finish(const RunPtr& run, const Status& st) {
  Status p = run->Finish(st);
  if (!p.ok()) spdlog::warn("{}: {}", run->job().LogTag(), p.ToString());
  Job job = run->Snapshot();
  metrics_.Finished(job.kind, job.state);
  PruneJobRecords(false);
  std::vector<JobDone> callbacks;
  {
    MutexLock lock(mu_);
    if (job.kind == JobKind::kCheckpoint) busy_pids_.erase(job.pid);
    // Once its final state is stored the record is the truth: a daemon
    // that runs for months must not keep every job it ever ran in memory.
    // (Waiters hold their own reference.)
    if (p.ok()) jobs_.erase(job.id);
    if (auto it = on_finished_.find(job.id); it != on_finished_.end()) {
      callbacks = std::move(it->second);
      on_finished_.erase(it);
    }
    run->Settle();  // under mu_: OnFinished sees settled or gets its callback called
  }
  done_cv_.notify_all();
  for (auto& cb : callbacks) cb(run->ToJson());
  if (job.state == JobState::kSucceeded) {
    spdlog::info("{}: {} succeeded in {} ms", job.LogTag(), KindName(job.kind), job.finished_ms - job.started_ms);
  } else {
    spdlog::warn("{}: {} failed: {}", job.LogTag(), KindName(job.kind), job.error);
  }
}

void JobEngine::PruneJobRecords(bool force) {
  const int64_t retention = opts_.job_retention_ms;
  if (retention <= 0) return;
  const int64_t now = env_.clock->NowMillis();
  {
    MutexLock lock(mu_);
    if (!force && now - last_prune_ms_ < std::min<int64_t>(retention, 10 * 60 * 1000)) return;
    last_prune_ms_ = now;
  }
  auto n = store_.DeleteIf([&](const json::value& v) {
    auto job = Job::FromJson(v);
    // Unreadable records are left for an operator (GetJob reports them);
    // a finished job whose staging holds a tree's only copy is kept.
    return job.ok() && Finished(job->state) && job->finished_ms > 0 && now - job->finished_ms > retention &&
           !job->journal.staging_kept;
  });
  if (!n.ok())
    spdlog::warn("pruning job records: {}", n.status().ToString());
  else if (*n > 0)
    spdlog::info("removed {} job records finished more than {} s ago", *n, retention / 1000);
  // Kept logs go with their record.
  if (n.ok() && !opts_.job_log_dir.empty())
    PruneJobLogs(opts_.job_log_dir, [&](const std::string& id) { return store_.Get(id).status().code() != Code::kNotFound; });
}

}  // namespace ckptd

// Executor, persistence, validation and recovery of the daemon's jobs; the
// pipelines themselves are in checkpoint_job.cpp and restore_job.cpp.
#include "jobs/job_manager.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <rocksdb/iterator.h>
#include <spdlog/spdlog.h>

#include "store/codec.h"
#include "store/object_uri.h"

namespace ckptd {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kPersistEvery = 64ull << 20;

json::value OptString(const std::string& s) { return s.empty() ? json::value(nullptr) : json::value(s); }

}  // namespace

json::object CheckpointOptionsToJson(const api::CheckpointJobRequest& r) {
  json::array ext;
  for (const auto& e : r.external) ext.emplace_back(e);
  return json::object{{"leave_running", r.leave_running},   {"tcp_established", r.tcp_established},
                      {"shell_job", r.shell_job},           {"ext_unix_sk", r.ext_unix_sk},
                      {"file_locks", r.file_locks},         {"link_remap", r.link_remap},
                      {"manage_cgroups", r.manage_cgroups}, {"timeout", r.timeout_s},
                      {"log_level", r.log_level},           {"external", std::move(ext)},
                      {"compression", r.compression},       {"gpu", r.gpu}};
}

namespace {

bool B(const json::object& o, const char* k) {
  auto* v = o.if_contains(k);
  return v && v->is_bool() && v->as_bool();
}

api::CheckpointJobRequest CkptReqFromJson(const json::object& o) {
  api::CheckpointJobRequest r;
  r.leave_running = B(o, "leave_running");
  r.tcp_established = B(o, "tcp_established");
  r.shell_job = B(o, "shell_job");
  r.ext_unix_sk = B(o, "ext_unix_sk");
  r.file_locks = B(o, "file_locks");
  r.link_remap = B(o, "link_remap");
  r.manage_cgroups = B(o, "manage_cgroups");
  if (auto* v = o.if_contains("timeout"); v && v->is_int64()) r.timeout_s = v->as_int64();
  if (auto* v = o.if_contains("log_level"); v && v->is_int64()) r.log_level = static_cast<int>(v->as_int64());
  if (auto* v = o.if_contains("compression"); v && v->is_string()) r.compression = std::string(v->as_string());
  if (auto* v = o.if_contains("gpu"); v && v->is_string()) r.gpu = std::string(v->as_string());
  if (auto* v = o.if_contains("external"); v && v->is_array())
    for (const auto& e : v->as_array())
      if (e.is_string()) r.external.emplace_back(e.as_string());
  return r;
}

// 'Z' for zombies, 0 when the pid does not exist.
char ProcState(int pid) {
  std::ifstream f(fmt::format("/proc/{}/stat", pid));
  std::string s((std::istreambuf_iterator<char>(f)), {});
  auto close = s.rfind(')');
  if (close == std::string::npos || close + 2 >= s.size()) return 0;
  return s[close + 2];
}

}  // namespace

json::value JobManager::Job::ToJson(int64_t now_ms) const {
  int64_t elapsed = 0;
  if (started_ms) elapsed = (finished_ms ? finished_ms : now_ms) - started_ms;
  json::object o{{"id", id},
                 {"kind", kind},
                 {"state", state},
                 {"phase", phase},
                 {"checkpoint_id", OptString(checkpoint_id)},
                 {"pid", pid ? json::value(pid) : json::value(nullptr)},
                 {"bytes_written", bytes_written},
                 {"created_at", FormatTimestamp(created_ms)},
                 {"created_at_ms", created_ms},
                 {"started_at", started_ms ? json::value(FormatTimestamp(started_ms)) : json::value(nullptr)},
                 {"started_at_ms", started_ms},
                 {"finished_at", finished_ms ? json::value(FormatTimestamp(finished_ms)) : json::value(nullptr)},
                 {"finished_at_ms", finished_ms},
                 {"elapsed_ms", elapsed},
                 {"result", result.empty() ? json::value(nullptr) : json::value(result)},
                 {"error", OptString(error)},
                 {"restore_path", OptString(restore_path)}};
  if (kind == "checkpoint") {
    json::object opts = CheckpointOptionsToJson(ckpt);
    opts["name"] = ckpt.name ? json::value(*ckpt.name) : json::value(nullptr);
    o["options"] = std::move(opts);
  } else {
    json::array map;
    for (const auto& [from, to] : rst.device_map) map.push_back(json::object{{"from", from}, {"to", to}});
    o["options"] = json::object{{"timeout", rst.timeout_s}, {"device_map", std::move(map)}};
  }
  if (expected_checksum) o["expected_checksum"] = *expected_checksum;
  return o;
}

Result<JobManager::Job> JobManager::Job::FromJson(const json::value& v) {
  try {
    const auto& o = v.as_object();
    Job j;
    j.id = std::string(o.at("id").as_string());
    j.kind = std::string(o.at("kind").as_string());
    j.state = std::string(o.at("state").as_string());
    j.phase = std::string(o.at("phase").as_string());
    if (o.at("checkpoint_id").is_string()) j.checkpoint_id = std::string(o.at("checkpoint_id").as_string());
    if (o.at("pid").is_int64()) j.pid = static_cast<int>(o.at("pid").as_int64());
    j.bytes_written = o.at("bytes_written").to_number<uint64_t>();
    j.created_ms = o.at("created_at_ms").to_number<int64_t>();
    j.started_ms = o.at("started_at_ms").to_number<int64_t>();
    j.finished_ms = o.at("finished_at_ms").to_number<int64_t>();
    if (o.at("error").is_string()) j.error = std::string(o.at("error").as_string());
    if (o.at("result").is_object()) j.result = o.at("result").as_object();
    if (o.at("restore_path").is_string()) j.restore_path = std::string(o.at("restore_path").as_string());
    if (auto* opts = o.if_contains("options"); opts && opts->is_object()) {
      if (j.kind == "checkpoint") {
        j.ckpt = CkptReqFromJson(opts->as_object());
        if (auto* n = opts->as_object().if_contains("name"); n && n->is_string()) j.ckpt.name = std::string(n->as_string());
      } else if (auto* t = opts->as_object().if_contains("timeout"); t && t->is_int64()) {
        j.rst.timeout_s = t->as_int64();
      }
    }
    if (auto* c = o.if_contains("expected_checksum"); c && c->is_string()) j.expected_checksum = std::string(c->as_string());
    return j;
  } catch (const std::exception& e) {
    return Corruption(fmt::format("job record is malformed: {}", e.what()));
  }
}

JobManager::JobManager(JobManagerOptions opts, Db* db, Catalog* catalog, ObjectStore* images,
                       const criu::CriuApi* criu, std::shared_future<criu::ProbeResult> probe,
                       Reaper* reaper, const Clock* clock)
    : opts_(std::move(opts)),
      db_(db),
      catalog_(catalog),
      images_(images),
      criu_(criu),
      probe_(std::move(probe)),
      reaper_(reaper),
      clock_(clock) {}

JobManager::~JobManager() { Drain(std::chrono::milliseconds(0)); }

Status JobManager::Persist(const Job& job) {
  rocksdb::WriteBatch batch;
  batch.Put(db_->Handle(cf::kJobs), job.id, json::serialize(job.ToJson(clock_->NowMillis())));
  return db_->Write(&batch).WithContext("job " + job.id);
}

Status JobManager::Recover() {
  std::error_code ec;
  fs::create_directories(opts_.staging_dir, ec);
  if (ec) return IOError(fmt::format("create {}: {}", opts_.staging_dir, ec.message()));
  std::vector<Job> interrupted;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->raw()->NewIterator(rocksdb::ReadOptions(), db_->Handle(cf::kJobs)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      json::value v;
      try {
        v = json::parse(it->value().ToString());
      } catch (const std::exception& e) {
        spdlog::warn("job {}: unreadable record: {}", it->key().ToString(), e.what());
        continue;
      }
      auto job = Job::FromJson(v);
      if (!job.ok()) {
        spdlog::warn("job {}: {}", it->key().ToString(), job.status().ToString());
        continue;
      }
      if (job->state == "queued" || job->state == "running") interrupted.push_back(std::move(*job));
    }
    if (!it->status().ok()) return FromRocks(it->status(), "scanning jobs");
  }
  for (auto& job : interrupted) {
    spdlog::warn("job {} ({} of {}) was {} when the daemon stopped: marking it failed", job.id, job.kind,
                 job.checkpoint_id.empty() ? job.restore_path : job.checkpoint_id, job.state);
    if (job.kind == "checkpoint" && !job.checkpoint_id.empty()) {
      auto rec = catalog_->Get(job.checkpoint_id);
      if (rec.ok() && rec->status != CheckpointStatus::kReady) {
        auto d = catalog_->Deprecate(job.checkpoint_id, "interrupted");
        if (!d.ok()) spdlog::warn("deprecate {}: {}", job.checkpoint_id, d.status().ToString());
        CleanupCheckpoint(job.checkpoint_id);
      }
    }
    job.state = "failed";
    job.error = "interrupted";
    job.finished_ms = clock_->NowMillis();
    CKPTD_RETURN_IF_ERROR(Persist(job));
  }
  // No job runs yet: whatever is in staging is left over.
  for (const auto& e : fs::directory_iterator(opts_.staging_dir, ec)) fs::remove_all(e.path(), ec);
  PruneJobRecords(true);
  return Status::Ok();
}

void JobManager::CleanupCheckpoint(const std::string& id) {
  if (images_) {
    Status st = images_->DeletePrefix(id + "/");
    if (!st.ok()) spdlog::warn("checkpoint {}: removing objects: {}", id, st.ToString());
  }
  std::error_code ec;
  fs::remove_all(fs::path(opts_.staging_dir) / id, ec);
}

void JobManager::Start() {
  std::lock_guard lock(mu_);
  if (!workers_.empty()) return;
  for (int i = 0; i < std::max(1, opts_.workers); ++i) workers_.emplace_back([this] { Worker(); });
}

void JobManager::Drain(std::chrono::milliseconds timeout) {
  std::vector<JobPtr> dropped;
  {
    std::unique_lock lock(mu_);
    accepting_ = false;
    dropped.assign(queue_.begin(), queue_.end());
    queue_.clear();
  }
  for (auto& job : dropped) Finish(job, Cancelled("daemon shutting down"));
  {
    std::unique_lock lock(mu_);
    if (!done_cv_.wait_for(lock, timeout, [this] { return running_ == 0; })) {
      spdlog::warn("shutdown: {} job(s) still running after {} ms; asking them to stop", running_,
                   timeout.count());
    }
    cancel_ = true;
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  workers_.clear();
}

Status JobManager::CheckCriu() const {
  const criu::ProbeResult& p = probe_.get();
  if (!criu_ || !p.ok())
    return Unavailable(fmt::format("CRIU is not usable: {}", p.error.empty() ? "no CRIU driver" : p.error));
  return Status::Ok();
}

Status JobManager::Admit() {
  if (!accepting_) return Unavailable("the daemon is shutting down; no new jobs");
  int limit = std::max(1, opts_.workers) + std::max(0, opts_.queue);
  if (running_ + static_cast<int>(queue_.size()) >= limit)
    return Unavailable(fmt::format("job queue is full ({} running, {} waiting); retry later", running_,
                                   queue_.size()));
  return Status::Ok();
}

std::string JobManager::RestorePathFor(const std::string& checkpoint_id) const {
  if (!opts_.images_uri.empty()) return opts_.images_uri + checkpoint_id + "/";
  return "file://" + opts_.images_root + "/" + checkpoint_id + "/";
}

Result<api::JobSubmitted> JobManager::SubmitCheckpoint(const api::CheckpointJobRequest& req) {
  if (req.pid <= 0) return InvalidArgument(fmt::format("pid must be a positive integer, not {}", req.pid));
  if (req.pid == 1) return InvalidArgument("refusing to checkpoint PID 1 (init)");
  if (req.pid == getpid()) return InvalidArgument(fmt::format("refusing to checkpoint the daemon itself (pid {})", req.pid));
  char st = ProcState(req.pid);
  if ((kill(req.pid, 0) != 0 && errno == ESRCH) || st == 0 || st == 'Z' || st == 'X')
    return NotFound(fmt::format("no running process with pid {}", req.pid));
  auto codec = ParseCodec(req.compression);
  if (!codec.ok()) return codec.status().WithContext("compression");
  if (req.gpu != "auto" && req.gpu != "on" && req.gpu != "off")
    return InvalidArgument(fmt::format("gpu must be auto, on or off, not '{}'", req.gpu));
  CKPTD_RETURN_IF_ERROR(CheckCriu());
  CKPTD_RETURN_IF_ERROR(hooks_->CheckMode(req.gpu));

  auto job = std::make_shared<Job>();
  job->id = NewUuid();
  job->kind = "checkpoint";
  job->pid = req.pid;
  job->ckpt = req;
  job->created_ms = clock_->NowMillis();
  {
    std::lock_guard lock(mu_);
    if (busy_pids_.count(req.pid))
      return Conflict(fmt::format("pid {} is already being checkpointed", req.pid));
    CKPTD_RETURN_IF_ERROR(Admit());
    busy_pids_.insert(req.pid);
    ++running_;  // reserve a slot while the record is created
  }
  auto release = [&] {
    std::lock_guard lock(mu_);
    busy_pids_.erase(req.pid);
    --running_;
  };
  auto rec = catalog_->Create(req.name);
  if (!rec.ok()) {
    release();
    return rec.status().WithContext("creating the checkpoint record");
  }
  job->checkpoint_id = rec->id;
  job->restore_path = RestorePathFor(rec->id);
  if (Status p = Persist(*job); !p.ok()) {
    release();
    catalog_->Deprecate(rec->id, "could not persist the job: " + p.message()).status().IgnoreError();
    return p;
  }
  {
    std::lock_guard lock(mu_);
    --running_;
    jobs_[job->id] = job;
    queue_.push_back(job);
  }
  cv_.notify_one();
  spdlog::info("job {} checkpoint {}: checkpoint of pid {} queued", job->id, job->checkpoint_id, req.pid);
  return api::JobSubmitted{job->id, job->checkpoint_id};
}

Result<api::JobSubmitted> JobManager::SubmitRestore(const api::RestoreJobRequest& req) {
  auto job = std::make_shared<Job>();
  job->id = NewUuid();
  job->kind = "restore";
  job->rst = req;
  job->created_ms = clock_->NowMillis();
  if (req.checkpoint_id) {
    if (!IsUuid(*req.checkpoint_id))
      return NotFound(fmt::format("checkpoint '{}' not found", *req.checkpoint_id));
    CKPTD_ASSIGN_OR_RETURN(CheckpointRecord rec, catalog_->Get(*req.checkpoint_id));
    if (rec.status != CheckpointStatus::kReady)
      return Conflict(fmt::format("checkpoint {} is {}, not ready", rec.id, StatusName(rec.status)));
    if (!rec.restore_path) return Conflict(fmt::format("checkpoint {} has no restore_path", rec.id));
    job->checkpoint_id = rec.id;
    job->restore_path = *rec.restore_path;
    job->expected_checksum = rec.checksum;
  } else {
    job->restore_path = *req.restore_path;
  }
  {
    auto uri = ObjectUri::Parse(job->restore_path);
    if (!uri.ok()) return uri.status().WithContext("restore_path");
    CKPTD_RETURN_IF_ERROR(CheckFileUriWithin(*uri, opts_.file_roots).WithContext("restore_path"));
  }
  CKPTD_RETURN_IF_ERROR(CheckCriu());
  {
    std::lock_guard lock(mu_);
    CKPTD_RETURN_IF_ERROR(Admit());
    jobs_[job->id] = job;
    queue_.push_back(job);
    // Persisted under the lock so the worker's first write comes after it.
    if (Status p = Persist(*job); !p.ok()) {
      queue_.pop_back();
      jobs_.erase(job->id);
      return p;
    }
  }
  cv_.notify_one();
  spdlog::info("job {} checkpoint {}: restore of {} queued", job->id,
               job->checkpoint_id.empty() ? "-" : job->checkpoint_id, job->restore_path);
  return api::JobSubmitted{job->id, job->checkpoint_id};
}

Result<json::value> JobManager::GetJob(std::string_view id) const {
  {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(std::string(id));
    if (it != jobs_.end()) return it->second->ToJson(clock_->NowMillis());
  }
  auto raw = db_->Get(cf::kJobs, id);
  if (!raw.ok()) {
    if (raw.status().code() == Code::kNotFound) return NotFound(fmt::format("job '{}' not found", id));
    return raw.status();
  }
  try {
    return json::parse(*raw);
  } catch (const std::exception& e) {
    return Corruption(fmt::format("job {}: {}", id, e.what()));
  }
}

Result<json::value> JobManager::WaitJob(std::string_view id, std::chrono::milliseconds timeout) {
  JobPtr job;
  {
    std::unique_lock lock(mu_);
    auto it = jobs_.find(std::string(id));
    if (it != jobs_.end()) {
      job = it->second;
      done_cv_.wait_for(lock, timeout, [&] { return job->settled; });
      return job->ToJson(clock_->NowMillis());
    }
  }
  return GetJob(id);
}

Result<json::array> JobManager::ListJobs(size_t limit) const {
  std::vector<json::value> all;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->raw()->NewIterator(rocksdb::ReadOptions(), db_->Handle(cf::kJobs)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      try {
        all.push_back(json::parse(it->value().ToString()));
      } catch (const std::exception&) {
      }
    }
    if (!it->status().ok()) return FromRocks(it->status(), "listing jobs");
  }
  // Live jobs are fresher than their last persisted write.
  {
    std::lock_guard lock(mu_);
    for (auto& v : all) {
      auto it = jobs_.find(std::string(v.as_object().at("id").as_string()));
      if (it != jobs_.end()) v = it->second->ToJson(clock_->NowMillis());
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

void JobManager::ObservePhase(const Job& job) {
  if (!metrics_ || job.phase == "queued") return;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - job.phase_started).count();
  metrics_
      ->GetHistogram("ckptd_job_phase_duration_seconds", "Time spent in each job phase",
                     {{"kind", job.kind}, {"phase", job.phase}})
      ->Observe(secs);
}

void JobManager::ObserveStep(const std::string& kind, const std::string& step, double seconds) {
  if (!metrics_) return;
  metrics_
      ->GetHistogram("ckptd_job_phase_duration_seconds", "Time spent in each job phase",
                     {{"kind", kind}, {"phase", step}})
      ->Observe(seconds);
}

void JobManager::ObserveGpuSteps(const std::string& kind, const json::value& report) {
  const auto* r = report.if_object();
  const auto* procs = r ? r->if_contains("processes") : nullptr;
  if (!procs || !procs->is_array() || procs->as_array().empty()) return;
  for (const char* step : {"lock", "checkpoint", "restore", "unlock"}) {
    std::string key = std::string(step) + "_ms";
    double ms = 0;
    bool seen = false;
    for (const auto& p : procs->as_array()) {
      const auto* v = p.is_object() ? p.as_object().if_contains(key) : nullptr;
      if (v && v->is_number()) {
        ms += v->to_number<double>();
        seen = true;
      }
    }
    if (seen) ObserveStep(kind, std::string("gpu_") + step, ms / 1000.0);
  }
}

void JobManager::SetPhase(const JobPtr& job, const std::string& phase) {
  Job snapshot;
  {
    std::lock_guard lock(mu_);
    ObservePhase(*job);
    job->phase_started = std::chrono::steady_clock::now();
    job->phase = phase;
    job->persisted_bytes = job->bytes_written;
    snapshot = *job;
  }
  Status st = Persist(snapshot);
  if (!st.ok()) spdlog::warn("{}", st.ToString());
}

void JobManager::AddBytes(const JobPtr& job, uint64_t n) {
  bool persist = false;
  Job snapshot;
  {
    std::lock_guard lock(mu_);
    job->bytes_written += n;
    if (metrics_) {
      bool ckpt = job->kind == "checkpoint";
      metrics_
          ->GetCounter(ckpt ? "ckptd_bytes_uploaded_total" : "ckptd_bytes_restored_total",
                       ckpt ? "Image bytes stored by checkpoint jobs (before compression)"
                            : "Image bytes read back by restore jobs (after decompression)")
          ->Inc(static_cast<double>(n));
    }
    if (job->bytes_written - job->persisted_bytes >= kPersistEvery) {
      job->persisted_bytes = job->bytes_written;
      snapshot = *job;
      persist = true;
    }
  }
  if (persist) {
    Status st = Persist(snapshot);
    if (!st.ok()) spdlog::warn("{}", st.ToString());
  }
}

void JobManager::Finish(const JobPtr& job, const Status& st) {
  Job snapshot;
  {
    std::lock_guard lock(mu_);
    job->state = st.ok() ? "succeeded" : "failed";
    ObservePhase(*job);
    if (metrics_) {
      metrics_
          ->GetCounter("ckptd_jobs_total", "Finished jobs by kind and result",
                       {{"kind", job->kind}, {"result", job->state}})
          ->Inc();
    }
    if (!st.ok()) job->error = st.message();
    if (!st.ok() && job->kind == "checkpoint" && st.code() == Code::kCancelled && job->started_ms == 0) {
      // Never started: nothing to clean but the record.
    }
    job->finished_ms = clock_->NowMillis();
    if (!job->started_ms) job->started_ms = job->finished_ms;
    snapshot = *job;
  }
  if (!st.ok() && job->kind == "checkpoint" && job->phase == "queued") {
    catalog_->Deprecate(job->checkpoint_id, st.message()).status().IgnoreError();
  }
  Status p = Persist(snapshot);
  if (!p.ok()) spdlog::warn("{}", p.ToString());
  PruneJobRecords(false);
  {
    std::lock_guard lock(mu_);
    if (job->kind == "checkpoint") busy_pids_.erase(job->pid);
    // Once its final state is stored the record is the truth: a daemon
    // that runs for months must not keep every job it ever ran in memory.
    // (Waiters hold their own reference.)
    if (p.ok()) jobs_.erase(job->id);
    job->settled = true;
  }
  done_cv_.notify_all();
  if (st.ok()) {
    spdlog::info("job {} checkpoint {}: {} succeeded in {} ms", job->id,
                 job->checkpoint_id.empty() ? "-" : job->checkpoint_id, job->kind,
                 snapshot.finished_ms - snapshot.started_ms);
  } else {
    spdlog::warn("job {} checkpoint {}: {} failed: {}", job->id,
                 job->checkpoint_id.empty() ? "-" : job->checkpoint_id, job->kind, st.ToString());
  }
}

void JobManager::PruneJobRecords(bool force) {
  const int64_t retention = opts_.job_retention_ms;
  if (retention <= 0) return;
  const int64_t now = clock_->NowMillis();
  {
    std::lock_guard lock(mu_);
    if (!force && now - last_prune_ms_ < std::min<int64_t>(retention, 10 * 60 * 1000)) return;
    last_prune_ms_ = now;
  }
  rocksdb::WriteBatch batch;
  size_t n = 0;
  std::unique_ptr<rocksdb::Iterator> it(db_->raw()->NewIterator(rocksdb::ReadOptions(), db_->Handle(cf::kJobs)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    try {
      json::value v = json::parse(it->value().ToString());
      const auto& o = v.as_object();
      std::string_view state = o.at("state").as_string();
      auto* fin = o.if_contains("finished_at_ms");
      int64_t finished = fin ? fin->to_number<int64_t>() : 0;
      if ((state == "succeeded" || state == "failed") && finished > 0 && now - finished > retention) {
        batch.Delete(db_->Handle(cf::kJobs), it->key());
        ++n;
      }
    } catch (const std::exception&) {
      // Unreadable: GetJob reports it as corrupt; leave it for an operator.
    }
  }
  if (!it->status().ok()) {
    spdlog::warn("pruning job records: {}", it->status().ToString());
    return;
  }
  if (n == 0) return;
  auto st = db_->raw()->Write(rocksdb::WriteOptions(), &batch);
  if (!st.ok()) spdlog::warn("pruning job records: {}", st.ToString());
  else spdlog::info("removed {} job records finished more than {} s ago", n, retention / 1000);
}

void JobManager::Worker() {
  for (;;) {
    JobPtr job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_ and nothing left
      job = queue_.front();
      queue_.pop_front();
      ++running_;
      job->state = "running";
      job->started_ms = clock_->NowMillis();
      job->phase_started = std::chrono::steady_clock::now();
    }
    Gauge* running = metrics_ ? metrics_->GetGauge("ckptd_jobs_running", "Jobs running now by kind",
                                                   {{"kind", job->kind}})
                              : nullptr;
    if (running) running->Add(1);
    Run(job);
    if (running) running->Add(-1);
    {
      std::lock_guard lock(mu_);
      --running_;
    }
    done_cv_.notify_all();
  }
}

void JobManager::Run(const JobPtr& job) {
  Status st;
  try {
    st = job->kind == "checkpoint" ? RunCheckpoint(job) : RunRestore(job);
  } catch (const std::exception& e) {
    st = Internal(fmt::format("unexpected exception: {}", e.what()));
  }
  Finish(job, st);
}

}  // namespace ckptd

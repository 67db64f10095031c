#include "jobs/recovery.h"

#include <signal.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "common/mounts.h"
#include "common/proc.h"
#include "criu/network_lock.h"
#include "jobs/checkpoint_pipeline.h"
#include "jobs/job_logs.h"
#include "jobs/restore_pipeline.h"

namespace ckptd {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

constexpr auto kWait = std::chrono::seconds(5);

// Why a job ended "interrupted", naming the step it was in (recovery's own
// entries aside).
Status Interrupted(const Journal& j, std::string_view what) {
  std::string at = "before the job began";
  for (auto it = j.entries.rbegin(); it != j.entries.rend(); ++it) {
    if (it->step == Step::kRecover) continue;
    at = fmt::format("{} {}", it->outcome == StepOutcome::kIntent ? "in" : "after", StepName(it->step));
    break;
  }
  return Cancelled(fmt::format("interrupted: the daemon stopped {}; {}", at, what));
}

}  // namespace

// Calls `progress` with `what` now and every 10 s until destroyed.
class Ticker {
 public:
  Ticker(const RecoveryProgress& progress, std::string what) : progress_(progress), what_(std::move(what)) {
    if (!progress_) return;
    progress_(what_);
    thread_ = std::thread([this] {
      std::unique_lock lock(mu_);
      for (int s = 10; !cv_.wait_for(lock, std::chrono::seconds(10), [this] { return done_; }); s += 10)
        progress_(fmt::format("{}: {} s", what_, s));
    });
  }
  ~Ticker() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  const RecoveryProgress& progress_;
  std::string what_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

Recovery::Recovery(const JobOptions& opts, const JobEnv& env, Catalog* catalog, JobStore* store, JobMetrics* metrics,
                   RecoveryProgress progress)
    : opts_(opts), env_(env), catalog_(catalog), store_(store), metrics_(metrics), progress_(std::move(progress)) {}

void Recovery::Act(const JobRun& run, std::string_view action, const std::string& what) {
  spdlog::warn("{}: recovery: {}", run.job().LogTag(), what);
  metrics_->Recovery(action);
}

Status Recovery::Run() {
  std::vector<Job> unfinished;
  std::set<std::string> keep;
  CKPTD_RETURN_IF_ERROR(store_->ForEach([&](std::string_view id, const json::value& v) {
    auto job = Job::FromJson(v);
    if (!job.ok()) {
      spdlog::warn("job {}: unreadable record left as it is: {}", id, job.status().ToString());
      return true;
    }
    if (!Finished(job->state))
      unfinished.push_back(std::move(*job));
    else if (job->journal.staging_kept)
      keep.insert(job->journal.staging);
    return true;
  }));
  for (auto& job : unfinished) {
    JobRun run(std::move(job), store_, env_.clock, metrics_, nullptr);
    spdlog::warn("{}: {} was {} at {} when the daemon stopped: recovering", run.job().LogTag(),
                 KindName(run.job().kind), StateName(run.job().state), run.job().journal.Last());
    if (Status st = run.Begin(Step::kRecover); !st.ok()) spdlog::warn("{}: {}", run.job().LogTag(), st.ToString());
    Ticker ticker(progress_, fmt::format("recovering job {} ({} of pid {})", run.job().id, KindName(run.job().kind),
                                         run.job().pid));
    bool settled = run.job().kind == JobKind::kCheckpoint ? Checkpoint(&run) : Restore(&run);
    if (!settled) {
      keep.insert(run.job().journal.staging);
      run.SetPhase(JobPhase::kRecovery);
      continue;
    }
    run.End(Step::kRecover).IgnoreError();
    if (Status st = run.Finish(Internal("recovery ended without an outcome")); !st.ok())
      spdlog::warn("{}: {}", run.job().LogTag(), st.ToString());
  }
  SweepStaging(keep);
  if (env_.images) {
    if (Status st = env_.images->RemoveIncomplete(""); !st.ok())
      spdlog::warn("removing incomplete uploads: {}", st.ToString());
  }
  return Status::Ok();
}

void Recovery::ReleaseTree(JobRun* run) {
  const Journal& j = run->job().journal;
  if (j.criu && IsAlive(*j.criu)) {
    kill(-j.criu->pid, SIGKILL);  // CRIU leads its own session and group
    KillRef(*j.criu);
    bool gone = WaitGone(*j.criu, kWait);
    Act(*run, "kill-criu",
        fmt::format("killed the CRIU (pid {}) the dead daemon left{}", j.criu->pid, gone ? "" : "; it is still there"));
  }
  // runc had CRIU freeze the container through its cgroup: a CRIU killed
  // halfway leaves it paused.
  const auto& c = run->job().ckpt.container;
  if (c && env_.runc) {
    auto before = env_.runc->State(c->runtime_root, c->id);
    Status st = env_.runc->Thaw(c->runtime_root, c->id);
    if (before.ok() && (before->status == "paused" || before->status == "pausing"))
      Act(*run, "thaw-container",
          fmt::format("container {} was paused: {}", c->id,
                      st.ok() ? "resumed" : "could not resume: " + st.ToString()));
  }
  if (!j.target || !IsAlive(*j.target)) return;
  // The target runs on: its connections must carry data again.
  if (j.criu) {
    auto r = criu::ReleaseNetworkAfterKill(j.target->pid);
    if (!r.ok())
      Act(*run, "release-network", "releasing what the killed CRIU held of its network: " + r.status().ToString());
    else if (r->sockets > 0 || !r->tables.empty())
      Act(*run, "release-network",
          fmt::format("{} socket(s) out of TCP repair mode; lock table(s) removed: {}", r->sockets,
                      r->tables.empty() ? "none" : fmt::format("{}", fmt::join(r->tables, ", "))));
  }
  if (int n = ContinueTree(j.target->pid); n > 0)
    Act(*run, "resume-tree", fmt::format("sent SIGCONT to {} stopped task(s) of pid {}", n, j.target->pid));
  if (!WaitUntracedTree(j.target->pid, kWait))
    spdlog::error("{}: recovery: pid {} is still traced after {} s", run->job().LogTag(), j.target->pid, kWait.count());
}

bool Recovery::Checkpoint(JobRun* run) {
  const Job& job = run->job();
  const Journal& j = job.journal;
  ReleaseTree(run);
  auto rec = catalog_->Get(job.checkpoint_id);
  if (rec.ok() && rec->status == CheckpointStatus::kReady) {
    run->SetResult(json::object{{"restore_path", rec->restore_path ? *rec->restore_path : job.restore_path},
                                {"checksum", rec->checksum ? *rec->checksum : ""},
                                {"recovered", true}});
    run->Finish(Status::Ok()).IgnoreError();
    Act(*run, "complete-ready", "the checkpoint is ready: the job succeeded");
    return true;
  }
  if (!job.ckpt.leave_running && (j.images_complete || ContainerDumpEnded(job))) return FinishDump(run);
  // The target runs on (or is gone by itself): its GPU processes too.
  std::vector<ProcRef> gpu;
  for (const auto& g : j.gpu)
    if (IsAlive(g)) gpu.push_back(g);
  run->Note("", [&](Journal& jj) { jj.gpu = gpu; }).IgnoreError();
  CheckpointPipeline pipeline(opts_, env_, catalog_, run);
  if (!gpu.empty()) {
    Status st = pipeline.ResumeGpu();
    Act(*run, "gpu-resume",
        fmt::format("{} GPU process(es) of pid {} back to running{}", gpu.size(), job.pid,
                    st.ok() ? "" : ": " + st.ToString()));
  }
  const bool alive = j.target && IsAlive(*j.target);
  Status why = Interrupted(j, alive      ? fmt::format("pid {} runs on", job.pid)
                              : j.target ? fmt::format("pid {} is gone", job.pid)
                                         : "the target was not touched");
  pipeline.Abandon(why).IgnoreError();
  Act(*run, "abandon", fmt::format("checkpoint deprecated: {}", why.message()));
  return true;
}

// runc returned from a checkpoint that ended the container, but the daemon
// died before it noted "every image written": the container is gone and
// CRIU's inventory (written after every other image) is in staging.
bool Recovery::ContainerDumpEnded(const Job& job) const {
  const auto& c = job.ckpt.container;
  const Journal& j = job.journal;
  if (!c || !env_.runc || !j.Began(Step::kDump) || j.staging.empty()) return false;
  if (env_.runc->State(c->runtime_root, c->id).status().code() != Code::kNotFound) return false;
  std::error_code ec;
  return fs::exists(fs::path(j.staging) / "images" / "inventory.img", ec);
}

bool Recovery::FinishDump(JobRun* run) {
  const Job& job = run->job();
  const Journal& j = job.journal;
  // The job meant to end the tree, and every image is written: what is left
  // of it goes (it holds the pids a restore needs), and the checkpoint is
  // finished from the staged copy.
  int killed = KillRestoringTree(j);
  for (const auto& p : j.tree) killed += KillRef(p);
  for (const auto& p : j.tree) WaitGone(p, kWait);
  if (killed > 0) Act(*run, "kill-tree", fmt::format("killed {} remaining task(s) of the dumped tree", killed));
  // A container the rollback had begun to bring back is runc's record too.
  if (const auto& c = job.ckpt.container; c && env_.runc) {
    Status st = env_.runc->Remove(c->runtime_root, c->id);
    if (!st.ok()) spdlog::warn("{}: recovery: removing container {}: {}", job.LogTag(), c->id, st.ToString());
  }
  if (env_.reaper) env_.reaper->ReapOrphans();
  CheckpointPipeline pipeline(opts_, env_, catalog_, run);
  Status st = pipeline.FinishFromStaging();
  if (st.ok()) {
    Act(*run, "finish-upload", "the dump was complete: uploaded from staging, checkpoint ready");
    return true;
  }
  spdlog::warn("{}: recovery: finishing the upload failed: {}", job.LogTag(), st.ToString());
  auto back = pipeline.RollbackFromStaging();
  if (!back.ok()) {
    Act(*run, "unsettled",
        fmt::format("could neither finish the upload nor restore pid {} from {}: {}; retrying at the next start",
                    job.pid, j.staging, back.status().ToString()));
    return false;
  }
  Act(*run, "rollback", fmt::format("restored the target from the staged images as pid {}", *back));
  pipeline
      .Abandon(Interrupted(j, fmt::format("the upload could not be finished ({}); the target was restored "
                                          "from the local images as pid {}",
                                          st.message(), *back)))
      .IgnoreError();
  return true;
}

bool Recovery::Restore(JobRun* run) {
  const Job& job = run->job();
  const Journal& j = job.journal;
  RestorePipeline pipeline(opts_, env_, catalog_, run);
  Status outcome;
  if (j.Began(Step::kCriuRestore) && !j.Done(Step::kCriuRestore)) {
    int n = KillRestoringTree(j);
    if (const auto& c = job.rst.container; c && env_.runc) {
      Status st = env_.runc->Remove(c->runtime_root, c->id);
      if (!st.ok()) spdlog::warn("{}: recovery: removing container {}: {}", job.LogTag(), c->id, st.ToString());
    }
    Act(*run, "kill-half-restored", fmt::format("killed {} process(es) of the half-restored tree", n));
    outcome = Interrupted(j, "the half-restored tree was killed");
  } else if (j.Done(Step::kCriuRestore) && !j.gpu.empty() && !j.Done(Step::kGpuRestore)) {
    outcome = pipeline.FinishGpuRestore();
    Act(*run, outcome.ok() ? "gpu-restore" : "kill-half-restored",
        outcome.ok() ? "finished the GPU restore of the restored tree"
                     : "the GPU restore failed; the restored tree was killed: " + outcome.ToString());
  } else if (j.Done(Step::kCriuRestore)) {
    int pid = j.restored ? j.restored->pid : 0;
    run->SetResult(json::object{{"pid", pid}, {"recovered", true}}, pid);
    Act(*run, "complete-restore", fmt::format("the restore had finished (pid {})", pid));
  } else {
    outcome = Interrupted(j, "nothing was restored");
    Act(*run, "abandon", outcome.message());
  }
  // A failed restore keeps its tools' logs past staging, as a job failing
  // while the daemon runs does (GET /v2/jobs/{id}/log).
  if (!j.staging.empty())
    outcome = KeepLogsOf(outcome, opts_.keep_every_job_log, j.staging, opts_.job_log_dir, job.id);
  run->Finish(outcome).IgnoreError();
  std::error_code ec;
  if (!j.staging.empty()) fs::remove_all(j.staging, ec);
  return true;
}

void Recovery::SweepStaging(const std::set<std::string>& keep) {
  // Every tool a job had started is dead now: what a killed CRIU mounted in
  // its work dir (its cgroup yard) goes, or staging could not be removed.
  if (int n = UnmountAllUnder(opts_.staging_dir); n > 0)
    spdlog::warn("recovery: unmounted {} mount(s) a killed CRIU left in {}", n, opts_.staging_dir);
  std::set<std::string> kept;
  for (const auto& k : keep) kept.insert(fs::path(k).lexically_normal().string());
  std::error_code ec;
  int removed = 0;
  for (const auto& e : fs::directory_iterator(opts_.staging_dir, ec)) {
    if (kept.count(e.path().lexically_normal().string())) continue;
    fs::remove_all(e.path(), ec);
    ++removed;
  }
  if (removed > 0)
    spdlog::info("recovery: removed {} staging entr{} no job needs", removed, removed == 1 ? "y" : "ies");
}

}  // namespace ckptd

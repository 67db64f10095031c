// The checkpoint and restore pipelines and start-up recovery, step by step,
// without root: RocksDB on disk for the catalog and the job table, the fake
// CRIU and GPU hooks and the in-memory object store of job_fakes.h, and
// sleeping child processes as targets.
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "common/proc.h"
#include "images/manifest.h"
#include "jobs/checkpoint_pipeline.h"
#include "jobs/job_run.h"
#include "jobs/recovery.h"
#include "jobs/restore_pipeline.h"
#include "store/catalog.h"
#include "store/db.h"
#include "store/job_store.h"
#include "tests/jobs/job_fakes.h"
#include "tests/testing/nft_util.h"
#include "tests/testing/test_util.h"

namespace ckptd {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using testing::Sleeper;

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = Db::Open(dir_.File("db")).value();
    catalog_ = std::make_unique<Catalog>(db_.get(), SystemClock::Default());
    ASSERT_TRUE(catalog_->Init().ok());
    jobs_ = std::make_unique<JobStore>(db_.get());
    opts_.staging_dir = dir_.File("staging");
    opts_.images_uri = "memory://images/";
    fs::create_directories(opts_.staging_dir);
    std::promise<criu::ProbeResult> probe;
    probe.set_value(criu_.Probe());
    env_.criu = &criu_;
    env_.probe = probe.get_future().share();
    env_.gpu = &gpu_;
    env_.images = &images_;
    env_.open_store = [this](const std::string& uri) -> Result<std::unique_ptr<ObjectStore>> {
      if (!uri.starts_with(opts_.images_uri)) return NotFound(uri);
      return std::unique_ptr<ObjectStore>(new testing::PrefixedStore(&images_, uri.substr(opts_.images_uri.size())));
    };
  }

  // A checkpoint job as the engine creates it: record and job in one write.
  JobRun* NewCheckpoint(int pid, bool leave_running) {
    Job job;
    job.id = NewUuid();
    job.kind = JobKind::kCheckpoint;
    job.pid = pid;
    job.ckpt.pid = pid;
    job.ckpt.leave_running = leave_running;
    job.created_ms = SystemClock::Default()->NowMillis();
    auto rec = catalog_->Create(std::nullopt, [&](const CheckpointRecord& r, rocksdb::WriteBatch* b) {
      job.checkpoint_id = r.id;
      job.restore_path = opts_.images_uri + r.id + "/";
      job.journal.entries = {{Step::kCreate, StepOutcome::kDone, job.created_ms, ""}};
      return jobs_->AddTo(b, job.id, job.ToJson(job.created_ms));
    });
    EXPECT_TRUE(rec.ok()) << rec.status().ToString();
    return Track(std::move(job));
  }
  JobRun* NewRestore(const std::string& checkpoint_id) {
    Job job;
    job.id = NewUuid();
    job.kind = JobKind::kRestore;
    job.checkpoint_id = checkpoint_id;
    job.restore_path = opts_.images_uri + checkpoint_id + "/";
    job.rst.checkpoint_id = checkpoint_id;
    auto rec = catalog_->Get(checkpoint_id);
    if (rec.ok()) job.expected_checksum = rec->checksum;
    return Track(std::move(job));
  }
  JobRun* Track(Job job) {
    runs_.push_back(std::make_unique<JobRun>(std::move(job), jobs_.get(), SystemClock::Default(), &metrics_, nullptr));
    EXPECT_TRUE(runs_.back()->Start().ok());
    return runs_.back().get();
  }
  // The pipeline, then the engine's Finish.
  Status RunCheckpoint(JobRun* run) {
    CheckpointPipeline p(opts_, env_, catalog_.get(), run);
    Status st = p.Run();
    EXPECT_TRUE(run->Finish(st).ok());
    return st;
  }
  Status RecoverAll() {
    return Recovery(opts_, env_, catalog_.get(), jobs_.get(), &metrics_,
                    [this](const std::string& s) { progress_.push_back(s); })
        .Run();
  }

  // "dump:intent", "dump:done", ... in journal order.
  static std::vector<std::string> Steps(const Job& job) {
    std::vector<std::string> out;
    for (const auto& e : job.journal.entries) {
      const char* o = e.outcome == StepOutcome::kIntent ? "intent" : e.outcome == StepOutcome::kDone ? "done" : "failed";
      out.push_back(std::string(StepName(e.step)) + ":" + o);
    }
    return out;
  }
  // The job as the job table holds it.
  Job Stored(const std::string& id) {
    auto v = jobs_->Get(id);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    auto j = Job::FromJson(v.ok() ? *v : json::value());
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    return j.ok() ? *j : Job{};
  }
  CheckpointStatus StatusOf(const std::string& id) { return catalog_->Get(id).value().status; }
  std::string InfoError(const std::string& id) {
    auto rec = catalog_->Get(id).value();
    auto* e = rec.info.is_object() ? rec.info.as_object().if_contains("error") : nullptr;
    return e && e->is_string() ? std::string(e->as_string()) : "";
  }

  testing::TempDir dir_{"ckptd-pipeline-test"};
  std::unique_ptr<Db> db_;
  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<JobStore> jobs_;
  testing::MemoryObjectStore images_;
  testing::FakeCriu criu_;
  testing::RecordingGpuHooks gpu_;
  JobMetrics metrics_{nullptr};
  JobOptions opts_;
  JobEnv env_;
  std::vector<std::unique_ptr<JobRun>> runs_;
  std::vector<std::string> progress_;  // what recovery reported
};

TEST_F(PipelineTest, LeaveRunningCheckpointJournalsEveryStep) {
  Sleeper target;
  JobRun* run = NewCheckpoint(target.pid(), true);
  ASSERT_TRUE(RunCheckpoint(run).ok());
  const Job job = run->Snapshot();
  EXPECT_EQ(Steps(job), (std::vector<std::string>{"create:done", "describe:intent", "describe:done", "dump:intent",
                                                  "dump:done", "upload:intent", "upload:done", "manifest:intent",
                                                  "manifest:done", "ready:intent", "ready:done"}));
  EXPECT_TRUE(job.journal.images_complete);
  EXPECT_EQ(job.journal.target->pid, target.pid());
  EXPECT_FALSE(job.journal.criu) << "the step's CRIU is forgotten once it ended";
  // Ready and the job's success were one write: the stored job says so.
  EXPECT_EQ(StatusOf(job.checkpoint_id), CheckpointStatus::kReady);
  EXPECT_EQ(Stored(job.id).state, JobState::kSucceeded);
  EXPECT_EQ(images_.CountUnder(job.checkpoint_id + "/"), 4u);  // 3 images + manifest
  EXPECT_FALSE(fs::exists(opts_.staging_dir + "/" + job.checkpoint_id)) << "staging left behind";
  EXPECT_EQ(ProcState(target.pid()) == 0, false) << "a leave-running target must live";
}

TEST_F(PipelineTest, GpuStepsAreJournaledAndResumedAfterALeaveRunningDump) {
  Sleeper target;
  gpu_.gpu_pids = {target.pid()};
  JobRun* run = NewCheckpoint(target.pid(), true);
  ASSERT_TRUE(RunCheckpoint(run).ok()) << run->Snapshot().error;
  const Job job = run->Snapshot();
  auto steps = Steps(job);
  std::vector<std::string> want = {"gpu-lock:intent",       "gpu-lock:done",    "gpu-checkpoint:intent",
                                   "gpu-checkpoint:done",   "dump:intent",      "dump:done",
                                   "gpu-resume:intent",     "gpu-resume:done"};
  auto it = std::search(steps.begin(), steps.end(), want.begin(), want.end());
  EXPECT_NE(it, steps.end()) << ::testing::PrintToString(steps);
  ASSERT_EQ(job.journal.gpu.size(), 1u);
  EXPECT_EQ(job.journal.gpu[0].pid, target.pid());
  EXPECT_EQ(gpu_.calls, (std::vector<std::string>{"lock " + std::to_string(target.pid()),
                                                  "checkpoint " + std::to_string(target.pid()),
                                                  "resume " + std::to_string(target.pid())}));
}

TEST_F(PipelineTest, FailedGpuCheckpointResumesAndNeverDumps) {
  Sleeper target;
  gpu_.gpu_pids = {target.pid()};
  gpu_.fail_checkpoint = true;
  JobRun* run = NewCheckpoint(target.pid(), false);
  Status st = RunCheckpoint(run);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(criu_.dumps, 0);
  EXPECT_EQ(gpu_.calls.back(), "resume " + std::to_string(target.pid()));
  const Job job = run->Snapshot();
  EXPECT_EQ(StatusOf(job.checkpoint_id), CheckpointStatus::kDeprecated);
  EXPECT_NE(InfoError(job.checkpoint_id).find("fake GPU checkpoint failed"), std::string::npos);
  EXPECT_EQ(Stored(job.id).state, JobState::kFailed);
}

TEST_F(PipelineTest, FailedDumpLeavesNoObjectsAndNoRollback) {
  Sleeper target;
  criu_.fail_dump = true;
  JobRun* run = NewCheckpoint(target.pid(), true);
  EXPECT_FALSE(RunCheckpoint(run).ok());
  const Job job = run->Snapshot();
  EXPECT_TRUE(criu_.restores.empty());
  EXPECT_EQ(images_.CountUnder(job.checkpoint_id + "/"), 0u);
  EXPECT_EQ(StatusOf(job.checkpoint_id), CheckpointStatus::kDeprecated);
  EXPECT_NE(Steps(job).end(), std::find(Steps(job).begin(), Steps(job).end(), "dump:failed"));
  EXPECT_GE(images_.incomplete_sweeps(), 1);
}

TEST_F(PipelineTest, FailedUploadAfterAStopDumpRollsBackFromStaging) {
  Sleeper target;
  images_.FailWritesOf("pages-1.img");
  JobRun* run = NewCheckpoint(target.pid(), false);
  EXPECT_FALSE(RunCheckpoint(run).ok());
  target.Reap();  // the fake CRIU ended it, as CRIU does
  const Job job = run->Snapshot();
  ASSERT_EQ(criu_.restores.size(), 1u);
  EXPECT_EQ(criu_.restores[0].images_dir, fs::path(opts_.staging_dir) / job.checkpoint_id / "images");
  auto steps = Steps(job);
  EXPECT_NE(std::find(steps.begin(), steps.end(), "rollback:done"), steps.end()) << ::testing::PrintToString(steps);
  ASSERT_TRUE(job.journal.restored);
  EXPECT_EQ(job.journal.restored->pid, criu_.restored[0]->pid());
  EXPECT_NE(InfoError(job.checkpoint_id).find("restored from the local images as pid"), std::string::npos)
      << InfoError(job.checkpoint_id);
  EXPECT_EQ(images_.CountUnder(job.checkpoint_id + "/"), 0u);
  EXPECT_FALSE(fs::exists(fs::path(opts_.staging_dir) / job.checkpoint_id));
}

TEST_F(PipelineTest, FailedRollbackKeepsTheStagedImages) {
  Sleeper target;
  images_.FailWritesOf("pages-1.img");
  criu_.fail_restore = true;
  JobRun* run = NewCheckpoint(target.pid(), false);
  EXPECT_FALSE(RunCheckpoint(run).ok());
  target.Reap();
  const Job job = run->Snapshot();
  EXPECT_TRUE(job.journal.staging_kept);
  EXPECT_TRUE(fs::exists(fs::path(opts_.staging_dir) / job.checkpoint_id / "images" / "pages-1.img"));
  EXPECT_NE(job.error.find("images are kept in"), std::string::npos) << job.error;
  // A restart keeps them too.
  ASSERT_TRUE(RecoverAll().ok());
  EXPECT_TRUE(fs::exists(fs::path(opts_.staging_dir) / job.checkpoint_id / "images" / "pages-1.img"));
}

TEST_F(PipelineTest, RestoreJournalsTheRestoredRoot) {
  Sleeper target;
  JobRun* ckpt = NewCheckpoint(target.pid(), false);
  ASSERT_TRUE(RunCheckpoint(ckpt).ok());
  target.Reap();
  JobRun* run = NewRestore(ckpt->job().checkpoint_id);
  RestorePipeline p(opts_, env_, catalog_.get(), run);
  ASSERT_TRUE(p.Run().ok());
  const Job job = run->Snapshot();
  ASSERT_EQ(criu_.restored.size(), 1u);
  EXPECT_EQ(job.pid, criu_.restored[0]->pid());
  ASSERT_TRUE(job.journal.restored);
  EXPECT_EQ(job.journal.restored->pid, job.pid);
  EXPECT_EQ(job.journal.dumped_root, target.pid());
  EXPECT_EQ(Steps(job), (std::vector<std::string>{"read-manifest:intent", "read-manifest:done", "download:intent",
                                                  "download:done", "criu-restore:intent", "criu-restore:done"}));
  EXPECT_FALSE(fs::exists(job.journal.staging));
}

TEST_F(PipelineTest, CorruptImageFailsTheRestoreBeforeCriu) {
  Sleeper target;
  JobRun* ckpt = NewCheckpoint(target.pid(), false);
  ASSERT_TRUE(RunCheckpoint(ckpt).ok());
  target.Reap();
  const std::string id = ckpt->job().checkpoint_id;
  // Same size, other bytes.
  auto objects = images_.objects();
  std::string key = id + "/core-1.img";
  ASSERT_TRUE(objects.count(key));
  auto old = images_.GetBytes(key).value();
  ASSERT_TRUE(images_.PutBytes(key, std::string(old.size(), 'x')).ok());
  JobRun* run = NewRestore(id);
  RestorePipeline p(opts_, env_, catalog_.get(), run);
  Status st = p.Run();
  EXPECT_EQ(st.code(), Code::kCorruption) << st.ToString();
  EXPECT_TRUE(criu_.restores.empty());
}

// --- recovery ------------------------------------------------------------

class RecoveryTest : public PipelineTest {
 protected:
  // A stop-dump that CRIU completed (every image written, tree ended)
  // when the daemon died: the journal and staging a crash leaves.
  JobRun* CompletedDumpLeftBehind() {
    auto target = std::make_unique<Sleeper>();
    ProcRef ref = Identify(target->pid()).value();
    JobRun* run = NewCheckpoint(target->pid(), false);
    const std::string id = run->job().checkpoint_id;
    EXPECT_TRUE(catalog_->SetInfo(id, "none", "linux", json::object{}).ok());
    EXPECT_TRUE(catalog_->MarkPossiblyUploaded(id).ok());
    EXPECT_TRUE(images_.PutBytes(id + "/pages-1.img", "partial").ok());
    fs::path images = fs::path(opts_.staging_dir) / id / "images";
    fs::create_directories(images);
    std::ofstream(images / "pstree.img") << "tree";
    std::ofstream(images / "pages-1.img") << std::string(5000, 'p');
    EXPECT_TRUE(run->Begin(Step::kDump, [&](Journal& j) {
                     j.staging = (fs::path(opts_.staging_dir) / id).string();
                     j.target = ref;
                     j.tree = {ref};
                     j.images_complete = true;
                   }).ok());
    target.reset();  // CRIU ended it
    return run;
  }
};

TEST_F(RecoveryTest, FinishesACompleteDumpFromStaging) {
  JobRun* run = CompletedDumpLeftBehind();
  const std::string id = run->job().checkpoint_id;
  ASSERT_TRUE(RecoverAll().ok());
  EXPECT_EQ(StatusOf(id), CheckpointStatus::kReady);
  Job job = Stored(run->job().id);
  EXPECT_EQ(job.state, JobState::kSucceeded) << job.error;
  auto m = Manifest::Parse(images_.GetBytes(id + "/manifest.json").value());
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->files.size(), 2u);
  EXPECT_EQ(images_.GetBytes(id + "/pages-1.img").value().size() > 0, true);
  EXPECT_NE(images_.GetBytes(id + "/pages-1.img").value(), "partial") << "the partial object was not replaced";
  EXPECT_FALSE(fs::exists(fs::path(opts_.staging_dir) / id));
  EXPECT_TRUE(criu_.restores.empty());
  ASSERT_EQ(progress_.size(), 1u);  // a fast recovery reports once
  EXPECT_EQ(progress_[0], "recovering job " + run->job().id + " (checkpoint of pid " + std::to_string(run->job().pid) + ")");
}

TEST_F(RecoveryTest, RestoresTheTreeWhenTheUploadCannotFinish) {
  JobRun* run = CompletedDumpLeftBehind();
  const std::string id = run->job().checkpoint_id;
  images_.FailWritesOf("pages-1.img");
  ASSERT_TRUE(RecoverAll().ok());
  ASSERT_EQ(criu_.restores.size(), 1u);
  EXPECT_EQ(criu_.restores[0].images_dir, fs::path(opts_.staging_dir) / id / "images");
  EXPECT_EQ(StatusOf(id), CheckpointStatus::kDeprecated);
  Job job = Stored(run->job().id);
  EXPECT_EQ(job.state, JobState::kFailed);
  EXPECT_NE(job.error.find("restored from the local images as pid"), std::string::npos) << job.error;
  EXPECT_EQ(images_.CountUnder(id + "/"), 0u);
}

TEST_F(RecoveryTest, KeepsStagingAndRetriesWhenNothingWorks) {
  JobRun* run = CompletedDumpLeftBehind();
  const std::string id = run->job().checkpoint_id;
  images_.FailWritesOf("pages-1.img");
  criu_.fail_restore = true;
  ASSERT_TRUE(RecoverAll().ok());
  Job job = Stored(run->job().id);
  EXPECT_EQ(job.state, JobState::kRunning);
  EXPECT_EQ(job.phase, JobPhase::kRecovery);
  EXPECT_TRUE(fs::exists(fs::path(opts_.staging_dir) / id / "images" / "pages-1.img"));
  // The next start, with the store back, finishes it.
  images_.FailWritesOf("");
  ASSERT_TRUE(RecoverAll().ok());
  EXPECT_EQ(StatusOf(id), CheckpointStatus::kReady);
  EXPECT_EQ(Stored(run->job().id).state, JobState::kSucceeded);
}

TEST_F(RecoveryTest, KillsTheDeadDaemonsCriuAndResumesTheTree) {
  Sleeper target, fake_criu;
  ASSERT_EQ(kill(target.pid(), SIGSTOP), 0);
  for (int i = 0; i < 100 && ProcState(target.pid()) != 'T'; ++i) usleep(10000);
  JobRun* run = NewCheckpoint(target.pid(), true);
  ASSERT_TRUE(run->Begin(Step::kDump, [&](Journal& j) {
                   j.target = Identify(target.pid());
                   j.tree = TreeOf(target.pid());
                   j.criu = Identify(fake_criu.pid());
                 }).ok());
  ASSERT_TRUE(RecoverAll().ok());
  fake_criu.Reap();  // returns: it was killed
  EXPECT_NE(ProcState(target.pid()), 'T');
  EXPECT_FALSE(IsHeld(target.pid()));
  const std::string id = run->job().checkpoint_id;
  EXPECT_EQ(StatusOf(id), CheckpointStatus::kDeprecated);
  Job job = Stored(run->job().id);
  EXPECT_EQ(job.state, JobState::kFailed);
  EXPECT_TRUE(job.error.starts_with("interrupted: the daemon stopped in dump")) << job.error;
  EXPECT_NE(job.error.find("runs on"), std::string::npos) << job.error;
}

// A CRIU killed with the daemon while it held an established connection
// of a tree that runs on: the socket in repair mode and CRIU's lock table
// on the connection (made here as CRIU makes them; root needed) are
// released.
TEST_F(RecoveryTest, ReleasesTheNetworkTheKilledCriuHeld) {
  uint16_t port = 0;
  int listener = ckptd::testing::ListenLoopback(&port);
  ASSERT_GE(listener, 0);
  // The target tells its socket's number, then lives until `stay` closes.
  int report[2], stay[2];
  ASSERT_EQ(pipe(report), 0);
  ASSERT_EQ(pipe(stay), 0);
  pid_t target = fork();
  ASSERT_GE(target, 0);
  if (target == 0) {
    close(stay[1]);
    int s = ckptd::testing::ConnectLoopback(port);
    (void)!write(report[1], &s, sizeof s);
    char c;
    (void)!read(stay[0], &c, 1);
    _exit(0);
  }
  close(stay[0]);
  close(report[1]);
  int their_fd = -1;
  ASSERT_EQ(read(report[0], &their_fd, sizeof their_fd), static_cast<ssize_t>(sizeof their_fd));
  ASSERT_GE(their_fd, 0);
  int peer = accept(listener, nullptr, nullptr);
  ASSERT_GE(peer, 0);
  // The target's socket, in repair mode as CRIU leaves it.
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, target, 0));
  int sock = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, their_fd, 0));
  ASSERT_GE(sock, 0) << strerror(errno);
  int on = TCP_REPAIR_ON;
  ASSERT_EQ(setsockopt(sock, SOL_TCP, TCP_REPAIR, &on, sizeof on), 0) << strerror(errno);
  const std::string table = "CRIU-test-recovery";
  ckptd::testing::NftRun("delete table inet " + table);
  ASSERT_EQ(ckptd::testing::AddCriuLockTable(table, ckptd::testing::Conns4ElementOf(peer)), "");
  Sleeper fake_criu;
  JobRun* run = NewCheckpoint(target, true);
  ASSERT_TRUE(run->Begin(Step::kDump, [&](Journal& j) {
                   j.target = Identify(target);
                   j.tree = TreeOf(target);
                   j.criu = Identify(fake_criu.pid());
                 }).ok());
  ASSERT_TRUE(RecoverAll().ok());
  int repair = -1;
  socklen_t rlen = sizeof repair;
  ASSERT_EQ(getsockopt(sock, SOL_TCP, TCP_REPAIR, &repair, &rlen), 0);
  EXPECT_EQ(repair, 0) << "the socket is still in repair mode";
  EXPECT_FALSE(ckptd::testing::CriuLockTables().contains(table)) << "the lock table is still there";
  // The connection carries data again.
  ASSERT_EQ(write(peer, "x", 1), 1);
  char c = 0;
  EXPECT_EQ(recv(sock, &c, 1, 0), 1);
  for (int fd : {sock, pidfd, peer, listener, report[0], stay[1]}) close(fd);
  waitpid(target, nullptr, 0);
}

TEST_F(RecoveryTest, BringsLockedGpuProcessesBack) {
  Sleeper target, gpu_proc;
  JobRun* run = NewCheckpoint(target.pid(), true);
  ASSERT_TRUE(run->Begin(Step::kGpuLock, [&](Journal& j) {
                   j.target = Identify(target.pid());
                   j.gpu = {*Identify(gpu_proc.pid())};
                 }).ok());
  ASSERT_TRUE(RecoverAll().ok());
  EXPECT_EQ(gpu_.calls, (std::vector<std::string>{"resume " + std::to_string(gpu_proc.pid())}));
  EXPECT_EQ(Stored(run->job().id).state, JobState::kFailed);
}

TEST_F(RecoveryTest, GpuProcessesThatDiedAreLeftAlone) {
  Sleeper target;
  auto gone = std::make_unique<Sleeper>();
  ProcRef ref = Identify(gone->pid()).value();
  gone.reset();
  JobRun* run = NewCheckpoint(target.pid(), true);
  ASSERT_TRUE(run->Begin(Step::kGpuCheckpoint, [&](Journal& j) { j.gpu = {ref}; }).ok());
  ASSERT_TRUE(RecoverAll().ok());
  EXPECT_TRUE(gpu_.calls.empty()) << ::testing::PrintToString(gpu_.calls);
}

TEST_F(RecoveryTest, KillsAHalfRestoredTree) {
  Sleeper restored;
  Job job;
  job.id = NewUuid();
  job.kind = JobKind::kRestore;
  job.restore_path = opts_.images_uri + "x/";
  JobRun* run = Track(std::move(job));
  ASSERT_TRUE(run->Begin(Step::kCriuRestore, [&](Journal& j) { j.restored = Identify(restored.pid()); }).ok());
  ASSERT_TRUE(RecoverAll().ok());
  restored.Reap();  // returns: it was killed
  Job stored = Stored(run->job().id);
  EXPECT_EQ(stored.state, JobState::kFailed);
  EXPECT_NE(stored.error.find("half-restored tree was killed"), std::string::npos) << stored.error;
}

TEST_F(RecoveryTest, AJobWhoseCheckpointIsReadySucceeds) {
  Sleeper target;
  JobRun* run = NewCheckpoint(target.pid(), true);
  const std::string id = run->job().checkpoint_id;
  ASSERT_TRUE(catalog_->SetInfo(id, "none", "linux", json::object{}).ok());
  ASSERT_TRUE(catalog_->MarkReady(id, run->job().restore_path, "abc").ok());
  ASSERT_TRUE(RecoverAll().ok());
  Job job = Stored(run->job().id);
  EXPECT_EQ(job.state, JobState::kSucceeded);
  EXPECT_EQ(StatusOf(id), CheckpointStatus::kReady);
}

TEST_F(RecoveryTest, AQueuedJobIsAbandonedAndStrayStagingRemoved) {
  Sleeper target;
  JobRun* run = NewCheckpoint(target.pid(), false);
  fs::create_directories(fs::path(opts_.staging_dir) / "stray" / "images");
  ASSERT_TRUE(RecoverAll().ok());
  EXPECT_EQ(StatusOf(run->job().checkpoint_id), CheckpointStatus::kDeprecated);
  EXPECT_EQ(Stored(run->job().id).state, JobState::kFailed);
  EXPECT_FALSE(fs::exists(fs::path(opts_.staging_dir) / "stray"));
  EXPECT_TRUE(IsAlive(*Identify(target.pid()))) << "nothing was done to the target: it must be untouched";
  EXPECT_GE(images_.incomplete_sweeps(), 1);
}

TEST(JournalTest, RoundTripsThroughJson) {
  Journal j;
  j.entries = {{Step::kDump, StepOutcome::kIntent, 5, ""}, {Step::kDump, StepOutcome::kFailed, 6, "why"}};
  j.staging = "/s";
  j.target = ProcRef{12, 34};
  j.tree = {ProcRef{12, 34}, ProcRef{13, 35}};
  j.gpu = {ProcRef{13, 35}};
  j.criu = ProcRef{99, 100};
  j.images_complete = true;
  j.staging_kept = true;
  j.options = json::object{{"restore_root", "/"}};
  j.dumped_root = 12;
  j.root_existed = true;
  j.restore_began = 77;
  j.restored = ProcRef{14, 80};
  j.gpu_device_map = json::array{json::object{{"from", "GPU-a"}, {"to", "GPU-b"}}};
  auto back = Journal::FromJson(j.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(json::serialize(back->ToJson()), json::serialize(j.ToJson()));
  EXPECT_EQ(DeviceMapFromJson(back->gpu_device_map), (std::vector<std::pair<std::string, std::string>>{{"GPU-a", "GPU-b"}}));
  EXPECT_FALSE(back->Open());
  EXPECT_TRUE(back->Began(Step::kDump));
  EXPECT_FALSE(back->Done(Step::kDump));
}

TEST(JournalTest, OpenIsTheLastStepWithoutAnOutcome) {
  Journal j;
  j.entries = {{Step::kDescribe, StepOutcome::kIntent, 1, ""},
               {Step::kDescribe, StepOutcome::kDone, 2, ""},
               {Step::kDump, StepOutcome::kIntent, 3, ""}};
  ASSERT_TRUE(j.Open());
  EXPECT_EQ(*j.Open(), Step::kDump);
  EXPECT_EQ(j.Last(), "dump (intent)");
}

TEST(JobRecordTest, ARecordWithoutJournalStillParses) {
  json::value v = json::parse(R"({"id":"j","kind":"checkpoint","state":"running","phase":"upload",
      "checkpoint_id":"c","pid":7,"bytes_written":1,"created_at_ms":1,"started_at_ms":2,"finished_at_ms":0,
      "error":null,"result":null,"restore_path":null})");
  auto job = Job::FromJson(v);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->state, JobState::kRunning);
  EXPECT_EQ(job->phase, JobPhase::kUpload);
  EXPECT_TRUE(job->journal.entries.empty());
  EXPECT_EQ(Job::FromJson(json::parse(R"({"id":"j","kind":"checkpoint","state":"bogus"})")).status().code(),
            Code::kCorruption);
}

}  // namespace
}  // namespace ckptd

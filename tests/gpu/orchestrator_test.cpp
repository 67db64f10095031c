// GpuOrchestrator against both backends over the fake driver: the happy
// path, already-locked/checkpointed processes, and every injected failure
// ending with the processes back to running.
#include <filesystem>
#include <sstream>

#include <fmt/format.h>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "gpu/orchestrator.h"
#include "tests/gpu/gpu_test_util.h"

namespace ckptd::gpu::testing {
namespace {

using namespace std::chrono_literals;

bool Contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

class OrchestratorTest : public FakeCudaBackendTest {
 protected:
  void SetUp() override {
    FakeCudaBackendTest::SetUp();
    if (HasFatalFailure()) return;
    a_ = StartGpuProcess();
    b_ = StartGpuProcess();
    pids_ = {a_->pid(), b_->pid()};
  }
  GpuOrchestrator Orchestrator() {
    return GpuOrchestrator(backend_.checkpointer.get(), OrchestratorOptions{3, 10ms});
  }
  // PrepareForDump of every process fails and rolls back: each is running
  // again. Its status; *report gets the steps.
  Status FailedPrepare(GpuReport* report) {
    auto orch = Orchestrator();
    Status st = orch.PrepareForDump(pids_, 5s, report);
    EXPECT_FALSE(st.ok());
    ExpectAll("running");
    return st;
  }
  void ExpectAll(const std::string& state) {
    for (int pid : pids_) EXPECT_EQ(StateOf(pid), state) << "pid " << pid;
  }
  static int CountSteps(const GpuProcessReport* p, const std::string& phase, const std::string& op, bool ok = true) {
    int n = 0;
    if (!p) return 0;
    for (const auto& s : p->steps)
      if (s.phase == phase && s.op == op && s.ok == ok) ++n;
    return n;
  }

  std::unique_ptr<Child> a_, b_;
  std::vector<int> pids_;
};

TEST_P(OrchestratorTest, PrepareThenResume) {
  auto orch = Orchestrator();
  GpuReport report;
  ASSERT_TRUE(orch.PrepareForDump(pids_, 5s, &report).ok());
  ExpectAll("checkpointed");
  for (int pid : pids_) {
    const auto* p = report.Find(pid);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->initial_state, GpuProcessState::kRunning);
    EXPECT_EQ(p->final_state, GpuProcessState::kCheckpointed);
    EXPECT_EQ(CountSteps(p, "prepare", "lock"), 1);
    EXPECT_EQ(CountSteps(p, "prepare", "checkpoint"), 1);
  }
  ASSERT_TRUE(orch.ResumeAfterDump(pids_, &report).ok());
  ExpectAll("running");
  for (int pid : pids_) {
    EXPECT_EQ(CountSteps(report.Find(pid), "resume", "restore"), 1);
    EXPECT_EQ(CountSteps(report.Find(pid), "resume", "unlock"), 1);
    EXPECT_EQ(report.Find(pid)->final_state, GpuProcessState::kRunning);
  }
  // The JSON that goes into the checkpoint's info.
  auto j = report.ToJson();
  const auto& procs = j.at("processes").as_array();
  ASSERT_EQ(procs.size(), 2u);
  EXPECT_EQ(procs[0].at("pid").as_int64(), pids_[0]);
  EXPECT_EQ(procs[0].at("initial_state"), "running");
  EXPECT_EQ(procs[0].at("final_state"), "running");
  EXPECT_TRUE(procs[0].at("lock_ms").is_double());
  EXPECT_GE(j.at("prepare_ms").as_double(), 0.0);
  EXPECT_FALSE(j.at("driver").at("backend").as_string().empty());
}

TEST_P(OrchestratorTest, ResumeOfRunningProcessIsANoOp) {
  auto orch = Orchestrator();
  GpuReport report;
  ASSERT_TRUE(orch.ResumeAfterDump(pids_, &report).ok());
  ExpectAll("running");
  EXPECT_EQ(CountSteps(report.Find(pids_[0]), "resume", "unlock"), 0);
}

TEST_P(OrchestratorTest, AlreadyLockedAndAlreadyCheckpointedAreNotFailures) {
  SetState(pids_[0], "locked");
  SetState(pids_[1], "checkpointed");
  auto orch = Orchestrator();
  GpuReport report;
  Status st = orch.PrepareForDump(pids_, 5s, &report);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ExpectAll("checkpointed");
  EXPECT_EQ(CountSteps(report.Find(pids_[0]), "prepare", "lock"), 0);
  EXPECT_EQ(CountSteps(report.Find(pids_[0]), "prepare", "checkpoint"), 1);
  EXPECT_EQ(CountSteps(report.Find(pids_[1]), "prepare", "checkpoint"), 0);
  ASSERT_TRUE(orch.ResumeAfterDump(pids_, &report).ok());
  ExpectAll("running");
}

TEST_P(OrchestratorTest, LockTimeoutRollsBackEveryProcess) {
  SetFault("lock_busy_ms." + std::to_string(pids_[1]), "3000");
  auto orch = Orchestrator();
  GpuReport report;
  Status st = orch.PrepareForDump(pids_, 200ms, &report);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kDeadlineExceeded) << st.ToString();
  EXPECT_TRUE(Contains(st.message(), "pid " + std::to_string(pids_[1]))) << st.message();
  EXPECT_TRUE(Contains(st.message(), "rolled back")) << st.message();
  ExpectAll("running");
  // Lock is a phase of its own: pid 0 was locked, not yet checkpointed,
  // when pid 1's lock timed out, so its rollback is an unlock alone.
  EXPECT_EQ(CountSteps(report.Find(pids_[0]), "prepare", "checkpoint"), 0);
  EXPECT_EQ(CountSteps(report.Find(pids_[0]), "rollback", "restore"), 0);
  EXPECT_EQ(CountSteps(report.Find(pids_[0]), "rollback", "unlock"), 1);
}

TEST_P(OrchestratorTest, FailingCheckpointRollsBackEveryProcess) {
  SetFault("fail_checkpoint." + std::to_string(pids_[1]), "code=2");
  GpuReport report;
  Status st = FailedPrepare(&report);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(Contains(st.message(), "rolled back 2")) << st.message();
  EXPECT_EQ(CountSteps(report.Find(pids_[1]), "prepare", "checkpoint", false), 1);
  EXPECT_EQ(CountSteps(report.Find(pids_[1]), "rollback", "unlock"), 1);
}

TEST_P(OrchestratorTest, FailingRestoreDuringRollbackIsRetried) {
  SetFault("fail_checkpoint." + std::to_string(pids_[1]), "");
  SetFault("fail_restore." + std::to_string(pids_[0]), "count=1");
  GpuReport report;
  Status st = FailedPrepare(&report);
  ASSERT_FALSE(st.ok());
  EXPECT_FALSE(Contains(st.message(), "rollback failed")) << st.message();
  EXPECT_EQ(CountSteps(report.Find(pids_[0]), "rollback", "restore", false), 1);
  EXPECT_EQ(CountSteps(report.Find(pids_[0]), "rollback", "restore", true), 1);
}

TEST_P(OrchestratorTest, FailingRestoreOnResumeIsRetried) {
  auto orch = Orchestrator();
  ASSERT_TRUE(orch.PrepareForDump(pids_, 5s, nullptr).ok());
  SetFault("fail_restore", "count=2");
  GpuReport report;
  Status st = orch.ResumeAfterDump(pids_, &report);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ExpectAll("running");
}

TEST_P(OrchestratorTest, PermanentRestoreFailureIsReportedForEveryProcess) {
  auto orch = Orchestrator();
  ASSERT_TRUE(orch.PrepareForDump(pids_, 5s, nullptr).ok());
  SetFault("fail_restore", "");
  Status st = orch.ResumeAfterDump(pids_, nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(Contains(st.message(), "pid " + std::to_string(pids_[0]))) << st.message();
  EXPECT_TRUE(Contains(st.message(), "pid " + std::to_string(pids_[1]))) << st.message();
  ExpectAll("checkpointed");
  ClearFault("fail_restore");
  ASSERT_TRUE(orch.ResumeAfterDump(pids_, nullptr).ok());
  ExpectAll("running");
}

TEST_P(OrchestratorTest, FailedStateIsAnError) {
  SetFault("fail_checkpoint." + std::to_string(pids_[0]), "");
  SetFault("fail_state", "failed");
  auto orch = Orchestrator();
  Status st = orch.PrepareForDump(pids_, 5s, nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(Contains(st.message(), "failed state")) << st.message();
  EXPECT_EQ(StateOf(pids_[0]), "failed");
  EXPECT_EQ(StateOf(pids_[1]), "running");  // checkpointed with it, then rolled back
}

TEST_P(OrchestratorTest, RestoreAfterCriuWithDeviceMap) {
  auto orch = Orchestrator();
  ASSERT_TRUE(orch.PrepareForDump(pids_, 5s, nullptr).ok());
  auto map = ParseDeviceMap("GPU-eea0d83f-ebcd-ac27-6b3e-bec2a19724e6=GPU-8f4022ba-e0cb-1298-286e-225c953a7feb");
  ASSERT_TRUE(map.ok());
  GpuReport report;
  ASSERT_TRUE(orch.RestoreAfterCriu(pids_, *map, &report).ok());
  ExpectAll("running");
  for (int pid : pids_) {
    EXPECT_TRUE(Contains(StateFile(pid), "device_map=" + FormatDeviceMap(*map))) << StateFile(pid);
    EXPECT_EQ(CountSteps(report.Find(pid), "restore", "restore"), 1);
  }
  EXPECT_GE(report.restore_ms, 0.0);
}

TEST_P(OrchestratorTest, RestoreAfterCriuStopsAtFirstFailure) {
  auto orch = Orchestrator();
  ASSERT_TRUE(orch.PrepareForDump(pids_, 5s, nullptr).ok());
  SetFault("fail_restore." + std::to_string(pids_[0]), "");
  Status st = orch.RestoreAfterCriu(pids_, {}, nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(Contains(st.message(), "GPU restore of pid " + std::to_string(pids_[0]))) << st.message();
  // The restore phase ran for both; no process is unlocked after a failed
  // restore phase (the caller kills the restored tree).
  EXPECT_EQ(StateOf(pids_[1]), "locked");
  EXPECT_FALSE(Contains(CallsLog(), "unlock")) << CallsLog();
}

// Index of the last line of the call log starting with `first`, and of the
// first line starting with `second`: all of one op before any of the other.
void ExpectPhaseOrder(const std::string& log, const std::string& first, const std::string& second) {
  std::istringstream in(log);
  int n = 0, last_first = -1, first_second = -1;
  for (std::string line; std::getline(in, line); ++n) {
    if (line.rfind(first + " ", 0) == 0) last_first = n;
    if (line.rfind(second + " ", 0) == 0 && first_second < 0) first_second = n;
  }
  ASSERT_GE(last_first, 0) << log;
  ASSERT_GE(first_second, 0) << log;
  EXPECT_LT(last_first, first_second) << "every " << first << " before any " << second << ":\n" << log;
}

TEST_P(OrchestratorTest, RanksThatOnlyLockTogetherAreLockedInOnePhase) {
  auto c = StartGpuProcess();
  pids_.push_back(c->pid());
  SetFault("ranks", fmt::format("{} {} {}", pids_[0], pids_[1], pids_[2]));
  // One after the other, the first rank's lock waits for the others in vain.
  GpuOrchestrator sequential(backend_.checkpointer.get(), OrchestratorOptions{3, 10ms, 1});
  Status st = sequential.PrepareForDump(pids_, 300ms, nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kDeadlineExceeded) << st.ToString();
  ExpectAll("running");

  std::filesystem::remove(dir_ + "/calls.log");
  auto orch = Orchestrator();
  GpuReport report;
  st = orch.PrepareForDump(pids_, 5s, &report);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ExpectAll("checkpointed");
  ExpectPhaseOrder(CallsLog(), "lock", "checkpoint");
  ASSERT_TRUE(orch.ResumeAfterDump(pids_, &report).ok());
  ExpectAll("running");
  ExpectPhaseOrder(CallsLog(), "restore", "unlock");
  for (const char* phase : {"prepare/lock", "prepare/checkpoint", "resume/restore", "resume/unlock"})
    EXPECT_EQ(report.phase_ms.count(phase), 1u) << phase;
  EXPECT_TRUE(report.ToJson().at("phase_ms").as_object().contains("prepare/lock"));
}

TEST_P(OrchestratorTest, OneRankFailingRollsTheWholeTreeBack) {
  auto c = StartGpuProcess();
  pids_.push_back(c->pid());
  SetFault("ranks", fmt::format("{} {} {}", pids_[0], pids_[1], pids_[2]));
  SetFault("fail_checkpoint." + std::to_string(pids_[2]), "code=2");
  GpuReport report;
  Status st = Orchestrator().PrepareForDump(pids_, 5s, &report);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(Contains(st.message(), "pid " + std::to_string(pids_[2]))) << st.message();
  EXPECT_TRUE(Contains(st.message(), "rolled back 3")) << st.message();
  ExpectAll("running");
  // The two ranks that were checkpointed came back through restore + unlock.
  for (int i : {0, 1}) {
    EXPECT_EQ(CountSteps(report.Find(pids_[i]), "rollback", "restore"), 1);
    EXPECT_EQ(CountSteps(report.Find(pids_[i]), "rollback", "unlock"), 1);
  }
  ExpectPhaseOrder(CallsLog(), "restore", "unlock");
}

TEST_P(OrchestratorTest, SlowStepsShowInTimings) {
  SetFault("slow_ms", "60");
  auto orch = Orchestrator();
  GpuReport report;
  ASSERT_TRUE(orch.PrepareForDump({pids_[0]}, 5s, &report).ok());
  EXPECT_GE(report.Find(pids_[0])->MsFor("lock"), 55.0);
  EXPECT_GE(report.Find(pids_[0])->MsFor("checkpoint"), 55.0);
  EXPECT_GE(report.prepare_ms, 110.0);
}

INSTANTIATE_TEST_SUITE_P(Backends, OrchestratorTest, ::testing::Values(Backend::kDriverApi, Backend::kTool),
                         BackendName);

}  // namespace
}  // namespace ckptd::gpu::testing

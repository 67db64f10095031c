// The `gpu` label: checkpoint and restore of real CUDA processes through the
// daemon's HTTP API, with the NVIDIA driver's own libcuda.so.1 and the real
// CRIU. Each test skips, with the reason, when this machine has no usable
// NVIDIA driver, or when the CUDA workload was not built (no nvcc at build
// time; scripts/gpu-check.sh builds it on a GPU machine and names it in
// CKPTD_CUDA_WORKLOAD).
//
// The workload (tests/cuda/cuda_workload.cu) keeps a counter and a verified
// pattern in device memory and writes ckptd_workload's progress format, so a
// restore is right when the counter goes on from where it was and the
// pattern is intact ("ok").
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "tests/testing/criu_test_util.h"
#include "tests/testing/cuda_workload.h"
#include "tests/testing/daemon_fixture.h"

namespace ckptd {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
namespace ct = ckptd::criu::testing;
using namespace std::chrono_literals;

class RealGpuTest : public testing::DaemonFixture {
 protected:
  RealGpuTest() : DaemonFixture(When::kByTest, "ckptd-real-gpu-test") {}
  void SetUp() override {
    if (std::string why = ckptd::testing::WhyNoRealGpu(); !why.empty()) GTEST_SKIP() << why;
    ASSERT_EQ(geteuid(), 0u) << "CRIU needs root";
  }
  void TearDown() override {
    targets_.KillAll();
    DaemonFixture::TearDown();
  }
  Config MakeConfig() override {
    Config c = DaemonFixture::MakeConfig();
    c.criu_path = ct::CriuPath();
    c.cuda_checkpoint_path = "";
    c.gpu_lock_timeout_ms = lock_timeout_ms_;
    return c;
  }
  // A counting CUDA workload (`extra` arguments), writing `out`; the root
  // process's ready line.
  ckptd::testing::CudaProcess StartCounting(const fs::path& out, const std::vector<std::string>& extra = {},
                                            size_t processes = 1) {
    std::vector<std::string> args = {"--out", out.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_t root = -1;
    auto ready = ckptd::testing::StartCudaWorkload(args, processes, &root);
    if (root > 0) targets_.Add(root);
    EXPECT_EQ(ready.size(), processes) << "the CUDA workload did not start";
    if (ready.size() != processes) return {};
    EXPECT_TRUE(ct::WaitProgress(out, 3, 30s));
    return ready[0];
  }
  // The counter goes on past `from` with the pattern intact.
  static void ExpectCountingPast(const fs::path& out, uint64_t from) {
    EXPECT_TRUE(ct::WaitProgress(out, from + 3, 60s))
        << "counter at " << ct::ReadProgress(out).n << (ct::ReadProgress(out).ok ? "" : ", pattern damaged");
  }
  // Checkpoint (ending the tree) then restore; the restored pid.
  pid_t CheckpointAndRestore(pid_t pid, const json::object& restore_extra = {}) {
    json::object job = Checkpoint(pid);
    EXPECT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
    if (Str(job, "state") != "succeeded") return -1;
    EXPECT_TRUE(ct::ReapedOrGone(pid));
    json::object rj = Restore(Str(job, "checkpoint_id"), restore_extra);
    EXPECT_EQ(Str(rj, "state"), "succeeded") << json::serialize(rj);
    if (Str(rj, "state") != "succeeded") return -1;
    pid_t restored = static_cast<pid_t>(rj.at("pid").as_int64());
    targets_.Add(restored);
    return restored;
  }

  ct::TempDir work_{"ckptd-real-gpu-work"};
  int64_t lock_timeout_ms_ = 10000;
  ct::Targets targets_;
};

TEST_F(RealGpuTest, LeaveRunningCheckpointKeepsTheProcessCounting) {
  StartDaemon();
  auto out = work_.path() / "counter";
  auto w = StartCounting(out, {"--mib", "256"});
  ASSERT_GT(w.pid, 0);
  json::object job = Checkpoint(w.pid, {{"leave_running", true}});
  ASSERT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
  json::object rec = GetCheckpoint(Str(job, "checkpoint_id"));
  EXPECT_NE(Str(rec, "gpu"), "none");  // the GPU's model
  EXPECT_TRUE(rec.at("info").as_object().contains("gpu")) << json::serialize(rec);
  ExpectCountingPast(out, ct::ReadProgress(out).n);
}

TEST_F(RealGpuTest, CheckpointKillRestoreKeepsCounterAndPattern) {
  StartDaemon();
  auto out = work_.path() / "counter";
  auto w = StartCounting(out, {"--mib", "256"});
  ASSERT_GT(w.pid, 0);
  pid_t restored = CheckpointAndRestore(w.pid);
  ASSERT_GT(restored, 0);
  uint64_t at_dump = ct::ReadProgress(out).n;
  ExpectCountingPast(out, at_dump);
}

TEST_F(RealGpuTest, DeviceMapOntoTheSameGpuRestores) {
  StartDaemon();
  auto out = work_.path() / "counter";
  auto w = StartCounting(out, {"--mib", "64"});
  ASSERT_GT(w.pid, 0);
  ASSERT_EQ(w.uuid.rfind("GPU-", 0), 0u) << w.uuid;
  json::object map{{"from", w.uuid}, {"to", w.uuid}};
  pid_t restored = CheckpointAndRestore(w.pid, {{"device_map", json::array{map}}});
  ASSERT_GT(restored, 0);
  ExpectCountingPast(out, ct::ReadProgress(out).n);
}

TEST_F(RealGpuTest, LockTimeoutFailsTheJobAndTheProcessRunsOn) {
  lock_timeout_ms_ = 300;
  StartDaemon();
  auto out = work_.path() / "counter";
  // Every step is a kernel that runs 3 s: the lock cannot finish in 300 ms.
  auto w = StartCounting(out, {"--mib", "64", "--spin-ms", "3000", "--step-ms", "0"});
  ASSERT_GT(w.pid, 0);
  json::object job = Checkpoint(w.pid, {{"leave_running", true}});
  EXPECT_EQ(Str(job, "state"), "failed") << json::serialize(job);
  EXPECT_NE(Str(job, "error").find("GPU lock"), std::string::npos) << json::serialize(job);
  EXPECT_EQ(ct::ProcState(w.pid) == 'T', false) << "the process was left stopped";
  ExpectCountingPast(out, ct::ReadProgress(out).n);
}

TEST_F(RealGpuTest, TwoProcessTreeIsCheckpointedAndRestoredTogether) {
  StartDaemon();
  auto out = work_.path() / "counter";
  fs::path child_out = out.string() + ".child";
  auto w = StartCounting(out, {"--mib", "128", "--fork"}, 2);
  ASSERT_GT(w.pid, 0);
  ASSERT_TRUE(ct::WaitProgress(child_out, 3, 30s));
  json::object job = Checkpoint(w.pid);
  ASSERT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
  json::object rec = GetCheckpoint(Str(job, "checkpoint_id"));
  EXPECT_EQ(rec.at("info").at("gpu").at("processes").as_array().size(), 2u) << json::serialize(rec);
  json::object rj = Restore(Str(job, "checkpoint_id"));
  ASSERT_EQ(Str(rj, "state"), "succeeded") << json::serialize(rj);
  targets_.Add(static_cast<pid_t>(rj.at("pid").as_int64()));
  ExpectCountingPast(out, ct::ReadProgress(out).n);
  ExpectCountingPast(child_out, ct::ReadProgress(child_out).n);
}

}  // namespace
}  // namespace ckptd

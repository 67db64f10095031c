// GPU checkpoint and restore jobs through the HTTP API of an in-process
// daemon, with the real CRIU, ckptd_workload holding the fake libcuda.so.1
// mapped, and the fake driver's file-backed states and fault switches
// (tests/fake_cuda/fake_cuda_state.h). The daemon dlopens the fake too.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "images/manifest.h"
#include "tests/testing/criu_test_util.h"
#include "tests/testing/daemon_fixture.h"
#include "tests/testing/prom_parser.h"

namespace ckptd {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
namespace ct = ckptd::criu::testing;

const std::string kFakeLib = CKPTD_BINARY_DIR "/tests/fake_cuda/libcuda.so.1";
const std::string kFakeLibNoCkpt = CKPTD_BINARY_DIR "/tests/fake_cuda/nockpt/libcuda.so.1";
const std::string kFakeTool = CKPTD_BINARY_DIR "/tests/fake_cuda/cuda-checkpoint";
const std::string kFakeNvml = CKPTD_BINARY_DIR "/tests/fake_cuda/libnvidia-ml.so.1";

class GpuJobsTest : public testing::DaemonFixture {
 protected:
  GpuJobsTest() : DaemonFixture(When::kByTest, "ckptd-gpu-jobs-test") {}
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "CRIU needs root";
    state_dir_ = work_.Sub("fake-cuda");
    setenv("CKPTD_FAKE_CUDA_STATE_DIR", state_dir_.c_str(), 1);
    unsetenv("CKPTD_FAKE_CUDA_INIT_ERROR");
  }
  void TearDown() override {
    targets_.KillAll();
    DaemonFixture::TearDown();
  }
  Config MakeConfig() override {
    Config c = DaemonFixture::MakeConfig();
    c.cuda_library = cuda_library_;
    c.cuda_checkpoint_path = cuda_tool_;
    c.gpu_lock_timeout_ms = lock_timeout_ms_;
    c.nvml_library = nvml_library_;
    return c;
  }

  // A counter workload with the fake driver mapped (a "GPU process").
  pid_t StartGpuCounter(const fs::path& out) {
    pid_t pid = ct::StartWorkload("counter", out, {"--gpu-lib", kFakeLib});
    targets_.Add(pid);
    EXPECT_TRUE(ct::WaitProgress(out, 5));
    EXPECT_EQ(StateOf(pid), "running") << "the workload did not register with the fake driver";
    return pid;
  }
  std::string StateOf(int pid) const {
    std::ifstream in(state_dir_ / (std::to_string(pid) + ".state"));
    std::string word;
    std::getline(in, word);
    return word;
  }
  void SetFault(const std::string& name, const std::string& value) const {
    std::ofstream(state_dir_ / name) << value << "\n";
  }
  void ClearFault(const std::string& name) const { fs::remove(state_dir_ / name); }
  // The counter still advances (the process is neither frozen nor locked out).
  static void ExpectCounting(const fs::path& out) {
    uint64_t n = ct::ReadProgress(out).n;
    EXPECT_TRUE(ct::WaitProgress(out, n + 3)) << "the workload stopped counting";
  }
  // The failed job left a deprecated record with the error in info.
  void ExpectDeprecatedWith(const json::object& job, const std::string& needle) {
    std::string id = Str(job, "checkpoint_id");
    ASSERT_FALSE(id.empty());
    json::object rec = GetCheckpoint(id);
    EXPECT_EQ(Str(rec, "status"), "deprecated");
    ASSERT_TRUE(rec.at("info").is_object()) << json::serialize(rec);
    EXPECT_NE(Str(rec.at("info").as_object(), "error").find(needle), std::string::npos) << json::serialize(rec);
    EXPECT_FALSE(fs::exists(dir_.File("images/") + id + "/manifest.json"));
  }
  // A fresh GPU counter (*pid, writing `out`) checkpointed with
  // leave_running: the job succeeds and the process runs on, counting. The
  // checkpoint's record; empty when the job failed.
  json::object CheckpointLeavingItRunning(const fs::path& out, pid_t* pid) {
    *pid = StartGpuCounter(out);
    json::object job = Checkpoint(*pid, {{"leave_running", true}});
    EXPECT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
    if (Str(job, "state") != "succeeded") return {};
    EXPECT_EQ(StateOf(*pid), "running");
    ExpectCounting(out);
    return GetCheckpoint(Str(job, "checkpoint_id"));
  }
  // A fresh GPU counter (*pid, writing `out`) checkpointed without
  // leave_running: the job succeeds and the dump ends the process. The
  // finished job; empty when it did not succeed.
  json::object CheckpointEndingIt(const fs::path& out, pid_t* pid) {
    *pid = StartGpuCounter(out);
    json::object job = Checkpoint(*pid);
    EXPECT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
    if (Str(job, "state") != "succeeded") return {};
    EXPECT_TRUE(ct::ReapedOrGone(*pid));
    return job;
  }
  static const json::object& GpuProcess(const json::object& report, int pid) {
    static const json::object empty;
    for (const auto& p : report.at("processes").as_array())
      if (p.at("pid").to_number<int64_t>() == pid) return p.as_object();
    ADD_FAILURE() << "pid " << pid << " not in the GPU report " << json::serialize(report);
    return empty;
  }

  ct::TempDir work_{"ckptd-gpu-jobs-work"};
  fs::path state_dir_;
  std::string cuda_library_ = kFakeLib;
  std::string cuda_tool_ = "";
  std::string nvml_library_ = kFakeNvml;
  int64_t lock_timeout_ms_ = 10000;
  ct::Targets targets_;
};

TEST_F(GpuJobsTest, HealthReportsTheFakeDriver) {
  StartDaemon();
  auto h = Send("GET", "/healthz");
  ASSERT_EQ(h.status, 200);
  const auto& gpu = h.body.at("gpu").as_object();
  EXPECT_TRUE(gpu.at("available").as_bool()) << json::serialize(gpu);
  EXPECT_EQ(Str(gpu, "backend"), "driver-api");
}

TEST_F(GpuJobsTest, LeaveRunningLocksCheckpointsAndResumes) {
  StartDaemon();
  pid_t pid = -1;
  json::object rec = CheckpointLeavingItRunning(work_.path() / "counter", &pid);
  ASSERT_FALSE(rec.empty());
  EXPECT_EQ(Str(rec, "status"), "ready");
  EXPECT_EQ(Str(rec, "gpu"), "Fake CUDA GPU");  // the fake's one GPU
  const auto& report = rec.at("info").at("gpu").as_object();
  EXPECT_EQ(Str(report.at("driver").as_object(), "backend"), "driver-api");
  const auto& p = GpuProcess(report, pid);
  EXPECT_EQ(Str(p, "initial_state"), "running");
  EXPECT_EQ(Str(p, "final_state"), "running");
  EXPECT_TRUE(p.contains("lock_ms") && p.contains("checkpoint_ms") && p.contains("unlock_ms")) << json::serialize(p);
  std::vector<std::string> ops;
  for (const auto& s : p.at("steps").as_array())
    if (Str(s.as_object(), "op") != "get-state") ops.push_back(Str(s.as_object(), "op"));
  EXPECT_EQ(ops, (std::vector<std::string>{"lock", "checkpoint", "restore", "unlock"})) << json::serialize(p);

  // Each GPU step is timed in /metrics too.
  auto m = client_->Send("GET", "/metrics");
  ASSERT_TRUE(m.ok());
  auto prom = ckptd::testing::ParsePrometheusText(m->body);
  ASSERT_TRUE(prom.error.empty()) << prom.error;
  for (const char* step : {"gpu_lock", "gpu_checkpoint", "gpu_restore", "gpu_unlock"}) {
    EXPECT_EQ(prom.Value("ckptd_job_phase_duration_seconds_count", {{"kind", "checkpoint"}, {"phase", step}}), 1)
        << step;
  }
}

// NVML (the fake) tells each process's device memory before the lock.
TEST_F(GpuJobsTest, TheReportGivesEachProcesssDeviceMemory) {
  StartDaemon();
  setenv("CKPTD_FAKE_CUDA_DEVICE_MEMORY", "6442450944", 1);  // 6 GiB
  pid_t pid = -1;
  json::object rec = CheckpointLeavingItRunning(work_.path() / "counter", &pid);
  unsetenv("CKPTD_FAKE_CUDA_DEVICE_MEMORY");
  ASSERT_FALSE(rec.empty());
  const auto& report = rec.at("info").at("gpu").as_object();
  EXPECT_EQ(Str(report, "device_memory_source"), "nvml") << json::serialize(report);
  EXPECT_EQ(report.at("device_memory_bytes"), 6442450944);
  EXPECT_EQ(GpuProcess(report, pid).at("device_memory_bytes"), 6442450944);
}

TEST_F(GpuJobsTest, WithoutNvmlTheReportSaysNoDeviceMemory) {
  nvml_library_ = "/nonexistent/libnvidia-ml.so.1";
  StartDaemon();
  pid_t pid = -1;
  json::object rec = CheckpointLeavingItRunning(work_.path() / "counter", &pid);
  ASSERT_FALSE(rec.empty());
  const auto& report = rec.at("info").at("gpu").as_object();
  EXPECT_FALSE(report.contains("device_memory_source")) << json::serialize(report);
  EXPECT_FALSE(GpuProcess(report, pid).contains("device_memory_bytes"));
}

TEST_F(GpuJobsTest, CheckpointThenRestoreBringsTheGpuStateBack) {
  StartDaemon();
  auto out = work_.path() / "counter";
  pid_t pid = -1;
  json::object job = CheckpointEndingIt(out, &pid);
  ASSERT_FALSE(job.empty());
  EXPECT_EQ(StateOf(pid), "checkpointed");
  std::string id = Str(job, "checkpoint_id");
  json::object rec = GetCheckpoint(id);
  EXPECT_EQ(Str(rec, "gpu"), "Fake CUDA GPU");
  EXPECT_EQ(Str(GpuProcess(rec.at("info").at("gpu").as_object(), pid), "final_state"), "checkpointed");

  std::ifstream mf(dir_.File("images/") + id + "/manifest.json", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(mf)), {});
  auto m = Manifest::Parse(bytes);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->gpu_pids, std::vector<int>{pid});

  json::object rj = Restore(id);
  ASSERT_EQ(Str(rj, "state"), "succeeded") << json::serialize(rj);
  pid_t restored = static_cast<pid_t>(rj.at("pid").as_int64());
  targets_.Add(restored);
  EXPECT_EQ(restored, pid);
  EXPECT_EQ(StateOf(restored), "running");
  const auto& result = rj.at("result").as_object();
  ASSERT_TRUE(result.contains("gpu")) << json::serialize(rj);
  EXPECT_EQ(Str(GpuProcess(result.at("gpu").as_object(), restored), "final_state"), "running");
  ExpectCounting(out);
}

TEST_F(GpuJobsTest, RestoreWithDeviceMapPassesItToTheDriver) {
  const std::string from = "GPU-11111111-2222-3333-4444-555555555555";
  const std::string to = "GPU-66666666-7777-8888-9999-000000000000";
  std::ofstream(state_dir_ / "devices") << from << " Fake GPU\n";
  StartDaemon();
  auto out = work_.path() / "counter";
  pid_t pid = -1;
  json::object job = CheckpointEndingIt(out, &pid);
  ASSERT_FALSE(job.empty());
  // The restoring node has both GPUs: the map picks the other one.
  std::ofstream(state_dir_ / "devices") << from << " Fake GPU\n" << to << " Fake GPU\n";
  json::object rj = Restore(Str(job, "checkpoint_id"),
                               {{"device_map", json::array{json::object{{"from", from}, {"to", to}}}}});
  ASSERT_EQ(Str(rj, "state"), "succeeded") << json::serialize(rj);
  targets_.Add(static_cast<pid_t>(rj.at("pid").as_int64()));
  std::ifstream in(state_dir_ / (std::to_string(pid) + ".state"));
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_NE(ss.str().find("device_map=" + from + "=" + to), std::string::npos) << ss.str();

  // A malformed map is a 400 at submit time.
  auto bad = Post("/v2/jobs/restore", {{"checkpoint_id", Str(job, "checkpoint_id")}, {"device_map", "x"}});
  EXPECT_EQ(bad.status, 400);
}

// The manifest records the node's GPUs and driver; a restore onto a node
// that cannot take them is refused before CRIU runs, with the reason, and
// one with other GPUs of the same model gets an automatic device map.
TEST_F(GpuJobsTest, RestoreChecksTheNodesGpusAndMapsOtherUuids) {
  const std::string a = "GPU-aaaaaaaa-0000-4000-8000-000000000001", b = "GPU-bbbbbbbb-0000-4000-8000-000000000002";
  const std::string c = "GPU-cccccccc-0000-4000-8000-000000000003", d = "GPU-dddddddd-0000-4000-8000-000000000004";
  auto devices = [&](const std::string& text) { std::ofstream(state_dir_ / "devices") << text; };
  devices(a + " Fake H200\n" + b + " Fake H200\n");
  StartDaemon();
  auto out = work_.path() / "counter";
  pid_t pid = -1;
  json::object job = CheckpointEndingIt(out, &pid);
  ASSERT_FALSE(job.empty());
  const std::string id = Str(job, "checkpoint_id");
  EXPECT_EQ(Str(GetCheckpoint(id), "gpu"), "Fake H200");
  std::ifstream mf(dir_.File("images/") + id + "/manifest.json", std::ios::binary);
  auto m = Manifest::Parse(std::string((std::istreambuf_iterator<char>(mf)), {}));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(json::serialize(m->gpu_platform),
            json::serialize(json::object{{"cuda_version", 13000},
                                         {"devices", json::array{json::object{{"uuid", a}, {"name", "Fake H200"}},
                                                                 json::object{{"uuid", b}, {"name", "Fake H200"}}}}}));

  // Refused, CRIU never ran: the dumped pid stays free.
  auto refused = [&](const json::object& extra, const std::string& why) {
    json::object body{{"checkpoint_id", id}, {"wait", true}};
    for (const auto& [k, v] : extra) body[k] = v;
    auto r = Post("/v2/jobs/restore", body);
    ASSERT_EQ(r.status, 200) << json::serialize(r.body);
    EXPECT_EQ(Str(r.body, "state"), "failed") << json::serialize(r.body);
    EXPECT_NE(Str(r.body, "error").find(why), std::string::npos) << Str(r.body, "error");
    EXPECT_FALSE(ct::Alive(pid));
  };
  devices(c + " Fake H200\n");
  refused({}, "this node has 1 GPU(s), the checkpoint's node had 2");
  devices(c + " Fake H200\n" + d + " Fake A100\n");
  refused({}, "is a Fake H200, GPU 1 here a Fake A100");
  refused({{"device_map", json::array{json::object{{"from", a}, {"to", c}}, json::object{{"from", b}, {"to", a}}}}},
          "this node has no GPU " + a);
  devices(c + " Fake H200\n" + d + " Fake H200\n");
  setenv("CKPTD_FAKE_CUDA_DRIVER_VERSION", "12080", 1);
  RestartDaemon();
  unsetenv("CKPTD_FAKE_CUDA_DRIVER_VERSION");
  refused({}, "older than the checkpoint's (CUDA 13.0)");

  RestartDaemon();
  json::object rj = Restore(id);
  ASSERT_EQ(Str(rj, "state"), "succeeded") << json::serialize(rj);
  targets_.Add(static_cast<pid_t>(rj.at("pid").as_int64()));
  std::ifstream in(state_dir_ / (std::to_string(pid) + ".state"));
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_NE(ss.str().find("device_map=" + a + "=" + c + "," + b + "=" + d), std::string::npos) << ss.str();
  ExpectCounting(out);
}

// The GPU part of a checkpoint fails: the job fails, the process is back to
// running (not locked, not stopped, counting), the record is deprecated
// with the error.
struct GpuFault {
  const char* name;
  int64_t lock_timeout_ms;
  const char* fault;  // the fake driver's fault switch, and its value
  const char* value;
  bool leave_running;
  const char* job_error;  // in the job's error; nullptr: not checked
  const char* record_error;  // in the record's info.error
  bool gpu_report;           // the record still has the GPU report
};

void PrintTo(const GpuFault& f, std::ostream* os) { *os << f.name; }

class GpuFaultTest : public GpuJobsTest, public ::testing::WithParamInterface<GpuFault> {};

TEST_P(GpuFaultTest, CheckpointFailsAndTheProcessRunsOn) {
  const GpuFault& f = GetParam();
  lock_timeout_ms_ = f.lock_timeout_ms;
  StartDaemon();
  auto out = work_.path() / "counter";
  pid_t pid = StartGpuCounter(out);
  SetFault(f.fault, f.value);
  json::object job = Checkpoint(pid, {{"leave_running", f.leave_running}});
  ASSERT_EQ(Str(job, "state"), "failed") << json::serialize(job);
  if (f.job_error) {
    EXPECT_NE(Str(job, "error").find(f.job_error), std::string::npos) << Str(job, "error");
  }
  EXPECT_EQ(StateOf(pid), "running");
  EXPECT_NE(ct::ProcState(pid), 'T');
  ExpectCounting(out);
  ExpectDeprecatedWith(job, f.record_error);
  if (f.gpu_report) {
    EXPECT_TRUE(GetCheckpoint(Str(job, "checkpoint_id")).at("info").as_object().contains("gpu"));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Faults, GpuFaultTest,
    ::testing::Values(
        // The lock times out (the process stays busy past 200 ms).
        GpuFault{"LockTimeout", 200, "lock_busy_ms", "3000", false, "gpu", "GPU lock of pid", true},
        // Device memory cannot be checkpointed: the lock is rolled back.
        GpuFault{"FailingCheckpoint", 10000, "fail_checkpoint", "", false, nullptr, "rolled back", false},
        // Every retry of the resume after a leave-running dump fails (3
        // attempts); the rollback resumes the process once the fault is spent.
        GpuFault{"FailingResumeAfterLeaveRunningDump", 10000, "fail_restore", "count=3", true, "gpu after dump",
                 "gpu after dump", false}),
    [](const auto& tp) { return std::string(tp.param.name); });

// One failure of the resume after a leave-running dump: the orchestrator's
// retry resumes the process and the job succeeds.
TEST_F(GpuJobsTest, FailingResumeOnceIsRetried) {
  StartDaemon();
  auto out = work_.path() / "counter";
  pid_t pid = StartGpuCounter(out);
  SetFault("fail_restore", "count=1");
  json::object ok = Checkpoint(pid, {{"leave_running", true}});
  ASSERT_EQ(Str(ok, "state"), "succeeded") << json::serialize(ok);
  EXPECT_EQ(StateOf(pid), "running");
  ExpectCounting(out);
}

TEST_F(GpuJobsTest, FailingGpuRestoreAfterCriuKillsTheRestoredTree) {
  StartDaemon();
  auto out = work_.path() / "counter";
  pid_t pid = -1;
  json::object job = CheckpointEndingIt(out, &pid);
  ASSERT_FALSE(job.empty());
  SetFault("fail_restore", "");
  auto r = Post("/v2/jobs/restore", {{"checkpoint_id", Str(job, "checkpoint_id")}, {"wait", true}});
  ASSERT_EQ(r.status, 200) << json::serialize(r.body);
  const auto& rj = r.body.as_object();
  ASSERT_EQ(Str(rj, "state"), "failed") << json::serialize(rj);
  EXPECT_NE(Str(rj, "error").find("gpu after restore"), std::string::npos) << Str(rj, "error");
  for (int i = 0; i < 100 && ct::Alive(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(ct::Alive(pid)) << "the half-restored tree is still there";
  // The checkpoint itself stays ready: a later restore may succeed.
  EXPECT_EQ(Str(GetCheckpoint(Str(job, "checkpoint_id")), "status"), "ready");
  ClearFault("fail_restore");
  json::object again = Restore(Str(job, "checkpoint_id"));
  ASSERT_EQ(Str(again, "state"), "succeeded") << json::serialize(again);
  targets_.Add(static_cast<pid_t>(again.at("pid").as_int64()));
  EXPECT_EQ(StateOf(pid), "running");
}

TEST_F(GpuJobsTest, FallsBackToTheCudaCheckpointTool) {
  cuda_library_ = kFakeLibNoCkpt;
  cuda_tool_ = kFakeTool;
  StartDaemon();
  auto h = Send("GET", "/healthz");
  EXPECT_EQ(Str(h.body.at("gpu").as_object(), "backend"), "cuda-checkpoint") << json::serialize(h.body);
  pid_t pid = -1;
  json::object rec = CheckpointLeavingItRunning(work_.path() / "counter", &pid);
  ASSERT_FALSE(rec.empty());
  EXPECT_EQ(Str(rec.at("info").at("gpu").at("driver").as_object(), "backend"), "cuda-checkpoint");
  EXPECT_EQ(Str(rec, "gpu"), "cuda");
}

TEST_F(GpuJobsTest, GpuOffLeavesGpuProcessesAlone) {
  StartDaemon();
  auto out = work_.path() / "counter";
  pid_t pid = StartGpuCounter(out);
  json::object job = Checkpoint(pid, {{"leave_running", true}, {"gpu", "off"}});
  ASSERT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
  json::object rec = GetCheckpoint(Str(job, "checkpoint_id"));
  EXPECT_EQ(Str(rec, "gpu"), "none");
  EXPECT_FALSE(rec.at("info").as_object().contains("gpu"));
  EXPECT_EQ(StateOf(pid), "running");
  auto bad = Post("/v2/jobs/checkpoint", {{"pid", pid}, {"gpu", "maybe"}});
  EXPECT_EQ(bad.status, 400) << json::serialize(bad.body);
}

TEST_F(GpuJobsTest, GpuOnWithoutAGpuProcessFails) {
  StartDaemon();
  auto out = work_.path() / "counter";
  pid_t pid = targets_.Start("counter", out, 3);
  ASSERT_GT(pid, 0);
  json::object job = Checkpoint(pid, {{"leave_running", true}, {"gpu", "on"}});
  ASSERT_EQ(Str(job, "state"), "failed") << json::serialize(job);
  EXPECT_NE(Str(job, "error").find("no process in the tree"), std::string::npos) << Str(job, "error");
  ExpectCounting(out);
}

TEST_F(GpuJobsTest, UnavailableDriver) {
  cuda_library_ = "/nonexistent/libcuda.so.1";
  cuda_tool_ = "";
  StartDaemon();
  auto h = Send("GET", "/healthz");
  ASSERT_EQ(h.status, 200);
  const auto& gpu = h.body.at("gpu").as_object();
  EXPECT_FALSE(gpu.at("available").as_bool());
  EXPECT_NE(Str(gpu, "reason").find("GPU checkpointing unavailable"), std::string::npos) << json::serialize(gpu);

  auto out = work_.path() / "counter";
  pid_t pid = targets_.Start("counter", out, 3);
  ASSERT_GT(pid, 0);
  auto on = Post("/v2/jobs/checkpoint", {{"pid", pid}, {"gpu", "on"}, {"wait", true}});
  EXPECT_EQ(on.status, 503) << json::serialize(on.body);
  EXPECT_NE(json::serialize(on.body).find("GPU checkpointing unavailable"), std::string::npos);

  json::object job = Checkpoint(pid, {{"leave_running", true}});
  ASSERT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
  EXPECT_EQ(Str(GetCheckpoint(Str(job, "checkpoint_id")), "gpu"), "none");

  // auto on a GPU process without a driver: refused, the process untouched.
  auto gout = work_.path() / "gpu-counter";
  pid_t gpid = targets_.Start("counter", gout, 3, {"--gpu-lib", kFakeLib});
  ASSERT_GT(gpid, 0);
  json::object refused = Checkpoint(gpid, {{"leave_running", true}});
  ASSERT_EQ(Str(refused, "state"), "failed") << json::serialize(refused);
  EXPECT_NE(Str(refused, "error").find("GPU checkpointing unavailable"), std::string::npos);
  ExpectCounting(gout);
}

}  // namespace
}  // namespace ckptd

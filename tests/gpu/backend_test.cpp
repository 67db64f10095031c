// Loading the driver / probing the tool (the "unavailable" paths and the
// factory's choice), then one conformance suite run against both backends:
// the CUDA driver API through the real dlopen path, and the cuda-checkpoint
// tool, both over the fake driver's shared per-PID state.
#include <chrono>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "gpu/cuda_checkpoint_tool.h"
#include "gpu/cuda_driver.h"
#include "tests/gpu/gpu_test_util.h"

namespace ckptd::gpu::testing {
namespace {

using namespace std::chrono_literals;

bool Contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// ---- loader / factory -----------------------------------------------------

using LoaderTest = FakeCudaTest;

TEST_F(LoaderTest, MissingLibraryIsUnavailable) {
  auto d = CudaDriverCheckpointer::Load(dir_ + "/no/libcuda.so.1");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(d.status().message(), "GPU checkpointing unavailable")) << d.status().message();
  EXPECT_TRUE(Contains(d.status().message(), "dlopen")) << d.status().message();
}

TEST_F(LoaderTest, LibraryWithoutCheckpointApiIsUnavailable) {
  auto d = CudaDriverCheckpointer::Load(kFakeLibNoCkpt);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(d.status().message(), "cuCheckpointProcessLock")) << d.status().message();
}

TEST_F(LoaderTest, CuInitFailureIsUnavailable) {
  setenv("CKPTD_FAKE_CUDA_INIT_ERROR", "100", 1);
  auto d = CudaDriverCheckpointer::Load(kFakeLib);
  unsetenv("CKPTD_FAKE_CUDA_INIT_ERROR");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(d.status().message(), "cuInit: CUDA_ERROR_NO_DEVICE")) << d.status().message();
}

TEST_F(LoaderTest, DriverReportsVersion) {
  setenv("CKPTD_FAKE_CUDA_DRIVER_VERSION", "12080", 1);
  auto d = CudaDriverCheckpointer::Load(kFakeLib);
  unsetenv("CKPTD_FAKE_CUDA_DRIVER_VERSION");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ((*d)->DriverInfo().cuda_version, 12080);
  EXPECT_EQ((*d)->DriverInfo().version, "12.8");
  EXPECT_EQ((*d)->DriverInfo().backend, "driver-api");
}

TEST_F(LoaderTest, FactoryPrefersDriverApi) {
  GpuConfig c = ToolConfig();
  c.driver_library = kFakeLib;
  auto b = OpenGpuCheckpointer(c, SystemProcessRunner::Default());
  EXPECT_TRUE(b.availability.available);
  EXPECT_EQ(b.availability.backend, "driver-api");
  EXPECT_EQ(b.checkpointer->DriverInfo().backend, "driver-api");
}

TEST_F(LoaderTest, FactoryFallsBackToToolWhenDriverLacksEntryPoints) {
  auto b = OpenGpuCheckpointer(ToolConfig(), SystemProcessRunner::Default());
  ASSERT_TRUE(b.availability.available) << b.availability.reason;
  EXPECT_EQ(b.availability.backend, "cuda-checkpoint");
  EXPECT_EQ(b.availability.driver.version, "580.65.06-fake");
  EXPECT_TRUE(Contains(b.availability.reason, "cuCheckpointProcess")) << b.availability.reason;
}

TEST_F(LoaderTest, FactoryFindsToolOnPath) {
  GpuConfig c = ToolConfig();
  c.tool_path = "cuda-checkpoint";
  std::string old_path = getenv("PATH") ? getenv("PATH") : "";
  setenv("PATH", (CKPTD_BINARY_DIR "/tests/fake_cuda:" + old_path).c_str(), 1);
  auto b = OpenGpuCheckpointer(c, SystemProcessRunner::Default());
  setenv("PATH", old_path.c_str(), 1);
  ASSERT_TRUE(b.availability.available) << b.availability.reason;
  EXPECT_EQ(b.availability.backend, "cuda-checkpoint");
}

TEST_F(LoaderTest, FactoryUnavailableWithNeither) {
  GpuConfig c;
  c.driver_library = dir_ + "/missing/libcuda.so.1";
  c.tool_path = dir_ + "/missing/cuda-checkpoint";
  auto b = OpenGpuCheckpointer(c, SystemProcessRunner::Default());
  EXPECT_FALSE(b.availability.available);
  EXPECT_EQ(b.availability.backend, "none");
  EXPECT_EQ(b.availability.reason.rfind("GPU checkpointing unavailable: ", 0), 0u) << b.availability.reason;
  EXPECT_TRUE(Contains(b.availability.reason, "dlopen")) << b.availability.reason;
  EXPECT_TRUE(Contains(b.availability.reason, "cuda-checkpoint")) << b.availability.reason;
  ASSERT_NE(b.checkpointer, nullptr);
  auto st = b.checkpointer->GetState(getpid());
  EXPECT_EQ(st.status().code(), Code::kUnavailable);
  EXPECT_EQ(b.checkpointer->Lock(getpid(), 1s).code(), Code::kUnavailable);
  auto j = b.availability.ToJson();
  EXPECT_EQ(j.at("available"), false);
  EXPECT_EQ(j.at("backend"), "none");
  EXPECT_EQ(j.at("reason").as_string(), b.availability.reason);
}

// ---- conformance: both backends ---------------------------------------------

class BackendTest : public FakeCudaBackendTest {
 protected:
  void SetUp() override {
    FakeCudaBackendTest::SetUp();
    if (HasFatalFailure()) return;
    ckpt_ = backend_.checkpointer.get();
  }
  GpuProcessState State(int pid) {
    auto s = ckpt_->GetState(pid);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : GpuProcessState::kFailed;
  }

  GpuCheckpointer* ckpt_ = nullptr;
};

TEST_P(BackendTest, FullCycleThroughEveryState) {
  auto proc = StartGpuProcess();
  int pid = proc->pid();
  EXPECT_EQ(StateOf(pid), "running");  // registered by loading the fake driver
  EXPECT_EQ(State(pid), GpuProcessState::kRunning);

  ASSERT_TRUE(ckpt_->Lock(pid, 5s).ok());
  EXPECT_EQ(StateOf(pid), "locked");
  EXPECT_EQ(State(pid), GpuProcessState::kLocked);

  ASSERT_TRUE(ckpt_->Checkpoint(pid).ok());
  EXPECT_EQ(StateOf(pid), "checkpointed");
  EXPECT_EQ(State(pid), GpuProcessState::kCheckpointed);

  ASSERT_TRUE(ckpt_->Restore(pid, {}).ok());
  EXPECT_EQ(StateOf(pid), "locked");

  ASSERT_TRUE(ckpt_->Unlock(pid).ok());
  EXPECT_EQ(StateOf(pid), "running");
  EXPECT_TRUE(Contains(CallsLog(), "lock pid=" + std::to_string(pid) + " timeout_ms=5000 -> 0")) << CallsLog();
}

TEST_P(BackendTest, IllegalStepsAreConflicts) {
  auto proc = StartGpuProcess();
  int pid = proc->pid();
  Status st = ckpt_->Checkpoint(pid);
  EXPECT_EQ(st.code(), Code::kConflict) << st.ToString();
  EXPECT_EQ(ckpt_->Unlock(pid).code(), Code::kConflict);
  EXPECT_EQ(ckpt_->Restore(pid, {}).code(), Code::kConflict);
  ASSERT_TRUE(ckpt_->Lock(pid, 1s).ok());
  EXPECT_EQ(ckpt_->Lock(pid, 1s).code(), Code::kConflict);
  EXPECT_EQ(StateOf(pid), "locked");
  ASSERT_TRUE(ckpt_->Unlock(pid).ok());
}

TEST_P(BackendTest, LockTimeoutLeavesProcessRunning) {
  auto proc = StartGpuProcess();
  int pid = proc->pid();
  SetFault("lock_busy_ms", "3000");
  auto t0 = std::chrono::steady_clock::now();
  Status st = ckpt_->Lock(pid, 200ms);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(st.code(), Code::kDeadlineExceeded) << st.ToString();
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 2500ms);
  EXPECT_EQ(StateOf(pid), "running");
}

TEST_P(BackendTest, RestorePassesDeviceMap) {
  auto proc = StartGpuProcess();
  int pid = proc->pid();
  auto map = ParseDeviceMap("GPU-eea0d83f-ebcd-ac27-6b3e-bec2a19724e6=GPU-8f4022ba-e0cb-1298-286e-225c953a7feb");
  ASSERT_TRUE(map.ok());
  ASSERT_TRUE(ckpt_->Lock(pid, 1s).ok());
  ASSERT_TRUE(ckpt_->Checkpoint(pid).ok());
  ASSERT_TRUE(ckpt_->Restore(pid, *map).ok());
  EXPECT_TRUE(Contains(StateFile(pid), "device_map=" + FormatDeviceMap(*map))) << StateFile(pid);
  ASSERT_TRUE(ckpt_->Unlock(pid).ok());
}

TEST_P(BackendTest, InjectedFailureCarriesDriverError) {
  auto proc = StartGpuProcess();
  int pid = proc->pid();
  SetFault("fail_checkpoint", "code=999 count=1");
  ASSERT_TRUE(ckpt_->Lock(pid, 1s).ok());
  Status st = ckpt_->Checkpoint(pid);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kInternal);
  if (GetParam() == Backend::kDriverApi) {
    EXPECT_TRUE(Contains(st.message(), "CUDA_ERROR_UNKNOWN")) << st.message();
  } else {
    EXPECT_TRUE(Contains(st.message(), "unknown error")) << st.message();  // the tool's output
  }
  EXPECT_EQ(StateOf(pid), "locked");
  EXPECT_TRUE(ckpt_->Checkpoint(pid).ok());  // count=1: only the first call fails
}

TEST_P(BackendTest, NonCudaProcessIsAnError) {
  Child plain({kGpuUser});  // does not load the driver
  ASSERT_GT(plain.pid(), 0);
  auto s = ckpt_->GetState(plain.pid());
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(StateOf(plain.pid()), "");
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendTest, ::testing::Values(Backend::kDriverApi, Backend::kTool), BackendName);

// ---- tool specifics -------------------------------------------------------

using ToolTest = FakeCudaTest;

TEST_F(ToolTest, DeadlineKillsHungTool) {
  auto proc = StartGpuProcess();
  GpuConfig c = ToolConfig();
  c.tool_deadline = 300ms;
  auto tool = CudaCheckpointTool::Probe(c, SystemProcessRunner::Default());
  ASSERT_TRUE(tool.ok()) << tool.status().ToString();
  SetFault("slow_ms", "5000");
  auto t0 = std::chrono::steady_clock::now();
  Status st = (*tool)->Checkpoint(proc->pid());
  EXPECT_EQ(st.code(), Code::kDeadlineExceeded) << st.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
  EXPECT_TRUE(Contains(st.message(), "--action checkpoint")) << st.message();
}

TEST_F(ToolTest, MissingToolIsUnavailable) {
  GpuConfig c = ToolConfig();
  c.tool_path = "ckptd-no-such-cuda-checkpoint";
  auto tool = CudaCheckpointTool::Probe(c, SystemProcessRunner::Default());
  ASSERT_FALSE(tool.ok());
  EXPECT_EQ(tool.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(tool.status().message(), "not found in PATH")) << tool.status().message();
}

}  // namespace
}  // namespace ckptd::gpu::testing

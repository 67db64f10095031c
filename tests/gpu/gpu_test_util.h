// Shared helpers for the gpu/ tests: a fresh fake-driver state dir per test,
// GPU-using child processes, fault switches and state-file reads, and a
// fixture for suites run against both backends.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/subprocess.h"
#include "gpu/checkpointer.h"
#include "tests/testing/test_util.h"

namespace ckptd::gpu::testing {

inline const std::string kFakeLib = CKPTD_BINARY_DIR "/tests/fake_cuda/libcuda.so.1";
inline const std::string kFakeLibNoCkpt = CKPTD_BINARY_DIR "/tests/fake_cuda/nockpt/libcuda.so.1";
inline const std::string kFakeTool = CKPTD_BINARY_DIR "/tests/fake_cuda/cuda-checkpoint";
inline const std::string kGpuUser = CKPTD_BINARY_DIR "/tests/gpu/ckptd_gpu_user";

// A child process group started from argv; killed (whole group) on destruction.
using Child = ckptd::testing::ReadyChild;

// One fake-driver state dir per test, exported in the environment.
class FakeCudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("CKPTD_FAKE_CUDA_STATE_DIR", dir_.c_str(), 1);
    unsetenv("CKPTD_FAKE_CUDA_INIT_ERROR");
  }

  // A running process that has the fake libcuda.so.1 mapped.
  std::unique_ptr<Child> StartGpuProcess() {
    auto c = std::make_unique<Child>(std::vector<std::string>{kGpuUser, "--gpu-lib", kFakeLib});
    EXPECT_GT(c->pid(), 0);
    EXPECT_EQ(c->ready_pids().size(), 1u);
    return c;
  }

  // First line of <pid>.state ("" when absent).
  std::string StateOf(int pid) const {
    std::ifstream in(dir_ + "/" + std::to_string(pid) + ".state");
    std::string word;
    std::getline(in, word);
    return word;
  }
  std::string StateFile(int pid) const {
    std::ifstream in(dir_ + "/" + std::to_string(pid) + ".state");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::string CallsLog() const {
    std::ifstream in(dir_ + "/calls.log");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  void SetFault(const std::string& name, const std::string& value) const {
    std::ofstream(dir_ + "/" + name) << value << "\n";
  }
  void ClearFault(const std::string& name) const { std::filesystem::remove(dir_ + "/" + name); }
  void SetState(int pid, const std::string& word) const {
    std::ofstream(dir_ + "/" + std::to_string(pid) + ".state") << word << "\n";
  }

  GpuConfig DriverConfig() const {
    GpuConfig c;
    c.driver_library = kFakeLib;
    c.tool_path = "";
    return c;
  }
  GpuConfig ToolConfig() const {
    GpuConfig c;
    c.driver_library = kFakeLibNoCkpt;
    c.tool_path = kFakeTool;
    c.tool_deadline = std::chrono::seconds(20);
    c.tool_env = {{"CKPTD_FAKE_CUDA_STATE_DIR", dir_}};
    return c;
  }

  ckptd::testing::TempDir tmp_{"ckptd-gpu-test"};
  const std::string dir_ = tmp_.path().string();
};

// The two backends over the fake driver, for suites run against both.
enum class Backend { kDriverApi, kTool };
inline std::string BackendName(const ::testing::TestParamInfo<Backend>& tp) {
  return tp.param == Backend::kDriverApi ? "DriverApi" : "Tool";
}
inline void PrintTo(Backend b, std::ostream* os) { *os << (b == Backend::kDriverApi ? "driver-api" : "cuda-checkpoint"); }

// FakeCudaTest with backend_ opened for the parameter: the test fails
// unless that backend is available.
class FakeCudaBackendTest : public FakeCudaTest, public ::testing::WithParamInterface<Backend> {
 protected:
  void SetUp() override {
    FakeCudaTest::SetUp();
    backend_ = OpenGpuCheckpointer(GetParam() == Backend::kDriverApi ? DriverConfig() : ToolConfig(),
                                   SystemProcessRunner::Default());
    ASSERT_TRUE(backend_.availability.available) << backend_.availability.reason;
    ASSERT_EQ(backend_.availability.backend, GetParam() == Backend::kDriverApi ? "driver-api" : "cuda-checkpoint");
  }

  GpuBackend backend_;
};

}  // namespace ckptd::gpu::testing

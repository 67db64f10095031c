// gpu/nvml.h against the fake NVML (tests/fake_cuda/fake_libnvml.cpp), which
// lists the fake driver's processes that hold device memory: loading,
// refusals, each process's device memory, and memory released while a
// process is checkpointed.
#include "gpu/nvml.h"

#include <cstdlib>

#include "gpu/cuda_driver.h"
#include "tests/gpu/gpu_test_util.h"

namespace ckptd::gpu {
namespace {

using namespace testing;

const std::string kFakeNvml = CKPTD_BINARY_DIR "/tests/fake_cuda/libnvidia-ml.so.1";
constexpr uint64_t kGiB = uint64_t{1} << 30;

class NvmlTest : public FakeCudaTest {
 protected:
  void SetUp() override {
    FakeCudaTest::SetUp();
    unsetenv("CKPTD_FAKE_NVML_INIT_ERROR");
  }
  void TearDown() override {
    unsetenv("CKPTD_FAKE_CUDA_DEVICE_MEMORY");
    unsetenv("CKPTD_FAKE_NVML_INIT_ERROR");
    FakeCudaTest::TearDown();
  }

  // A GPU process that registers `bytes` of device memory (none: 0).
  std::unique_ptr<Child> StartWithMemory(uint64_t bytes) {
    if (bytes)
      setenv("CKPTD_FAKE_CUDA_DEVICE_MEMORY", std::to_string(bytes).c_str(), 1);
    else
      unsetenv("CKPTD_FAKE_CUDA_DEVICE_MEMORY");
    auto c = StartGpuProcess();
    unsetenv("CKPTD_FAKE_CUDA_DEVICE_MEMORY");
    return c;
  }
};

TEST_F(NvmlTest, MissingOrWrongLibrariesAreUnavailable) {
  auto missing = OpenNvml("/nonexistent/libnvidia-ml.so.1");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kUnavailable);
  EXPECT_NE(missing.status().message().find("dlopen"), std::string::npos) << missing.status().ToString();
  auto not_nvml = OpenNvml(kFakeLib);  // the driver: no NVML entry points
  ASSERT_FALSE(not_nvml.ok());
  EXPECT_NE(not_nvml.status().message().find("missing nvmlInit_v2"), std::string::npos) << not_nvml.status().ToString();
  setenv("CKPTD_FAKE_NVML_INIT_ERROR", "9", 1);
  auto init = OpenNvml(kFakeNvml);
  ASSERT_FALSE(init.ok());
  EXPECT_NE(init.status().message().find("nvmlInit_v2"), std::string::npos) << init.status().ToString();
}

TEST_F(NvmlTest, EachProcesssDeviceMemoryUntilItIsCheckpointed) {
  auto a = StartWithMemory(3 * kGiB);
  auto b = StartWithMemory(kGiB / 2);
  auto none = StartWithMemory(0);
  auto nvml = OpenNvml(kFakeNvml);
  ASSERT_TRUE(nvml.ok()) << nvml.status().ToString();
  auto use = (*nvml)->DeviceMemoryByPid();
  ASSERT_TRUE(use.ok()) << use.status().ToString();
  EXPECT_EQ(*use, (std::map<int, uint64_t>{{a->pid(), 3 * kGiB}, {b->pid(), kGiB / 2}}));

  // A checkpointed process holds no device memory; restored, it does again.
  auto driver = CudaDriverCheckpointer::Load(kFakeLib);
  ASSERT_TRUE(driver.ok()) << driver.status().ToString();
  ASSERT_TRUE((*driver)->Lock(a->pid(), std::chrono::seconds(5)).ok());
  EXPECT_EQ((*(*nvml)->DeviceMemoryByPid()).count(a->pid()), 1u) << "a locked process still holds its memory";
  ASSERT_TRUE((*driver)->Checkpoint(a->pid()).ok());
  EXPECT_EQ(*(*nvml)->DeviceMemoryByPid(), (std::map<int, uint64_t>{{b->pid(), kGiB / 2}}));
  ASSERT_TRUE((*driver)->Restore(a->pid(), {}).ok());
  ASSERT_TRUE((*driver)->Unlock(a->pid()).ok());
  EXPECT_EQ((*(*nvml)->DeviceMemoryByPid()).at(a->pid()), 3 * kGiB);
}

TEST_F(NvmlTest, TheBackendOpensNvmlOnlyWithACheckpointingBackend) {
  GpuConfig c = DriverConfig();
  c.nvml_library = kFakeNvml;
  GpuBackend with = OpenGpuCheckpointer(c, nullptr);
  ASSERT_TRUE(with.availability.available) << with.availability.reason;
  EXPECT_NE(with.memory, nullptr) << with.memory_unavailable;
  c.nvml_library = "";
  GpuBackend without = OpenGpuCheckpointer(c, nullptr);
  EXPECT_EQ(without.memory, nullptr);
  EXPECT_EQ(without.memory_unavailable, "NVML not configured");
  c.nvml_library = "/nonexistent/libnvidia-ml.so.1";
  GpuBackend missing = OpenGpuCheckpointer(c, nullptr);
  EXPECT_TRUE(missing.availability.available);
  EXPECT_EQ(missing.memory, nullptr);
  EXPECT_NE(missing.memory_unavailable.find("dlopen"), std::string::npos) << missing.memory_unavailable;
  c.driver_library = "/nonexistent/libcuda.so.1";
  c.tool_path = "";
  c.nvml_library = kFakeNvml;
  GpuBackend no_gpu = OpenGpuCheckpointer(c, nullptr);
  EXPECT_FALSE(no_gpu.availability.available);
  EXPECT_EQ(no_gpu.memory, nullptr);
}

}  // namespace
}  // namespace ckptd::gpu

// PlanGpuRestore's rules (gpu/compat.h), GpuPlatform's JSON, and the fake
// driver's GPU list through the driver-API backend.
#include <fstream>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "gpu/compat.h"
#include "tests/gpu/gpu_test_util.h"

namespace ckptd::gpu::testing {
namespace {

GpuDevice Dev(const std::string& uuid, const std::string& name) {
  auto u = GpuUuid::Parse(uuid);
  EXPECT_TRUE(u.ok()) << uuid;
  return GpuDevice{u.ok() ? *u : GpuUuid{}, name};
}

const std::string kA = "GPU-aaaaaaaa-0000-0000-0000-000000000001";
const std::string kB = "GPU-bbbbbbbb-0000-0000-0000-000000000002";
const std::string kC = "GPU-cccccccc-0000-0000-0000-000000000003";
const std::string kD = "GPU-dddddddd-0000-0000-0000-000000000004";

GpuPlatform Platform(int version, std::vector<GpuDevice> devices) { return GpuPlatform{version, std::move(devices)}; }
DeviceMap Map(std::initializer_list<std::pair<std::string, std::string>> pairs) {
  DeviceMap m;
  for (const auto& [a, b] : pairs) m.push_back(GpuPair{Dev(a, "").uuid, Dev(b, "").uuid});
  return m;
}
bool Says(const Status& st, const std::string& needle) { return st.message().find(needle) != std::string::npos; }

TEST(GpuCompatTest, SameNodeNeedsNoMap) {
  auto ckpt = Platform(13000, {Dev(kA, "H200"), Dev(kB, "H200")});
  auto map = PlanGpuRestore(ckpt, ckpt, {});
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  EXPECT_TRUE(map->empty());
}

TEST(GpuCompatTest, OtherUuidsOfTheSameModelsAreMappedByOrdinal) {
  auto ckpt = Platform(13000, {Dev(kA, "H200"), Dev(kB, "H200")});
  auto here = Platform(13010, {Dev(kC, "H200"), Dev(kD, "H200")});
  auto map = PlanGpuRestore(ckpt, here, {});
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  EXPECT_EQ(*map, Map({{kA, kC}, {kB, kD}}));
}

TEST(GpuCompatTest, IncompatibleNodesAreRefusedWithTheReason) {
  auto ckpt = Platform(13000, {Dev(kA, "H200"), Dev(kB, "H200")});
  Status older = PlanGpuRestore(ckpt, Platform(12080, {Dev(kA, "H200"), Dev(kB, "H200")}), {}).status();
  EXPECT_EQ(older.code(), Code::kConflict);
  EXPECT_TRUE(Says(older, "CUDA 12.8) is older than the checkpoint's (CUDA 13.0")) << older.message();
  Status fewer = PlanGpuRestore(ckpt, Platform(13000, {Dev(kA, "H200")}), {}).status();
  EXPECT_EQ(fewer.code(), Code::kConflict);
  EXPECT_TRUE(Says(fewer, "this node has 1 GPU(s), the checkpoint's node had 2")) << fewer.message();
  Status model = PlanGpuRestore(ckpt, Platform(13000, {Dev(kC, "H200"), Dev(kD, "A100")}), {}).status();
  EXPECT_EQ(model.code(), Code::kConflict);
  EXPECT_TRUE(Says(model, "GPU 1 of the checkpoint is a H200, GPU 1 here a A100")) << model.message();
}

TEST(GpuCompatTest, RequestedMapsAreChecked) {
  auto ckpt = Platform(13000, {Dev(kA, "H200"), Dev(kB, "H200")});
  auto here = Platform(13000, {Dev(kC, "H200"), Dev(kD, "A100"), Dev(kA, "H200")});
  auto good = PlanGpuRestore(ckpt, here, Map({{kA, kC}, {kB, kA}}));
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(*good, Map({{kA, kC}, {kB, kA}}));
  struct Case {
    DeviceMap map;
    std::string says;
  };
  for (const auto& c : std::vector<Case>{
           {Map({{kC, kA}, {kB, kA}}), kC + " is not a GPU of the checkpoint's node"},
           {Map({{kA, kB}, {kB, kC}}), "this node has no GPU " + kB},
           {Map({{kA, kD}, {kB, kC}}), "a GPU restores onto the same model"},
           {Map({{kA, kC}, {kB, kC}}), "maps a GPU twice"},
           {Map({{kA, kC}}), "leaves " + kB + " (H200) unmapped"},
       }) {
    Status st = PlanGpuRestore(ckpt, here, c.map).status();
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << FormatDeviceMap(c.map);
    EXPECT_TRUE(Says(st, c.says)) << st.message();
  }
}

TEST(GpuCompatTest, PlatformJsonRoundTripsAndRejectsMalformedInput) {
  auto p = Platform(13000, {Dev(kA, "NVIDIA H200"), Dev(kB, "NVIDIA H200")});
  auto back = GpuPlatform::FromJson(p.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->cuda_version, 13000);
  EXPECT_EQ(back->devices, p.devices);
  for (const char* bad : {R"([])", R"({"cuda_version":"13"})", R"({"cuda_version":13000,"devices":[{"uuid":"x"}]})",
                          R"({"cuda_version":13000,"devices":[{"uuid":"GPU-zz","name":"n"}]})"}) {
    EXPECT_FALSE(GpuPlatform::FromJson(boost::json::parse(bad)).ok()) << bad;
  }
}

class FakeDevicesTest : public FakeCudaTest {};

TEST_F(FakeDevicesTest, TheDriverBackendListsTheNodesGpus) {
  std::ofstream(dir_ + "/devices") << kA << " NVIDIA H200\n" << kB << " NVIDIA H200\n";
  auto backend = OpenGpuCheckpointer(DriverConfig(), SystemProcessRunner::Default());
  ASSERT_TRUE(backend.availability.available) << backend.availability.reason;
  auto devices = backend.checkpointer->Devices();
  ASSERT_TRUE(devices.ok()) << devices.status().ToString();
  EXPECT_EQ(*devices, (std::vector<GpuDevice>{Dev(kA, "NVIDIA H200"), Dev(kB, "NVIDIA H200")}));
  // The tool backend cannot list GPUs: callers skip the check.
  auto tool = OpenGpuCheckpointer(ToolConfig(), SystemProcessRunner::Default());
  ASSERT_TRUE(tool.availability.available) << tool.availability.reason;
  EXPECT_EQ(tool.checkpointer->Devices().status().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace ckptd::gpu::testing

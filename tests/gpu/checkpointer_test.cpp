// Value types of gpu/checkpointer.h: states, UUIDs, device maps.
#include <gtest/gtest.h>

#include "gpu/checkpointer.h"

namespace ckptd::gpu {
namespace {

TEST(GpuTypesTest, StateNamesRoundTrip) {
  for (auto s : {GpuProcessState::kRunning, GpuProcessState::kLocked, GpuProcessState::kCheckpointed,
                 GpuProcessState::kFailed}) {
    auto parsed = ParseState(StateName(s));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_FALSE(ParseState("frozen").ok());
}

TEST(GpuTypesTest, UuidParseAndFormat) {
  const std::string text = "GPU-eea0d83f-ebcd-ac27-6b3e-bec2a19724e6";
  auto u = GpuUuid::Parse(text);
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->bytes[0], 0xee);
  EXPECT_EQ(u->bytes[15], 0xe6);
  EXPECT_EQ(u->ToString(), text);
  auto bare = GpuUuid::Parse("EEA0D83F-EBCD-AC27-6B3E-BEC2A19724E6");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(*bare, *u);
  for (const char* bad : {"", "GPU-", "GPU-eea0d83f-ebcd-ac27-6b3e-bec2a19724e", "GPU-eea0d83f-ebcd-ac27-6b3e-bec2a19724e6x",
                          "GPU-eea0d83fzebcd-ac27-6b3e-bec2a19724e6", "GPU-gea0d83f-ebcd-ac27-6b3e-bec2a19724e6"}) {
    EXPECT_FALSE(GpuUuid::Parse(bad).ok()) << bad;
  }
}

TEST(GpuTypesTest, DeviceMapRoundTrip) {
  const std::string text =
      "GPU-eea0d83f-ebcd-ac27-6b3e-bec2a19724e6=GPU-8f4022ba-e0cb-1298-286e-225c953a7feb,"
      "GPU-8f4022ba-e0cb-1298-286e-225c953a7feb=GPU-eea0d83f-ebcd-ac27-6b3e-bec2a19724e6";
  auto map = ParseDeviceMap(text);
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  ASSERT_EQ(map->size(), 2u);
  EXPECT_EQ((*map)[0].old_uuid, (*map)[1].new_uuid);
  EXPECT_EQ(FormatDeviceMap(*map), text);
  EXPECT_TRUE(ParseDeviceMap("")->empty());
  EXPECT_FALSE(ParseDeviceMap("GPU-eea0d83f-ebcd-ac27-6b3e-bec2a19724e6").ok());
  EXPECT_FALSE(ParseDeviceMap("a=b").ok());
}

}  // namespace
}  // namespace ckptd::gpu

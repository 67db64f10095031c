// Manifest::Parse on what a manifest may carry: gpu_platform round-trips,
// and free-form members holding fractions are refused: ckptd writes none,
// Boost.JSON 1.81 parses some an ulp off (so a serialized manifest would
// parse to another one), and one beyond a double's range is infinity, which
// serializes as no JSON reader accepts.
#include <gtest/gtest.h>

#include "images/manifest.h"

namespace ckptd {
namespace {

std::string WithMember(const std::string& member) {
  return R"({"version":1,"checkpoint_id":"c","pid":1,"criu_version":"4.2.1","codec":"none","created_at_ms":1,)"
         R"("files":[{"name":"core-1.img","size":4,"stored_size":4,"codec":"none",)"
         R"("sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}],)" +
         member + "}";
}

TEST(ManifestTest, GpuPlatformRoundTrips) {
  auto m = Manifest::Parse(
      WithMember(R"("gpu_pids":[7],"gpu_ns_pids":[1],"gpu_platform":{"cuda_version":13000,"devices":[]})"));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  auto again = Manifest::Parse(m->Serialize());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->gpu_platform, m->gpu_platform);
  EXPECT_EQ(again->gpu_pids, std::vector<int>{7});
  EXPECT_EQ(again->gpu_ns_pids, std::vector<int>{1});
}

TEST(ManifestTest, FractionsAndNonObjectsAreCorruption) {
  // 1.2307121280103317E-206 is one a fuzzer found: it parsed back 1 ulp off.
  for (const char* member : {R"("gpu_platform":{"cuda_version":1e999})", R"("gpu_platform":[1])",
                             R"("options":{"x":[-1e400]})", R"("options":{"x":1.2307121280103317E-206})",
                             R"("gpu_platform":{"cuda_version":13000,"devices":[{"uuid":"u","name":"n","m":0.5}]})",
                             R"("gpu_pids":[7],"gpu_ns_pids":[1,2])", R"("gpu_pids":[7],"gpu_ns_pids":["1"])"}) {
    auto m = Manifest::Parse(WithMember(member));
    ASSERT_FALSE(m.ok()) << member;
    EXPECT_EQ(m.status().code(), Code::kCorruption) << member;
  }
}

TEST(ManifestTest, IntegersStringsAndBooleansRoundTripInOptions) {
  auto m = Manifest::Parse(WithMember(R"("options":{"timeout":300,"big":18446744073709551615,"neg":-7,)"
                                      R"("on":true,"external":["mnt[a]:b"],"nested":{"n":null}})"));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  auto again = Manifest::Parse(m->Serialize());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->options, m->options);
}

}  // namespace
}  // namespace ckptd

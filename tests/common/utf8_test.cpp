#include "common/utf8.h"

#include <string>

#include <gtest/gtest.h>

namespace ckptd {
namespace {

struct Utf8Case {
  const char* name;
  std::string bytes;
  bool valid;
};

class Utf8Test : public ::testing::TestWithParam<Utf8Case> {};

TEST_P(Utf8Test, Validates) { EXPECT_EQ(IsValidUtf8(GetParam().bytes), GetParam().valid); }

INSTANTIATE_TEST_SUITE_P(
    Table, Utf8Test,
    ::testing::Values(Utf8Case{"empty", "", true}, Utf8Case{"ascii", "thread-1", true},
                      Utf8Case{"two_bytes", "caf\xC3\xA9", true}, Utf8Case{"three_bytes", "\xE2\x82\xAC", true},
                      Utf8Case{"four_bytes", "\xF0\x9F\x98\x80", true}, Utf8Case{"max", "\xF4\x8F\xBF\xBF", true},
                      Utf8Case{"stray_byte",
                               "t\xCD"
                               "1",
                               false},
                      Utf8Case{"lone_continuation", "\x80", false}, Utf8Case{"cut_short", "\xE2\x82", false},
                      Utf8Case{"overlong_slash", "\xC0\xAF", false}, Utf8Case{"overlong_three", "\xE0\x80\xAF", false},
                      Utf8Case{"surrogate", "\xED\xA0\x80", false}, Utf8Case{"above_max", "\xF4\x90\x80\x80", false},
                      Utf8Case{"ff", "\xFF", false}),
    [](const auto& tp) { return std::string(tp.param.name); });

}  // namespace
}  // namespace ckptd

#include "common/subprocess.h"

#include <unistd.h>

#include <chrono>

#include <gtest/gtest.h>

namespace ckptd {
namespace {

TEST(Subprocess, CapturesOutputAndExitCode) {
  auto r = SystemProcessRunner::Default()->Run({"sh", "-c", "echo out; echo err >&2; exit 3"}, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->Describe(), "exit 3: err");
}

TEST(Subprocess, PassesEnvironment) {
  RunOptions o;
  o.env["CKPTD_TEST_VALUE"] = "42";
  auto r = SystemProcessRunner::Default()->Run({"sh", "-c", "echo $CKPTD_TEST_VALUE"}, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "42\n");
}

TEST(Subprocess, DeadlineKillsAndReaps) {
  RunOptions o;
  o.deadline = std::chrono::milliseconds(200);
  auto start = std::chrono::steady_clock::now();
  auto r = SystemProcessRunner::Default()->Run({"sh", "-c", "trap '' TERM; sleep 30"}, o);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status().code(), Code::kDeadlineExceeded);
  EXPECT_LT(took, std::chrono::seconds(10));
}

// The deadline's signals wait while `interruptible` says no, and go as
// soon as it says yes.
TEST(Subprocess, DeadlineWaitsUntilInterruptible) {
  using namespace std::chrono_literals;
  const auto start = std::chrono::steady_clock::now();
  int asked = 0;
  RunOptions o;
  o.deadline = 100ms;
  o.hold_limit = 20s;
  o.interruptible = [&] {
    ++asked;
    return std::chrono::steady_clock::now() - start >= 700ms;
  };
  auto r = SystemProcessRunner::Default()->Run({"sleep", "30"}, o);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kDeadlineExceeded);
  EXPECT_GE(took, 700ms);
  EXPECT_LT(took, 5s);
  EXPECT_GE(asked, 3) << "asked again while held";
}

// The hold is bounded, and a child that ends while held is reported as it
// ended, not as past its deadline.
TEST(Subprocess, HoldIsBoundedAndAChildEndingMeanwhileCounts) {
  using namespace std::chrono_literals;
  RunOptions o;
  o.deadline = 100ms;
  o.hold_limit = 400ms;
  o.interruptible = [] { return false; };
  auto start = std::chrono::steady_clock::now();
  auto r = SystemProcessRunner::Default()->Run({"sleep", "30"}, o);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kDeadlineExceeded);
  EXPECT_GE(took, 500ms);
  EXPECT_LT(took, 5s);

  o.hold_limit = 20s;
  auto ended = SystemProcessRunner::Default()->Run({"sh", "-c", "sleep 0.6; echo done; exit 3"}, o);
  ASSERT_TRUE(ended.ok()) << ended.status().ToString();
  EXPECT_EQ(ended->exit_code, 3);
  EXPECT_EQ(ended->out, "done\n");
}

TEST(Subprocess, BoundsCapturedOutput) {
  RunOptions o;
  o.max_output = 1000;
  auto r = SystemProcessRunner::Default()->Run({"sh", "-c", "head -c 1000000 /dev/zero"}, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->out.size(), 1000u);
}

TEST(Subprocess, MissingBinaryIsAnError) {
  auto r = SystemProcessRunner::Default()->Run({"/nonexistent/tool"}, {});
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("/nonexistent/tool"), std::string::npos);
}

// stdio given: the child writes where the caller said, Run captures
// nothing and returns although a grandchild still holds that stdio (what
// runc restore --detach needs).
TEST(Subprocess, GivenStdioIsPassedAndNotWaitedFor) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  RunOptions o;
  o.stdio = std::array<int, 3>{p[0], p[1], p[1]};
  int started = 0;
  o.on_started = [&](int pid) { started = pid; };
  auto t0 = std::chrono::steady_clock::now();
  auto r = SystemProcessRunner::Default()->Run({"sh", "-c", "echo hi; (sleep 3 &) ; exit 4"}, o);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 4);
  EXPECT_TRUE(r->out.empty());
  EXPECT_GT(started, 0);
  EXPECT_LT(took, std::chrono::seconds(2));
  char buf[8] = {};
  ASSERT_EQ(read(p[0], buf, 3), 3);
  EXPECT_STREQ(buf, "hi\n");
  close(p[0]);
  close(p[1]);
}

TEST(Status, ContextChainsAndResultCarriesValues) {
  Status s = NotFound("pid 7").WithContext("criu dump").WithContext("checkpoint 3f2a");
  EXPECT_EQ(s.message(), "checkpoint 3f2a: criu dump: pid 7");
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_TRUE(Status::Ok().WithContext("x").ok());
  {  // scoped: GCC 12 -O2 flags the variant's destructor as maybe-uninitialized otherwise
    Result<int> r = 5;
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(*r, 5);
  }
  Result<int> e = IOError("disk");
  EXPECT_EQ(e.status().ToString(), "IOError: disk");
}

}  // namespace
}  // namespace ckptd

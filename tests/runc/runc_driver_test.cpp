// The runc driver against the real runc (Debian's, installed by
// scripts/setup.sh) and ckptd's CRIU, on containers whose rootfs is built
// from busybox-static. Needs root.
#include "runc/runc_driver.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "tests/testing/criu_test_util.h"
#include "tests/testing/runc_fixture.h"
#include "tests/testing/test_util.h"

namespace ckptd::runc {
namespace {

namespace fs = std::filesystem;
using ckptd::testing::CountsPast;
using ckptd::testing::ReadCount;
using ckptd::testing::TempDir;
using namespace std::chrono_literals;

class RuncDriverTest : public ::testing::Test {
 protected:
  RuncDriverTest()
      : dir_("ckptd-runc"),
        root_(dir_.Sub("root")),
        data_(dir_.Sub("data")),
        bundle_(dir_.Sub("bundle")),
        containers_(root_),
        driver_(RuncOptions{ckptd::testing::RuncPath(), ckptd::criu::testing::CriuPath(), std::chrono::seconds(60)}) {}

  void SetUp() override { ckptd::testing::MakeBundle(bundle_, ckptd::testing::CounterSpec(data_.string())); }

  // The counter container `id`, counting.
  void StartCounter(const std::string& id) {
    containers_.Run(id, bundle_);
    ASSERT_TRUE(CountsPast(count(), 2)) << "the container does not count";
  }
  CheckpointArgs Args(const std::string& id, const std::string& images) {
    CheckpointArgs a;
    a.root = root_.string();
    a.id = id;
    a.image_path = dir_.Sub(images).string();
    a.work_path = dir_.Sub(images + "-work").string();
    return a;
  }
  RestoreArgs Restore(const std::string& id, const std::string& images) {
    containers_.Track(id);
    RestoreArgs r;
    r.root = root_.string();
    r.id = id;
    r.bundle = bundle_.string();
    r.image_path = (dir_.path() / images).string();
    r.work_path = dir_.Sub(images + "-restore-" + id).string();
    r.stdio = containers_.stdio().theirs();
    return r;
  }
  fs::path count() const { return data_ / "count"; }
  std::string Id(const std::string& name) const { return ckptd::testing::UniqueId(dir_.path(), name); }

  TempDir dir_;
  fs::path root_, data_, bundle_;
  ckptd::testing::RuncContainers containers_;
  RuncDriver driver_;
};

TEST_F(RuncDriverTest, ProbeReadsTheVersion) {
  auto v = driver_.Probe();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_GE(v->major, 1);
  EXPECT_FALSE(v->text.empty());
}

// Counts the commands it runs, running them for real.
class CountingRunner final : public ckptd::ProcessRunner {
 public:
  Result<ckptd::RunResult> Run(const std::vector<std::string>& argv, const ckptd::RunOptions& opts) override {
    ++runs;
    return ckptd::SystemProcessRunner::Default()->Run(argv, opts);
  }
  int runs = 0;
};

TEST_F(RuncDriverTest, ProbeAsksRuncOnceAndAFailureAgain) {
  CountingRunner runner;
  RuncDriver runc(RuncOptions{ckptd::testing::RuncPath(), ckptd::criu::testing::CriuPath()}, &runner);
  ASSERT_TRUE(runc.Probe().ok());
  ASSERT_TRUE(runc.Probe().ok());
  EXPECT_EQ(runner.runs, 1);
  RuncDriver missing(RuncOptions{"/nonexistent/runc", ckptd::criu::testing::CriuPath()}, &runner);
  EXPECT_FALSE(missing.Probe().ok());
  EXPECT_FALSE(missing.Probe().ok());
  EXPECT_EQ(runner.runs, 3);
}

TEST_F(RuncDriverTest, MissingRuncIsUnavailable) {
  RuncDriver missing(RuncOptions{"/nonexistent/runc", ckptd::criu::testing::CriuPath(), std::chrono::seconds(5)});
  auto v = missing.Probe();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), Code::kUnavailable);
  EXPECT_NE(v.status().message().find("/nonexistent/runc"), std::string::npos);
  EXPECT_EQ(missing.State(root_.string(), "c").status().code(), Code::kUnavailable);
}

TEST(RuncVersionTest, ParsesAndRefusesGarbage) {
  auto v = ParseRuncVersion("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1\nspec: 1.0.2-dev\n");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->major, 1);
  EXPECT_EQ(v->minor, 1);
  EXPECT_EQ(v->patch, 5);
  EXPECT_EQ(v->text, "1.1.5+ds1");
  EXPECT_EQ(ParseRuncVersion("crun 1.8").status().code(), Code::kUnavailable);
  EXPECT_TRUE(ValidateContainerId("my-ctr_1.2+x").ok());
  for (const char* bad : {"", ".", "..", "a/b", "a b", "x\n", "--help"}) {
    EXPECT_EQ(ValidateContainerId(bad).code(), Code::kInvalidArgument) << bad;
  }
}

TEST_F(RuncDriverTest, StateOfUnknownAndBadIds) {
  EXPECT_EQ(driver_.State(root_.string(), "nope").status().code(), Code::kNotFound);
  EXPECT_EQ(driver_.State(root_.string(), "../x").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(driver_.State("relative/root", "x").status().code(), Code::kInvalidArgument);
}

TEST_F(RuncDriverTest, StateOfARunningContainer) {
  StartCounter(Id("c1"));
  auto s = driver_.State(root_.string(), Id("c1"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->status, "running");
  EXPECT_GT(s->pid, 0);
  EXPECT_EQ(fs::path(s->bundle), bundle_);
  EXPECT_EQ(fs::path(s->rootfs), bundle_ / "rootfs");
}

// Checkpoint ends the container; restored under a new id it counts on from
// where it stopped, with the file it wrote in its rootfs, and (given pipes)
// it can be checkpointed again.
TEST_F(RuncDriverTest, CheckpointThenRestoreUnderANewIdContinues) {
  StartCounter(Id("c1"));
  int runc_pid = 0;
  CheckpointArgs a = Args(Id("c1"), "img");
  a.on_started = [&](int pid) { runc_pid = pid; };
  Status st = driver_.Checkpoint(a);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_GT(runc_pid, 0);
  EXPECT_EQ(driver_.State(root_.string(), Id("c1")).status().code(), Code::kNotFound);
  long stopped_at = ReadCount(count());
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(ReadCount(count()), stopped_at) << "the checkpointed container still counts";

  auto r = driver_.Restore(Restore(Id("c2"), "img"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, "running");
  EXPECT_GT(r->pid, 0);
  ASSERT_TRUE(CountsPast(count(), stopped_at + 3));
  // Counting on from memory: a fresh start would have begun at 1.
  EXPECT_GT(ReadCount(count()), stopped_at);
  EXPECT_EQ(ckptd::testing::ReadFileText((bundle_ / "rootfs/tmp/marker").string()), "written-before\n");

  CheckpointArgs again = Args(Id("c2"), "img2");
  again.leave_running = true;
  st = driver_.Checkpoint(again);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(containers_.Status(Id("c2")), "running");
}

TEST_F(RuncDriverTest, LeaveRunningKeepsCounting) {
  StartCounter(Id("c1"));
  CheckpointArgs a = Args(Id("c1"), "img");
  a.leave_running = true;
  Status st = driver_.Checkpoint(a);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(containers_.Status(Id("c1")), "running");
  long now = ReadCount(count());
  EXPECT_TRUE(CountsPast(count(), now + 2));
  EXPECT_TRUE(fs::exists(dir_.path() / "img/inventory.img"));
  EXPECT_TRUE(fs::exists(dir_.path() / "img/descriptors.json"));
}

// A checkpoint that fails after CRIU froze the container (a stdio that is a
// host file cannot be dumped) leaves it running and counting.
TEST_F(RuncDriverTest, FailureHalfwayLeavesItRunning) {
  TempDir logs("ckptd-runc-log");
  std::string out = logs.File("out");
  ckptd::testing::RunCommand(ckptd::testing::RuncPath() + " --root " + root_.string() + " run --detach --bundle " +
                             bundle_.string() + " " + Id("hostfile") + " </dev/null >" + out + " 2>&1");
  containers_.Track(Id("hostfile"));
  ASSERT_TRUE(CountsPast(count(), 2));
  Status st = driver_.Checkpoint(Args(Id("hostfile"), "img"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kIOError);
  EXPECT_NE(st.message().find("criu log"), std::string::npos) << st.message();
  EXPECT_EQ(containers_.Status(Id("hostfile")), "running");
  long now = ReadCount(count());
  EXPECT_TRUE(CountsPast(count(), now + 2)) << "not running after the failed checkpoint";
}

// A container paused when a checkpoint fails is resumed: runc and CRIU
// freeze through its cgroup, and a killed CRIU would leave it frozen.
TEST_F(RuncDriverTest, FailedCheckpointNeverLeavesItPaused) {
  StartCounter(Id("c1"));
  ASSERT_EQ(containers_.Runc("pause " + Id("c1")), 0);
  ASSERT_EQ(containers_.Status(Id("c1")), "paused");
  CheckpointArgs a = Args(Id("c1"), "img");
  a.extra_args = {"--no-such-option"};
  Status st = driver_.Checkpoint(a);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(containers_.Status(Id("c1")), "running");
  long now = ReadCount(count());
  EXPECT_TRUE(CountsPast(count(), now + 2));
}

// A checkpoint's deadline that passes while CRIU has seized the container's
// tree (its parasite drains the pages from inside) waits until CRIU lets
// go: killed there, CRIU would leave the processes broken. Deadlines spread
// over the dump of a 600 MiB container (leave_running, so each attempt
// leaves it running whether it completes or is stopped): it runs on after
// each, and some deadlines were held.
TEST_F(RuncDriverTest, DeadlineNeverStopsCriuInsideTheContainer) {
  ckptd::testing::BundleSpec spec = ckptd::testing::CounterSpec(data_.string());
  spec.args[2] = "x=$(head -c 629145600 /dev/zero | tr '\\000' a); " + spec.args[2];
  const fs::path big = dir_.Sub("big-bundle");
  ckptd::testing::MakeBundle(big, spec);
  const std::string id = Id("big");
  containers_.Run(id, big);
  ASSERT_TRUE(CountsPast(count(), 2, 60s)) << "the container does not count";
  auto state = driver_.State(root_.string(), id);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  int held = 0;
  for (auto deadline : {200ms, 350ms, 500ms, 700ms, 1000ms, 1400ms}) {
    CheckpointArgs a = Args(id, "img-" + std::to_string(deadline.count()));
    a.leave_running = true;
    a.init_pid = state->pid;
    a.deadline = deadline;
    const auto start = std::chrono::steady_clock::now();
    Status st = driver_.Checkpoint(a);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    std::printf("deadline %lld ms: %s after %lld ms\n", static_cast<long long>(deadline.count()),
                st.ok() ? "done" : st.ToString().c_str(), static_cast<long long>(took.count()));
    EXPECT_TRUE(st.ok() || st.code() == Code::kDeadlineExceeded) << st.ToString();
    if (took > deadline + 150ms) ++held;  // signalled at most 100 ms past it otherwise
    ASSERT_EQ(containers_.Status(id), "running") << "after the deadline of " << deadline.count() << " ms";
    const long now = ReadCount(count());
    ASSERT_TRUE(CountsPast(count(), now + 2)) << "it stopped counting after the deadline of " << deadline.count()
                                              << " ms";
  }
  EXPECT_GT(held, 0) << "no deadline passed while CRIU held the tree: the dump is too short to test it";
}

TEST_F(RuncDriverTest, RemoveKillsAndToleratesUnknown) {
  StartCounter(Id("c1"));
  Status removed = driver_.Remove(root_.string(), Id("c1"));
  EXPECT_TRUE(removed.ok()) << removed.ToString();
  EXPECT_EQ(containers_.Status(Id("c1")), "");
  removed = driver_.Remove(root_.string(), "never-was");
  EXPECT_TRUE(removed.ok()) << removed.ToString();
}

}  // namespace
}  // namespace ckptd::runc

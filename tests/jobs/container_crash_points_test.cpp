// The crash-point matrix for container jobs: the real ckptd binary is made
// to _exit at a named instant of a container checkpoint (runc checkpoint)
// or restore (runc restore), then restarted on the same data directory.
// runc outlives the daemon (it is not killed with it), so recovery must
// settle whatever runc did meanwhile. After the restart:
// - the container runs, not paused, and counts, or it was meant to end
//   (leave_running false) and its checkpoint is ready;
// - no catalog record and no job is left unfinished;
// - every ready checkpoint restores as a new container that counts on;
// - a half-restored container is gone;
// - after POST /v2/cleanup nothing is left in staging.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "common/crash_point.h"
#include "tests/testing/daemon_process.h"
#include "tests/testing/runc_fixture.h"
#include "tests/testing/test_util.h"

namespace ckptd {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
namespace tt = ckptd::testing;
using namespace std::chrono_literals;

enum class Variant {
  kStop,      // leave_running false
  kRun,       // leave_running true
  kRollback,  // leave_running false, the upload fails: the daemon restores the container from staging
  kRestore,   // a restore job as a new container
};

struct Case {
  Variant variant;
  const char* point;
};

const char* Name(Variant v) {
  switch (v) {
    case Variant::kStop:
      return "stop";
    case Variant::kRun:
      return "run";
    case Variant::kRollback:
      return "rollback";
    case Variant::kRestore:
      return "restore";
  }
  return "?";
}

void PrintTo(const Case& c, std::ostream* os) { *os << "container " << Name(c.variant) << " crashing at " << c.point; }

std::vector<Case> Cases() {
  std::vector<Case> out;
  for (Variant v : {Variant::kStop, Variant::kRun})
    for (const char* p : {"create:after", "describe:after", "dump:before", "dump:container-paused", "dump:criu-started",
                          "dump:images-written", "dump:after", "upload:after", "manifest:after", "ready:before",
                          "ready:after"})
      out.push_back({v, p});
  for (const char* p : {"rollback:before", "rollback:criu-started", "rollback:root-known", "rollback:after"})
    out.push_back({Variant::kRollback, p});
  for (const char* p : {"download:after", "criu-restore:before", "criu-restore:criu-started", "criu-restore:after"})
    out.push_back({Variant::kRestore, p});
  return out;
}

// Points after which the checkpoint must be ready: the job had concluded,
// or runc had ended the container with every image written.
bool ExpectReady(const Case& c) {
  const std::string p = c.point;
  if (c.variant == Variant::kRestore) return false;
  // A crash in the rollback: recovery finishes the upload from staging.
  if (c.variant == Variant::kRollback) return true;
  if (p == "ready:after") return true;
  if (c.variant != Variant::kStop) return false;
  return p == "dump:images-written" || p == "dump:after" || p.starts_with("upload:") || p.starts_with("manifest:") ||
         p.starts_with("ready:");
}

class ContainerCrashPointTest : public ::testing::TestWithParam<Case> {
 protected:
  ContainerCrashPointTest()
      : dir_("ckptd-ctr-crash"), root_(dir_.Sub("runc-root")), data_(dir_.Sub("data")), containers_(root_) {}

  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "runc and CRIU need root";
    tt::MakeBundle(Bundle("b1"), tt::CounterSpec(data_.string()));
  }
  void TearDown() override { daemon_ = tt::DaemonChild(); }

  Variant variant() const { return GetParam().variant; }
  std::string Id(const std::string& name) const { return tt::UniqueId(dir_.path(), name); }
  fs::path Bundle(const std::string& name) const { return dir_.path() / name; }
  json::object Target(const std::string& id) const {
    return json::object{{"id", id}, {"runtime_root", root_.string()}};
  }

  void StartDaemon(const std::string& crash_at = "", const std::string& fail_at = "") {
    tt::DaemonChild::Options o;
    o.args = {"--log-level", "info"};
    if (!crash_at.empty()) o.env.push_back("CKPTD_CRASH_AT=" + crash_at);
    if (!fail_at.empty()) o.env.push_back("CKPTD_FAIL_AT=" + fail_at);
    o.log = dir_.File("ckptd-" + std::to_string(++starts_) + ".log");
    o.timeout = 60s;
    ASSERT_GE(daemon_.Start(dir_.File("state"), o), 0) << tt::ReadFileText(o.log);
  }
  std::string Log() { return daemon_.process() ? daemon_.process()->Log() : ""; }
  json::value Call(const std::string& method, const std::string& target, const json::object& body = {},
                   int* status = nullptr) {
    return daemon_.Call(method, target, body, status);
  }
  json::object Job(const std::string& route, json::object body) {
    body["wait"] = true;
    int status = 0;
    json::value v = Call("POST", route, body, &status);
    EXPECT_EQ(status, 200) << json::serialize(v);
    return v.is_object() ? v.as_object() : json::object{};
  }
  json::object Restore(const std::string& checkpoint_id, const std::string& id) {
    tt::MakeBundle(Bundle(id), tt::CounterSpec(data_.string()));
    containers_.Track(Id(id));
    json::object c{{"id", Id(id)}, {"runtime_root", root_.string()}, {"bundle", Bundle(id).string()}};
    return Job("/v2/jobs/restore", {{"checkpoint_id", checkpoint_id}, {"container", c}});
  }

  void CrashDuringJob() {
    const Case& c = GetParam();
    if (variant() == Variant::kRestore) {
      StartDaemon();
      json::object job = Job("/v2/jobs/checkpoint", {{"container", Target(Id("c1"))}});
      ASSERT_EQ(job.at("state"), "succeeded") << json::serialize(job);
      restore_of_ = std::string(job.at("checkpoint_id").as_string());
      tt::MakeBundle(Bundle("r1"), tt::CounterSpec(data_.string()));
      containers_.Track(Id("r1"));
    }
    StartDaemon(c.point, variant() == Variant::kRollback ? "upload:before" : "");
    if (variant() == Variant::kRestore) {
      json::object ctr{{"id", Id("r1")}, {"runtime_root", root_.string()}, {"bundle", Bundle("r1").string()}};
      Call("POST", "/v2/jobs/restore", {{"checkpoint_id", restore_of_}, {"container", ctr}});
    } else {
      Call("POST", "/v2/jobs/checkpoint",
           {{"container", Target(Id("c1"))}, {"leave_running", variant() == Variant::kRun}});
    }
    auto rc = daemon_.process()->Wait(120s);
    ASSERT_TRUE(rc.has_value()) << "crash point " << c.point << " not reached\n" << Log();
    ASSERT_EQ(*rc, kCrashExitCode) << Log();
  }

  json::array Checkpoints() {
    json::value v = Call("GET", "/v2/checkpoints");
    return v.is_array() ? v.as_array() : json::array{};
  }

  void ExpectNothingUnfinished() {
    for (const auto& c : Checkpoints()) {
      std::string s(c.at("status").as_string());
      EXPECT_TRUE(s == "ready" || s == "deprecated") << json::serialize(c);
    }
    json::value v = Call("GET", "/v2/jobs?limit=100");
    for (const auto& j : v.at("jobs").as_array()) {
      std::string s(j.at("state").as_string());
      EXPECT_TRUE(s == "succeeded" || s == "failed") << json::serialize(j);
    }
  }

  void ExpectCounting(const std::string& what) {
    long n = tt::ReadCount(data_ / "count");
    EXPECT_TRUE(tt::CountsPast(data_ / "count", n + 3)) << what << ": the counter does not advance\n" << Log();
  }

  tt::TempDir dir_;
  fs::path root_, data_;
  tt::RuncContainers containers_;
  tt::DaemonChild daemon_;
  int starts_ = 0;
  std::string restore_of_;
};

TEST_P(ContainerCrashPointTest, RestartLeavesEverythingWhole) {
  containers_.Run(Id("c1"), Bundle("b1"));
  ASSERT_TRUE(tt::CountsPast(data_ / "count", 3));
  CrashDuringJob();
  if (HasFatalFailure()) return;
  StartDaemon();
  if (HasFatalFailure()) return;
  ExpectNothingUnfinished();
  bool ready = false;
  for (const auto& c : Checkpoints())
    if (c.at("status") == "ready" && c.at("id").as_string() != restore_of_) ready = true;
  // runc may finish a dump the crash left it in (dump:criu-started).
  if (std::string(GetParam().point) != "dump:criu-started") {
    EXPECT_EQ(ready, ExpectReady(GetParam())) << Log();
  }

  const std::string original = containers_.Status(Id("c1"));
  const std::string restored = containers_.Status(Id("r1"));
  EXPECT_NE(original, "paused") << Log();
  if (variant() == Variant::kRestore) {
    // The journal never recorded the restore as done (criu-restore:after
    // is before its outcome is written): the container is removed.
    EXPECT_EQ(restored, "") << "a half-restored container is left\n" << Log();
  } else if (original == "running") {
    EXPECT_NE(variant(), Variant::kRollback) << "the rolled-back container should have been ended for the upload";
    ExpectCounting("after recovery");
  } else {
    EXPECT_EQ(original, "") << "the ended container is left in runc's state\n" << Log();
    EXPECT_NE(variant(), Variant::kRun) << "a leave-running container is gone\n" << Log();
    EXPECT_TRUE(ready) << "the container was lost: not running, no ready checkpoint\n" << Log();
  }
  // Every ready checkpoint restores as a new container that counts on.
  int n = 0;
  for (const auto& c : Checkpoints()) {
    if (c.at("status") != "ready") continue;
    for (const char* id : {"c1", "r1"}) containers_.Runc("delete --force " + Id(id) + " 2>/dev/null");
    json::object job = Restore(std::string(c.at("id").as_string()), "again" + std::to_string(++n));
    ASSERT_EQ(job.at("state"), "succeeded") << json::serialize(job) << "\n" << Log();
    ExpectCounting("restored from " + std::string(c.at("id").as_string()));
  }
  int status = 0;
  Call("POST", "/v2/cleanup", {}, &status);
  EXPECT_EQ(status, 200);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_.File("state/staging"), ec))
    ADD_FAILURE() << "left in staging: " << e.path();
}

INSTANTIATE_TEST_SUITE_P(Matrix, ContainerCrashPointTest, ::testing::ValuesIn(Cases()), [](const auto& tp) {
  std::string name = std::string(Name(tp.param.variant)) + "_" + tp.param.point;
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
});

}  // namespace
}  // namespace ckptd

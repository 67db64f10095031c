// The crash-point matrix: the real ckptd binary is made to _exit at a named
// instant of a checkpoint or restore job (CKPTD_CRASH_AT, common/
// crash_point.h), then restarted on the same data directory; what its
// start-up recovery leaves must be whole:
// - the workload runs (its counter advances, no task stopped or traced), or
//   it was meant to end (leave_running false) and its checkpoint is ready
//   or it was restored from staging;
// - every fake-GPU process that lives is "running";
// - no catalog record and no job is left unfinished;
// - every ready checkpoint restores and the workload continues from it;
// - after POST /v2/cleanup nothing is left under images/ for deprecated
//   checkpoints, no partial upload anywhere, nothing in staging.
// Variants: leave_running false/true, the page server on/off, backpressure
// (CRIU paused by the streamer), the fake GPU with leave_running true/false,
// a failed upload's rollback, a recovery whose upload fails too, restores.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "common/crash_point.h"
#include "common/proc.h"
#include "tests/testing/criu_test_util.h"
#include "tests/testing/daemon_process.h"
#include "tests/testing/test_util.h"

namespace ckptd {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
namespace ct = ckptd::criu::testing;
using namespace std::chrono_literals;

const std::string kFakeLib = CKPTD_BINARY_DIR "/tests/fake_cuda/libcuda.so.1";

enum class Variant {
  kStop,          // leave_running false
  kLinked,        // leave_running false, compression none: images linked from staging into the store
  kRun,           // leave_running true, staging files
  kPageServer,    // leave_running true, pages over CRIU's page-server socket
  kBackpressure,  // leave_running true, a small staging backlog: CRIU gets paused
  kGpuRun,        // fake GPU, leave_running true
  kGpuStop,       // fake GPU, leave_running false
  kRollback,      // leave_running false, the upload fails: the daemon rolls back from staging
  kNoUpload,      // leave_running false; after the crash the upload fails too: recovery rolls back
  kRestore,       // a restore job
  kGpuRestore,    // a restore job of a fake-GPU checkpoint
};

struct Case {
  Variant variant;
  const char* point;
};

const char* Name(Variant v) {
  switch (v) {
    case Variant::kStop: return "stop";
    case Variant::kLinked: return "linked";
    case Variant::kRun: return "run";
    case Variant::kPageServer: return "pageserver";
    case Variant::kBackpressure: return "backpressure";
    case Variant::kGpuRun: return "gpu_run";
    case Variant::kGpuStop: return "gpu_stop";
    case Variant::kRollback: return "rollback";
    case Variant::kNoUpload: return "noupload";
    case Variant::kRestore: return "restore";
    case Variant::kGpuRestore: return "gpu_restore";
  }
  return "?";
}

void PrintTo(const Case& c, std::ostream* os) { *os << Name(c.variant) << " crashing at " << c.point; }

bool Gpu(Variant v) { return v == Variant::kGpuRun || v == Variant::kGpuStop || v == Variant::kGpuRestore; }
bool IsRestore(Variant v) { return v == Variant::kRestore || v == Variant::kGpuRestore; }
bool LeaveRunning(Variant v) {
  return v == Variant::kRun || v == Variant::kPageServer || v == Variant::kBackpressure || v == Variant::kGpuRun;
}

// Whether the restart should find a ready checkpoint: the job had reached
// ready, or CRIU had written every image of a dump that ends the tree, so
// recovery finishes the upload from staging.
bool ExpectReady(const Case& c) {
  const std::string p = c.point;
  if (IsRestore(c.variant) || c.variant == Variant::kNoUpload) return false;
  if (p == "ready:after") return true;
  if (LeaveRunning(c.variant)) return false;
  return p == "dump:images-written" || p == "dump:after" || p.starts_with("upload:") || p.starts_with("manifest:") ||
         p.starts_with("ready:") || p.starts_with("rollback:");
}

std::vector<Case> Cases() {
  const std::vector<const char*> common = {"create:after",      "describe:before",   "describe:after",
                                           "dump:before",       "dump:criu-started", "dump:images-written",
                                           "dump:after",        "upload:before",     "upload:after",
                                           "manifest:before",   "manifest:after",    "ready:before",
                                           "ready:after"};
  const std::vector<const char*> gpu = {"gpu-lock:before", "gpu-lock:after", "gpu-checkpoint:before",
                                        "gpu-checkpoint:after"};
  std::vector<Case> out;
  for (Variant v : {Variant::kStop, Variant::kRun, Variant::kPageServer, Variant::kGpuRun, Variant::kGpuStop})
    for (const char* p : common) out.push_back({v, p});
  for (Variant v : {Variant::kGpuRun, Variant::kGpuStop})
    for (const char* p : gpu) out.push_back({v, p});
  out.push_back({Variant::kGpuRun, "gpu-resume:before"});
  out.push_back({Variant::kGpuRun, "gpu-resume:after"});
  for (const char* p : {"dump:criu-started", "dump:criu-paused", "dump:after", "upload:before"})
    out.push_back({Variant::kBackpressure, p});
  for (const char* p : {"rollback:before", "rollback:criu-started", "rollback:root-known", "rollback:after"})
    out.push_back({Variant::kRollback, p});
  for (const char* p : {"dump:images-written", "dump:after", "upload:before"}) out.push_back({Variant::kNoUpload, p});
  // A link leaves the staging name: recovery uploads from staging as ever.
  for (const char* p : {"upload:image-linked", "upload:after"}) out.push_back({Variant::kLinked, p});
  for (const char* p : {"read-manifest:before", "download:before", "download:after", "criu-restore:before",
                        "criu-restore:criu-started", "criu-restore:root-known", "criu-restore:after"})
    out.push_back({Variant::kRestore, p});
  for (const char* p : {"criu-restore:after", "gpu-restore:before", "gpu-restore:after"})
    out.push_back({Variant::kGpuRestore, p});
  return out;
}

class CrashPointTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "CRIU needs root";
    fs::create_directories(gpu_state_);
    setenv("CKPTD_FAKE_CUDA_STATE_DIR", gpu_state_.c_str(), 1);
  }
  void TearDown() override {
    daemon_ = testing::DaemonChild();
    for (pid_t p : cleanup_) ct::KillTree(p);
    // Whatever the tests restored lives on with the pids of the workload.
    if (pid_ > 0) ct::KillTree(pid_);
    for (auto& t : reapers_) t.join();
  }

  Variant variant() const { return GetParam().variant; }

  // The real daemon on dir_, with `crash_at` / `fail_at` armed.
  void StartDaemon(const std::string& crash_at = "", const std::string& fail_at = "") {
    testing::DaemonChild::Options o;
    o.args = {"--log-level", "info", "--page-server", variant() == Variant::kPageServer ? "true" : "false"};
    if (variant() == Variant::kBackpressure) o.args.insert(o.args.end(), {"--staging-backlog-bytes", "4194304"});
    if (Gpu(variant())) o.args.insert(o.args.end(), {"--cuda-library", kFakeLib});
    o.env.push_back("CKPTD_FAKE_CUDA_STATE_DIR=" + gpu_state_.string());
    if (!crash_at.empty()) o.env.push_back("CKPTD_CRASH_AT=" + crash_at);
    if (!fail_at.empty()) o.env.push_back("CKPTD_FAIL_AT=" + fail_at);
    o.log = dir_.File("ckptd-" + std::to_string(++starts_) + ".log");
    o.timeout = 60s;
    ASSERT_GE(daemon_.Start(dir_.path(), o), 0) << testing::ReadFileText(o.log);
  }
  json::value Call(const std::string& method, const std::string& target, const json::object& body = {},
                   int* status = nullptr) {
    return daemon_.Call(method, target, body, status);
  }
  std::string Log() { return daemon_.process() ? daemon_.process()->Log() : ""; }

  // The workload: a counter (memory for backpressure), a fake GPU user in
  // the GPU variants. Reaped by a thread of ours as soon as it ends, so a
  // restore to its pid never waits on our zombie.
  void StartWorkload() {
    std::vector<std::string> extra;
    std::string mode = "counter";
    if (variant() == Variant::kBackpressure) {
      mode = "memory";
      extra = {"--mib", "64", "--interval-ms", "20"};
    }
    if (Gpu(variant())) extra.insert(extra.end(), {"--gpu-lib", kFakeLib});
    pid_ = ct::StartWorkload(mode, out_, extra);
    ASSERT_GT(pid_, 0);
    pid_t pid = pid_;
    reapers_.emplace_back([pid] { waitpid(pid, nullptr, 0); });
    ASSERT_TRUE(ct::WaitProgress(out_, 3, 60s));
    if (Gpu(variant())) {
      ASSERT_EQ(GpuState(pid_), "running");
    }
  }
  static constexpr const char* kGpuA = "GPU-aaaaaaaa-0000-4000-8000-00000000000a";
  static constexpr const char* kGpuB = "GPU-bbbbbbbb-0000-4000-8000-00000000000b";
  void SetGpus(const std::string& uuid) const { std::ofstream(gpu_state_ / "devices") << uuid << " Fake H200\n"; }
  std::string GpuStateFile(int pid) const {
    std::ifstream in(gpu_state_ / (std::to_string(pid) + ".state"));
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::string GpuState(int pid) const {
    std::ifstream in(gpu_state_ / (std::to_string(pid) + ".state"));
    std::string word;
    std::getline(in, word);
    return word;
  }

  // A finished job (wait=true).
  json::object Job(const std::string& route, json::object body) {
    body["wait"] = true;
    int status = 0;
    json::value v = Call("POST", route, body, &status);
    EXPECT_EQ(status, 200) << json::serialize(v);
    return v.is_object() ? v.as_object() : json::object{};
  }

  // Submits the job the case is about and waits for the daemon to crash
  // at the point.
  void CrashDuringJob() {
    const Case& c = GetParam();
    if (IsRestore(variant())) {
      // A good checkpoint first, from a daemon without crash points.
      SetGpus(kGpuA);
      StartDaemon();
      json::object job = Job("/v2/jobs/checkpoint", {{"pid", pid_}});
      ASSERT_EQ(job.at("state"), "succeeded") << json::serialize(job);
      restore_of_ = std::string(job.at("checkpoint_id").as_string());
      ASSERT_TRUE(WaitDead(pid_));
      // Restored on a node with another GPU of the model: an automatic
      // device map, which a recovery must use too.
      SetGpus(kGpuB);
    }
    StartDaemon(c.point, variant() == Variant::kRollback ? "upload:before" : "");
    int status = 0;
    if (IsRestore(variant())) {
      Call("POST", "/v2/jobs/restore", {{"checkpoint_id", restore_of_}}, &status);
    } else {
      json::object req = {{"pid", pid_}, {"leave_running", LeaveRunning(variant())}};
      if (variant() == Variant::kLinked) req["compression"] = "none";
      Call("POST", "/v2/jobs/checkpoint", req, &status);
    }
    auto rc = daemon_.process()->Wait(120s);
    ASSERT_TRUE(rc.has_value()) << "crash point " << c.point << " not reached\n" << Log();
    ASSERT_EQ(*rc, kCrashExitCode) << Log();
    at_crash_ = ct::ReadProgress(out_).n;
  }

  // Gone, or a zombie (reaped when it is ours: a restore needs its pid).
  bool WaitDead(pid_t pid) {
    for (int i = 0; i < 500; ++i) {
      char st = ProcState(pid);
      if (st == 'Z') waitpid(pid, nullptr, WNOHANG);
      if (st == 0 || (st == 'Z' && ProcState(pid) == 'Z' && i > 50)) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  // The workload's counter advances and no task of its tree is stopped or
  // traced.
  void ExpectRunning(pid_t pid, const std::string& what) {
    ASSERT_GT(ProcState(pid), 0) << what << ": pid " << pid << " is gone";
    for (int p : TreePids(pid)) EXPECT_FALSE(IsHeld(p)) << what << ": pid " << p << " is stopped or traced";
    uint64_t n = ct::ReadProgress(out_).n;
    EXPECT_TRUE(ct::WaitProgress(out_, n + 3, 30s)) << what << ": the counter does not advance";
    EXPECT_TRUE(ct::ReadProgress(out_).ok) << what;
  }

  json::array Checkpoints() {
    json::value v = Call("GET", "/v2/checkpoints");
    return v.is_array() ? v.as_array() : json::array{};
  }
  json::array Jobs() {
    json::value v = Call("GET", "/v2/jobs?limit=100");
    return v.is_object() ? v.at("jobs").as_array() : json::array{};
  }

  void ExpectNothingUnfinished() {
    for (const auto& c : Checkpoints()) {
      std::string s(c.at("status").as_string());
      EXPECT_TRUE(s == "ready" || s == "deprecated") << json::serialize(c);
    }
    for (const auto& j : Jobs()) {
      std::string s(j.at("state").as_string());
      EXPECT_TRUE(s == "succeeded" || s == "failed") << json::serialize(j);
    }
  }

  // A restore that recovery failed after CRIU had started keeps CRIU's
  // logs: GET /v2/jobs/{id}/log serves them.
  void ExpectFailedRestoreKeptItsLog() {
    const std::string point = GetParam().point;
    if (!IsRestore(variant()) || (point != "criu-restore:criu-started" && point != "criu-restore:root-known")) return;
    // Once CRIU has its request (root-known), its own log exists; just
    // spawned, only its stderr file does.
    const std::string kept = point == "criu-restore:root-known" ? "==> restore.log <==" : "==> restore.log";
    int restores = 0;
    for (const auto& j : Jobs()) {
      const json::object& o = j.as_object();
      if (o.at("kind") != "restore") continue;
      ++restores;
      EXPECT_EQ(o.at("state"), "failed") << json::serialize(o);
      auto log = daemon_.client()->Send("GET", "/v2/jobs/" + std::string(o.at("id").as_string()) + "/log");
      ASSERT_TRUE(log.ok()) << log.status().ToString();
      EXPECT_EQ(log->status, 200) << log->body;
      EXPECT_NE(log->body.find(kept), std::string::npos) << log->body;
    }
    EXPECT_EQ(restores, 1) << "the restore job is not listed";
  }

  void ExpectGpuRunning() {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(gpu_state_, ec)) {
      if (e.path().extension() != ".state") continue;
      int pid = std::stoi(e.path().stem().string());
      char st = ProcState(pid);
      if (st == 0 || st == 'Z') continue;
      EXPECT_EQ(GpuState(pid), "running") << "GPU process " << pid;
    }
  }

  // Every ready checkpoint restores and the workload goes on from it.
  void ExpectReadyCheckpointsRestore() {
    for (const auto& c : Checkpoints()) {
      if (c.at("status") != "ready") continue;
      std::string id(c.at("id").as_string());
      if (ProcState(pid_) != 0) {
        ct::KillTree(pid_);
        ASSERT_TRUE(WaitDead(pid_));
      }
      json::object job = Job("/v2/jobs/restore", {{"checkpoint_id", id}});
      ASSERT_EQ(job.at("state"), "succeeded") << json::serialize(job) << "\n" << Log();
      pid_t restored = static_cast<pid_t>(job.at("pid").as_int64());
      cleanup_.push_back(restored);
      ExpectRunning(restored, "restored from " + id);
      ExpectGpuRunning();
    }
  }

  void ExpectCleanedUp() {
    int status = 0;
    Call("POST", "/v2/cleanup", {}, &status);
    EXPECT_EQ(status, 200);
    for (const auto& c : Checkpoints()) {
      if (c.at("status") != "deprecated") continue;
      EXPECT_FALSE(fs::exists(dir_.File("images/") + std::string(c.at("id").as_string()))) << json::serialize(c);
    }
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(dir_.File("images"), ec))
      EXPECT_EQ(e.path().filename().string().find(".ckptd-tmp-"), std::string::npos) << e.path();
    for (const auto& e : fs::directory_iterator(dir_.File("staging"), ec)) ADD_FAILURE() << "left in staging: " << e.path();
  }

  testing::TempDir dir_;
  ct::TempDir work_;
  fs::path out_ = work_.path() / "progress";
  fs::path gpu_state_ = work_.path() / "fake-cuda";
  testing::DaemonChild daemon_;
  int starts_ = 0;
  pid_t pid_ = -1;
  uint64_t at_crash_ = 0;
  std::string restore_of_;
  std::vector<pid_t> cleanup_;
  std::vector<std::thread> reapers_;
};

TEST_P(CrashPointTest, RestartLeavesEverythingWhole) {
  StartWorkload();
  if (HasFatalFailure()) return;
  CrashDuringJob();
  if (HasFatalFailure()) return;
  // CRIU must not outlive the daemon that started it.
  std::this_thread::sleep_for(100ms);
  StartDaemon("", variant() == Variant::kNoUpload ? "upload:before" : "");
  if (HasFatalFailure()) return;
  ExpectNothingUnfinished();
  ExpectFailedRestoreKeptItsLog();
  ExpectGpuRunning();
  bool ready = false;
  for (const auto& c : Checkpoints()) {
    if (c.at("status") == "ready" && c.at("id").as_string() != restore_of_) ready = true;
  }
  EXPECT_EQ(ready, ExpectReady(GetParam())) << Log();
  // What recovery did is counted (a job that had concluded needs none).
  if (std::string(GetParam().point) != "ready:after") {
    json::value m = Call("GET", "/metrics");
    EXPECT_NE(m.is_string() ? std::string(m.as_string()).find("ckptd_recovery_actions_total{") : std::string::npos,
              std::string::npos);
  }
  if (ProcState(pid_) != 0 && ProcState(pid_) != 'Z') {
    // The original, a rollback or a completed restore: running, never held.
    ExpectRunning(pid_, "after recovery");
    EXPECT_GE(ct::ReadProgress(out_).n, at_crash_ > 50 ? at_crash_ - 50 : 0);
  } else {
    // Ended on purpose: then its checkpoint is ready.
    EXPECT_TRUE(!LeaveRunning(variant())) << "a leave-running workload is gone\n" << Log();
    EXPECT_TRUE(ready || IsRestore(variant())) << "the workload was lost: not running, no ready checkpoint\n"
                                               << Log();
  }
  if (variant() == Variant::kNoUpload) {
    EXPECT_FALSE(ready) << "the upload was made to fail";
    EXPECT_GT(ProcState(pid_), 0) << "recovery should have restored the workload from staging\n" << Log();
  }
  ExpectReadyCheckpointsRestore();
  if (variant() == Variant::kGpuRestore && ProcState(pid_) != 0) {
    // However the GPU restore came about (the job, recovery, a new job).
    EXPECT_NE(GpuStateFile(pid_).find(std::string("device_map=") + kGpuA + "=" + kGpuB), std::string::npos)
        << GpuStateFile(pid_);
  }
  ExpectCleanedUp();
}

INSTANTIATE_TEST_SUITE_P(Matrix, CrashPointTest, ::testing::ValuesIn(Cases()), [](const auto& tp) {
  std::string name = std::string(Name(tp.param.variant)) + "_" + tp.param.point;
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
});

}  // namespace
}  // namespace ckptd

// `ckptctl checkpoint` / `ckptctl restore` (the real binary) against an
// in-process daemon with the real CRIU and the counter workload, and with
// the real runc on a busybox container.
#include <unistd.h>

#include <filesystem>
#include <thread>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "common/subprocess.h"
#include "tests/testing/criu_test_util.h"
#include "tests/testing/daemon_fixture.h"
#include "tests/testing/runc_fixture.h"

namespace ckptd {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
namespace ct = ckptd::criu::testing;
namespace tt = ckptd::testing;

class CkptctlJobsTest : public testing::DaemonFixture {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "CRIU needs root";
    DaemonFixture::SetUp();
  }
  void TearDown() override {
    for (pid_t p : cleanup_) ct::KillTree(p);
    DaemonFixture::TearDown();
  }
  RunResult Ctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {std::string(CKPTD_BINARY_DIR) + "/ckptctl", "--url", BaseUrl()};
    argv.insert(argv.end(), args.begin(), args.end());
    RunOptions opts;
    opts.deadline = std::chrono::seconds(120);
    opts.env["CKPTD_TOKEN_FILE"] = dir_.File("token");
    auto r = SystemProcessRunner::Default()->Run(argv, opts);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : RunResult{};
  }
  ct::TempDir work_;
  std::vector<pid_t> cleanup_;
};

TEST_F(CkptctlJobsTest, CheckpointAndRestoreRoundTrip) {
  auto out = work_.path() / "counter";
  pid_t pid = ct::StartWorkload("counter", out);
  cleanup_.push_back(pid);
  ASSERT_TRUE(ct::WaitProgress(out, 5));

  // Leave running, human output (not a TTY: no progress line).
  auto lr = Ctl({"checkpoint", "--pid", std::to_string(pid), "--leave-running", "--compression", "lz4",
                 "--name", "ctl"});
  ASSERT_EQ(lr.exit_code, 0) << lr.out << lr.err;
  EXPECT_NE(lr.out.find("ready"), std::string::npos) << lr.out;
  EXPECT_NE(lr.out.find("restore_path: file://"), std::string::npos) << lr.out;
  EXPECT_EQ(lr.out.find('\r'), std::string::npos) << "progress line on a non-TTY";
  EXPECT_TRUE(ct::Alive(pid));

  // --json: the final job JSON.
  auto cj = Ctl({"checkpoint", "--pid", std::to_string(pid), "--json", "--gpu", "off", "--tcp-close", "--ghost-limit",
                 "4194304", "--manage-cgroups-mode", "soft", "--network-lock", "skip"});
  ASSERT_EQ(cj.exit_code, 0) << cj.out << cj.err;
  json::value job = json::parse(cj.out);
  EXPECT_EQ(job.at("state").as_string(), "succeeded");
  EXPECT_EQ(job.at("options").at("gpu").as_string(), "off");
  EXPECT_TRUE(job.at("options").at("tcp_close").as_bool());
  EXPECT_EQ(job.at("options").at("ghost_limit").as_int64(), 4194304);
  EXPECT_EQ(job.at("options").at("manage_cgroups_mode").as_string(), "soft");
  EXPECT_EQ(job.at("options").at("network_lock").as_string(), "skip");
  std::string id(job.at("checkpoint_id").as_string());
  std::string path(job.at("result").at("restore_path").as_string());
  EXPECT_TRUE(ct::ReapedOrGone(pid));
  uint64_t at_dump = ct::ReadProgress(out).n;

  auto rj = Ctl({"restore", id, "--json", "--manage-cgroups-mode", "ignore", "--network-lock", "nftables"});
  ASSERT_EQ(rj.exit_code, 0) << rj.out << rj.err;
  json::value r = json::parse(rj.out);
  EXPECT_EQ(r.at("state").as_string(), "succeeded");
  EXPECT_EQ(r.at("options").at("manage_cgroups_mode").as_string(), "ignore");
  EXPECT_EQ(r.at("options").at("network_lock").as_string(), "nftables");
  pid_t restored = static_cast<pid_t>(r.at("pid").as_int64());
  cleanup_.push_back(restored);
  EXPECT_TRUE(ct::WaitProgress(out, at_dump + 3));

  // Restore by path while it runs: pid taken -> the job fails, exit 1 with its error.
  auto clash = Ctl({"restore", path});
  EXPECT_EQ(clash.exit_code, 1) << clash.out << clash.err;
  EXPECT_NE(clash.err.find("failed"), std::string::npos) << clash.err;
  // ... and `ckptctl job log` shows CRIU's log of it.
  auto last = Client()->Send("GET", "/v2/jobs?limit=1");
  ASSERT_TRUE(last.ok());
  std::string clash_job(json::parse(last->body).at("jobs").at(0).at("id").as_string());
  auto log = Ctl({"job", "log", clash_job});
  EXPECT_EQ(log.exit_code, 0) << log.err;
  EXPECT_NE(log.out.find("==> restore.log <=="), std::string::npos) << log.out.substr(0, 400);
  auto rec = Ctl({"job", "get", clash_job});
  EXPECT_EQ(rec.exit_code, 0) << rec.err;
  EXPECT_EQ(json::parse(rec.out).at("state").as_string(), "failed") << rec.out;
  auto unknown = Ctl({"job", "log", "00000000-0000-4000-8000-000000000000"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown.err;
  EXPECT_NE(unknown.err.find("HTTP 404"), std::string::npos) << unknown.err;

  // Human output of a restore, after the restored tree is gone.
  ct::KillTree(restored);
  auto hr = Ctl({"restore", id});
  ASSERT_EQ(hr.exit_code, 0) << hr.out << hr.err;
  EXPECT_NE(hr.out.find("restored as pid " + std::to_string(pid)), std::string::npos) << hr.out;
}

// The container flags: checkpoint a runc container by id under a runtime
// root, restore it as a new container from a bundle of its own.
TEST_F(CkptctlJobsTest, ContainerCheckpointAndRestore) {
  const fs::path root = work_.path() / "runc-root", data = work_.path() / "data";
  fs::create_directories(root);
  fs::create_directories(data);
  tt::RuncContainers containers(root);
  const std::string c1 = tt::UniqueId(work_.path(), "c1"), c2 = tt::UniqueId(work_.path(), "c2");
  tt::MakeBundle(work_.path() / "b1", tt::CounterSpec(data.string()));
  containers.Run(c1, work_.path() / "b1");
  ASSERT_TRUE(tt::CountsPast(data / "count", 2));

  auto cp = Ctl({"checkpoint", "--container", c1, "--runtime-root", root.string(), "--json"});
  ASSERT_EQ(cp.exit_code, 0) << cp.out << cp.err;
  json::value job = json::parse(cp.out);
  ASSERT_EQ(job.at("state").as_string(), "succeeded") << cp.out;
  EXPECT_EQ(job.at("result").at("container").at("id").as_string(), c1);
  EXPECT_EQ(containers.Status(c1), "") << "the checkpoint (no --leave-running) ends the container";
  const long stopped_at = tt::ReadCount(data / "count");

  tt::MakeBundle(work_.path() / "b2", tt::CounterSpec(data.string()));
  containers.Track(c2);
  auto rs = Ctl({"restore", std::string(job.at("checkpoint_id").as_string()), "--container", c2, "--bundle",
                 (work_.path() / "b2").string(), "--runtime-root", root.string()});
  ASSERT_EQ(rs.exit_code, 0) << rs.out << rs.err;
  EXPECT_NE(rs.out.find("restored as container " + c2), std::string::npos) << rs.out;
  EXPECT_EQ(containers.Status(c2), "running");
  EXPECT_TRUE(tt::CountsPast(data / "count", stopped_at + 3)) << "the restored container does not count on";

  // An unknown container is the API's 404 (exit 1); --container needs --bundle on restore (exit 2).
  auto unknown = Ctl({"checkpoint", "--container", "no-such-container", "--runtime-root", root.string()});
  EXPECT_EQ(unknown.exit_code, 1) << unknown.out << unknown.err;
  EXPECT_NE(unknown.err.find("HTTP 404"), std::string::npos) << unknown.err;
  EXPECT_EQ(Ctl({"restore", "x", "--container", "y"}).exit_code, 2);
  EXPECT_EQ(Ctl({"checkpoint", "--pid", "5", "--container", "y"}).exit_code, 2);
}

TEST_F(CkptctlJobsTest, Errors) {
  // Unknown pid: the API answers 404; exit 1 with its message.
  auto gone = Ctl({"checkpoint", "--pid", "999999"});
  EXPECT_EQ(gone.exit_code, 1) << gone.out << gone.err;
  EXPECT_NE(gone.err.find("HTTP 404"), std::string::npos) << gone.err;
  // Usage errors exit 2.
  EXPECT_EQ(Ctl({"checkpoint"}).exit_code, 2);
  EXPECT_EQ(Ctl({"checkpoint", "--pid", "5", "--gpu", "maybe"}).exit_code, 2);
  EXPECT_EQ(Ctl({"restore", "x", "--device-map", "nonsense"}).exit_code, 2);
  EXPECT_EQ(Ctl({"checkpoint", "--pid", "5", "--manage-cgroups-mode", "hard"}).exit_code, 2);
  EXPECT_EQ(Ctl({"restore", "x", "--network-lock", "pf"}).exit_code, 2);
  EXPECT_EQ(Ctl({"restore", "x", "--inherit-fd", "no-equals-sign"}).exit_code, 2);
  // --no-wait prints the submitted ids.
  auto out = work_.path() / "counter";
  pid_t pid = ct::StartWorkload("counter", out);
  cleanup_.push_back(pid);
  ASSERT_TRUE(ct::WaitProgress(out, 3));
  auto nw = Ctl({"checkpoint", "--pid", std::to_string(pid), "--leave-running", "--no-wait", "--json"});
  ASSERT_EQ(nw.exit_code, 0) << nw.err;
  json::value sub = json::parse(nw.out);
  EXPECT_TRUE(sub.as_object().contains("job_id"));
  auto c = Client();
  auto w = c->Send("GET", "/v2/jobs/" + std::string(sub.at("job_id").as_string()));
  ASSERT_TRUE(w.ok());
  // Let it finish before teardown kills the workload.
  for (int i = 0; i < 300; ++i) {
    auto j = json::parse(c->Send("GET", "/v2/jobs/" + std::string(sub.at("job_id").as_string()))->body);
    if (j.at("state").as_string() != "queued" && j.at("state").as_string() != "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // A restore of an unknown checkpoint: 404, exit 1.
  auto nf = Ctl({"restore", "00000000-0000-4000-8000-000000000000"});
  EXPECT_EQ(nf.exit_code, 1) << nf.err;
}

}  // namespace
}  // namespace ckptd

// Container jobs through the HTTP API of in-process daemons, with the real
// runc (Debian's), ckptd's CRIU and busybox containers whose rootfs is an
// overlay over a base directory, as containerd's snapshotter mounts it.
// Needs root.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "tests/testing/criu_test_util.h"
#include "tests/testing/daemon_fixture.h"
#include "tests/testing/runc_fixture.h"
#include "tests/testing/test_util.h"

namespace ckptd {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
namespace tt = ckptd::testing;
using namespace std::chrono_literals;

class ContainerJobsTest : public tt::DaemonFixture {
 protected:
  ContainerJobsTest()
      : DaemonFixture(When::kByTest, "ckptd-ctr-test"),
        root_(dir_.Sub("runc-root")),
        data_(dir_.Sub("data")),
        base_(dir_.Sub("base")),
        containers_(root_) {}  // NOLINT: overlays_ needs no initializer

  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "runc and CRIU need root";
    tt::MakeRootfs(base_);
    StartDaemon();
  }

  // A bundle whose rootfs is an overlay over the base (its own upper dir),
  // with the counter's config unless `config` is false.
  fs::path OverlayBundle(const std::string& name, bool config = true) {
    fs::path bundle = dir_.Sub(name);
    overlays_.push_back(std::make_unique<tt::OverlayMount>(base_, dir_.Sub(name + "-upper"), dir_.Sub(name + "-work"),
                                                           bundle / "rootfs"));
    if (config) tt::WriteConfig(bundle, Spec(name));
    return bundle;
  }
  virtual tt::BundleSpec Spec(const std::string& /*bundle*/) { return tt::CounterSpec(data_.string()); }
  std::string Id(const std::string& name) const { return tt::UniqueId(dir_.path(), name); }
  json::object Target(const std::string& id) const {
    return json::object{{"id", id}, {"runtime_root", root_.string()}};
  }
  json::object NewContainer(const std::string& id, const fs::path& bundle) const {
    return json::object{{"id", id}, {"runtime_root", root_.string()}, {"bundle", bundle.string()}};
  }
  json::object CheckpointContainer(const std::string& id, json::object extra = {}) {
    extra["container"] = Target(id);
    extra["wait"] = true;
    auto r = Post("/v2/jobs/checkpoint", extra);
    EXPECT_EQ(r.status, 200) << json::serialize(r.body);
    return r.body.is_object() ? r.body.as_object() : json::object{};
  }
  fs::path count() const { return data_ / "count"; }

  fs::path root_, data_, base_;
  // Destroyed in reverse: the containers go before their rootfs mounts.
  std::vector<std::unique_ptr<tt::OverlayMount>> overlays_;
  tt::RuncContainers containers_;
};

// Checkpoint ends the container; restored from the restore path as a new
// container in a fresh bundle over the same base (no config.json there:
// the saved one is written), it counts on, with the file it wrote and
// without the file it deleted.
TEST_F(ContainerJobsTest, CheckpointThenRestoreAsANewContainer) {
  fs::path b1 = OverlayBundle("b1");
  containers_.Run(Id("c1"), b1);
  ASSERT_TRUE(tt::CountsPast(count(), 2));
  json::object job = CheckpointContainer(Id("c1"));
  ASSERT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
  const json::object& res = job.at("result").as_object();
  EXPECT_EQ(Str(res.at("container"), "id"), Id("c1"));
  EXPECT_EQ(Str(res.at("container"), "runtime"), "runc");
  EXPECT_FALSE(Str(res.at("container"), "runtime_version").empty());
  EXPECT_EQ(containers_.Status(Id("c1")), "") << "runc checkpoint without leave_running ends the container";
  long stopped_at = tt::ReadCount(count());
  json::object rec = GetCheckpoint(Str(job, "checkpoint_id"));
  EXPECT_EQ(Str(rec.at("info").at("container"), "bundle"), b1.string());

  fs::path b2 = OverlayBundle("b2", /*config=*/false);
  containers_.Track(Id("c2"));
  auto r =
      Post("/v2/jobs/restore",
           {{"restore_path", Str(res, "restore_path")}, {"container", NewContainer(Id("c2"), b2)}, {"wait", true}});
  ASSERT_EQ(r.status, 200) << json::serialize(r.body);
  ASSERT_EQ(Str(r.body, "state"), "succeeded") << json::serialize(r.body);
  const json::value& rc = r.body.at("result").at("container");
  EXPECT_EQ(Str(rc, "id"), Id("c2"));
  EXPECT_GT(rc.at("pid").as_int64(), 0);
  EXPECT_EQ(containers_.Status(Id("c2")), "running");
  ASSERT_TRUE(tt::CountsPast(count(), stopped_at + 3)) << "the restored container does not count on";
  EXPECT_EQ(tt::ReadFileText((b2 / "rootfs/tmp/marker").string()), "written-before\n");
  EXPECT_FALSE(fs::exists(b2 / "rootfs/etc/deleteme")) << "a whiteout was not applied";
  EXPECT_TRUE(fs::exists(b2 / "config.json"));
  EXPECT_TRUE(fs::exists(dir_.path() / "containers" / (Id("c2") + ".log")));

  // The restored container has pipes for its stdio: it can be checkpointed again.
  json::object again = CheckpointContainer(Id("c2"), {{"leave_running", true}});
  EXPECT_EQ(Str(again, "state"), "succeeded") << json::serialize(again);
  EXPECT_EQ(containers_.Status(Id("c2")), "running");
}

// A second daemon with its own data dir that never saw the checkpoint
// restores it from the restore path alone.
TEST_F(ContainerJobsTest, RestoreOnASecondDaemon) {
  fs::path b1 = OverlayBundle("b1");
  containers_.Run(Id("c1"), b1);
  ASSERT_TRUE(tt::CountsPast(count(), 2));
  json::object job = CheckpointContainer(Id("c1"));
  ASSERT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
  long stopped_at = tt::ReadCount(count());
  std::string path = Str(job.at("result"), "restore_path");

  tt::TempDir other("ckptd-ctr-node2");
  Config c2 = tt::TestConfig(other.path().string());
  c2.file_roots = daemon_->config().ImagesDir();
  tt::InProcessDaemon node2;
  ASSERT_TRUE(node2.Start(c2));
  fs::path b2 = OverlayBundle("b2");
  containers_.Track(Id("c2"));
  auto r = node2.Post("/v2/jobs/restore",
                      {{"restore_path", path}, {"container", NewContainer(Id("c2"), b2)}, {"wait", true}});
  ASSERT_EQ(r.status, 200) << json::serialize(r.body);
  ASSERT_EQ(Str(r.body, "state"), "succeeded") << json::serialize(r.body);
  EXPECT_TRUE(tt::CountsPast(count(), stopped_at + 3));
  EXPECT_EQ(tt::ReadFileText((b2 / "rootfs/tmp/marker").string()), "written-before\n");
}

TEST_F(ContainerJobsTest, LeaveRunningKeepsItCounting) {
  fs::path b1 = OverlayBundle("b1");
  containers_.Run(Id("c1"), b1);
  ASSERT_TRUE(tt::CountsPast(count(), 2));
  json::object job = CheckpointContainer(Id("c1"), {{"leave_running", true}});
  ASSERT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
  EXPECT_EQ(containers_.Status(Id("c1")), "running");
  long now = tt::ReadCount(count());
  EXPECT_TRUE(tt::CountsPast(count(), now + 3));
}

TEST_F(ContainerJobsTest, ErrorsHaveTheirCodes) {
  // Unknown container: 404; a bad id: 400; no bundle on restore: 400.
  EXPECT_EQ(Post("/v2/jobs/checkpoint", {{"container", Target("no-such")}}).status, 404);
  EXPECT_EQ(Post("/v2/jobs/checkpoint", {{"container", Target("../x")}}).status, 400);
  EXPECT_EQ(Post("/v2/jobs/checkpoint", {{"container", Target("x")}, {"pid", 42}}).status, 400);
  EXPECT_EQ(Post("/v2/jobs/checkpoint", {{"container", json::object{{"id", "x"}, {"runtime_root", "rel"}}}}).status,
            400);
  EXPECT_EQ(Post("/v2/jobs/checkpoint", {{"container", json::object{{"id", "x"}, {"nope", 1}}}}).status, 400);
  EXPECT_EQ(Post("/v2/jobs/restore", {{"restore_path", "file:///x/"}, {"container", Target("new")}}).status, 400);

  // Created but not started: 409, and it stays as it was.
  fs::path b1 = OverlayBundle("b1");
  containers_.Track(Id("made"));
  ASSERT_EQ(containers_.Runc("create --bundle " + b1.string() + " " + Id("made") + " </dev/null >/dev/null 2>&1"), 0);
  ASSERT_EQ(containers_.Status(Id("made")), "created");
  auto r = Post("/v2/jobs/checkpoint", {{"container", Target(Id("made"))}});
  EXPECT_EQ(r.status, 409) << json::serialize(r.body);
  EXPECT_EQ(containers_.Status(Id("made")), "created");

  // A restore into an id that is taken: 409.
  r = Post("/v2/jobs/restore", {{"restore_path", "file://" + daemon_->config().ImagesDir() + "/x/"},
                                {"container", NewContainer(Id("made"), b1)}});
  EXPECT_EQ(r.status, 409) << json::serialize(r.body);
}

TEST_F(ContainerJobsTest, RuncMissingIs503) {
  Config c = MakeConfig();
  c.runc_path = "/nonexistent/runc";
  Stop();
  ASSERT_TRUE(Start(c));
  auto r = Post("/v2/jobs/checkpoint", {{"container", Target("any")}});
  EXPECT_EQ(r.status, 503) << json::serialize(r.body);
  EXPECT_NE(json::serialize(r.body).find("/nonexistent/runc"), std::string::npos);
}

// runc checkpoint fails after CRIU froze the container (its stdout is a host
// file, which CRIU cannot dump): the job fails, the checkpoint is
// deprecated, the container runs on, not paused.
TEST_F(ContainerJobsTest, FailureHalfwayLeavesItRunning) {
  fs::path b1 = OverlayBundle("b1");
  containers_.Track(Id("hostfile"));
  ASSERT_EQ(containers_.Runc("run --detach --bundle " + b1.string() + " " + Id("hostfile") + " </dev/null >" +
                             dir_.File("out") + " 2>&1"),
            0);
  ASSERT_TRUE(tt::CountsPast(count(), 2));
  auto r = Post("/v2/jobs/checkpoint", {{"container", Target(Id("hostfile"))}, {"wait", true}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Str(r.body, "state"), "failed");
  EXPECT_NE(Str(r.body, "error").find("criu log"), std::string::npos) << Str(r.body, "error");
  json::object rec = GetCheckpoint(Str(r.body, "checkpoint_id"));
  EXPECT_EQ(Str(rec, "status"), "deprecated");
  EXPECT_EQ(containers_.Status(Id("hostfile")), "running");
  long now = tt::ReadCount(count());
  EXPECT_TRUE(tt::CountsPast(count(), now + 3));
}

// A container checkpoint is restored only as a container.
TEST_F(ContainerJobsTest, ContainerCheckpointNeedsAContainerRestore) {
  fs::path b1 = OverlayBundle("b1");
  containers_.Run(Id("c1"), b1);
  ASSERT_TRUE(tt::CountsPast(count(), 2));
  json::object job = CheckpointContainer(Id("c1"), {{"leave_running", true}});
  ASSERT_EQ(Str(job, "state"), "succeeded");
  json::object bare = Restore(Str(job, "checkpoint_id"));
  EXPECT_EQ(Str(bare, "state"), "failed");
  EXPECT_NE(Str(bare, "error").find("\"container\""), std::string::npos) << Str(bare, "error");
}

// A container whose init has child processes and a TCP connection on its
// own loopback (the listener's stdin never ends, or it would close): both
// come back (tcp_established).
class ContainerTcpTest : public ContainerJobsTest {
 protected:
  // Each bundle joins a namespace of its own, as each pod has.
  tt::BundleSpec Spec(const std::string& bundle) override {
    netns_.push_back(std::make_unique<tt::NetNs>(Id(bundle)));
    tt::BundleSpec s;
    s.netns = netns_.back()->path();
    s.args = {"/bin/sh", "-c",
              "(sleep 1000000 | nc -l -p 5000 > /data/received) & sleep 0.3; "
              "(i=0; while true; do i=$((i+1)); printf '%020d\\n' $i 1<>/data/count; "
              "echo $i; sleep 0.05; done) | nc 127.0.0.1 5000"};
    s.binds = {{data_.string(), "/data"}};
    return s;
  }
  std::vector<std::unique_ptr<tt::NetNs>> netns_;
};

TEST_F(ContainerTcpTest, ChildAndConnectionComeBack) {
  fs::path b1 = OverlayBundle("b1");
  containers_.Run(Id("c1"), b1);
  ASSERT_TRUE(tt::CountsPast(count(), 5));
  json::object job = CheckpointContainer(Id("c1"), {{"tcp_established", true}});
  ASSERT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
  long stopped_at = tt::ReadCount(count());
  auto received = fs::file_size(data_ / "received");
  fs::path b2 = OverlayBundle("b2");
  containers_.Track(Id("c2"));
  json::object back = Restore(Str(job, "checkpoint_id"), {{"container", NewContainer(Id("c2"), b2)}});
  ASSERT_EQ(Str(back, "state"), "succeeded") << json::serialize(back);
  EXPECT_TRUE(tt::CountsPast(count(), stopped_at + 5));
  // The restored connection still carries the count to the listener.
  auto end = std::chrono::steady_clock::now() + 5s;
  while (fs::file_size(data_ / "received") <= received + 10 && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(50ms);
  EXPECT_GT(fs::file_size(data_ / "received"), received + 10);
}

// A GPU process as a container's init: ckptd_workload with the fake
// driver mapped, the host's /usr and the build tree bind-mounted. The
// checkpoint locks and checkpoints it by its host pid; the restore, into a
// new container whose PID namespace gives it another host pid, must find
// it by its pid inside the container (the fake keeps its state under
// CKPTD_FAKE_CUDA_ID, as the real driver's follows the process).
class ContainerGpuTest : public ContainerJobsTest {
 protected:
  void SetUp() override {
    setenv("CKPTD_FAKE_CUDA_STATE_DIR", state_.c_str(), 1);
    unsetenv("CKPTD_FAKE_CUDA_INIT_ERROR");
    ContainerJobsTest::SetUp();
    // The host's libraries through its /usr (Debian's /lib and /lib64 are links into it).
    for (const char* l : {"lib", "lib64"}) fs::create_symlink(std::string("usr/") + l, base_ / l);
  }
  Config MakeConfig() override {
    Config c = ContainerJobsTest::MakeConfig();
    c.cuda_library = kFakeCudaLib;
    c.cuda_checkpoint_path = "";
    return c;
  }
  tt::BundleSpec Spec(const std::string& /*bundle*/) override {
    tt::BundleSpec s;
    s.args = {ckptd::criu::testing::WorkloadPath(), "counter", "--out", "/data/count", "--gpu-lib", kFakeCudaLib};
    s.binds = {{data_.string(), "/data"}, {"/usr", "/usr"}, {CKPTD_BINARY_DIR, CKPTD_BINARY_DIR}, {state_, state_}};
    s.env = {"CKPTD_FAKE_CUDA_STATE_DIR=" + state_, "CKPTD_FAKE_CUDA_ID=ctr-gpu"};
    return s;
  }
  std::string FakeState() const {
    std::string text = tt::ReadFileText(state_ + "/id-ctr-gpu.state");
    return text.substr(0, text.find('\n'));
  }
  static inline const std::string kFakeCudaLib = CKPTD_BINARY_DIR "/tests/fake_cuda/libcuda.so.1";
  const std::string state_ = dir_.Sub("fake-cuda").string();
};

TEST_F(ContainerGpuTest, GpuProcessComesBackUnderItsNewHostPid) {
  fs::path b1 = OverlayBundle("b1");
  containers_.Run(Id("c1"), b1);
  ASSERT_TRUE(tt::CountsPast(count(), 3));
  ASSERT_EQ(FakeState(), "running") << "the workload did not register with the fake driver";
  json::object job = CheckpointContainer(Id("c1"));
  ASSERT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
  const json::object& res = job.at("result").as_object();
  ASSERT_TRUE(res.contains("gpu")) << json::serialize(job);
  const int64_t host_pid = res.at("gpu").at("processes").at(0).at("pid").as_int64();
  EXPECT_EQ(FakeState(), "checkpointed");
  EXPECT_NE(Str(GetCheckpoint(Str(job, "checkpoint_id")), "gpu"), "none");
  long stopped_at = tt::ReadCount(count());

  fs::path b2 = OverlayBundle("b2", /*config=*/false);
  containers_.Track(Id("c2"));
  json::object back = Restore(Str(job, "checkpoint_id"), {{"container", NewContainer(Id("c2"), b2)}});
  ASSERT_EQ(Str(back, "state"), "succeeded") << json::serialize(back);
  const int64_t new_pid = back.at("result").at("container").at("pid").as_int64();
  EXPECT_NE(new_pid, host_pid) << "the restored container kept its host pid: nothing was tested";
  EXPECT_EQ(back.at("result").at("gpu").at("processes").at(0).at("pid").as_int64(), new_pid);
  EXPECT_EQ(FakeState(), "running");
  EXPECT_TRUE(tt::CountsPast(count(), stopped_at + 3)) << "the restored container does not count on";
}

}  // namespace
}  // namespace ckptd

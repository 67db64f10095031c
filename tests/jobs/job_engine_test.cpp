// Checkpoint and restore jobs through the HTTP API of an in-process daemon,
// with the real CRIU and ckptd_workload.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <rocksdb/write_batch.h>

#include "images/manifest.h"
#include "store/codec.h"
#include "store/digest.h"
#include "store/local_object_store.h"
#include "tests/testing/criu_test_util.h"
#include "tests/jobs/jobs_fixture.h"
#include "tests/testing/daemon_fixture.h"
#include "tests/testing/prom_parser.h"

namespace ckptd {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
namespace ct = ckptd::criu::testing;

using JobsTest = testing::JobsFixture;

TEST_F(JobsTest, CounterCheckpointRestoreContinues) {
  auto out = work_.path() / "counter";
  pid_t pid = -1;
  json::object job = CheckpointNew(&pid, "counter", out, 10);
  ASSERT_FALSE(job.empty());
  EXPECT_EQ(Str(job, "kind"), "checkpoint");
  EXPECT_GT(job.at("bytes_written").to_number<uint64_t>(), 0u);
  std::string id = Str(job, "checkpoint_id");
  ASSERT_FALSE(id.empty());
  // CRIU killed the original at the end of the dump; reap it.
  EXPECT_TRUE(ct::ReapedOrGone(pid));
  uint64_t at_dump = ct::ReadProgress(out).n;

  // The record went through the whole lifecycle.
  json::object rec = GetCheckpoint(id);
  EXPECT_EQ(Str(rec, "status"), "ready");
  EXPECT_EQ(Str(rec, "restore_path"), "file://" + Images() + "/" + id + "/");
  std::vector<std::string> seen;
  for (const auto& h : rec.at("history").as_array()) seen.push_back(Str(h.as_object(), "to"));
  EXPECT_EQ(seen, (std::vector<std::string>{"updated_info", "possibly_uploaded", "ready"}))
      << json::serialize(rec.at("history"));
  const auto& info = rec.at("info").as_object();
  EXPECT_EQ(info.at("pid").as_int64(), pid);
  EXPECT_NE(Str(info, "cmdline").find("ckptd_workload counter"), std::string::npos) << Str(info, "cmdline");
  EXPECT_TRUE(info.at("timings_ms").as_object().contains("dump"));
  EXPECT_GT(info.at("image_size").to_number<uint64_t>(), 0u);
  EXPECT_TRUE(info.at("platform").as_object().contains("kernel"));

  // The manifest lists every image with size and BLAKE3 (the default
  // image_checksum) of its bytes; the manifest's SHA-256 is the checksum.
  std::ifstream mf(Images() + "/" + id + "/manifest.json", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(mf)), {});
  EXPECT_EQ(Sha256::HexOf(bytes), Str(rec, "checksum"));
  auto m = Manifest::Parse(bytes);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->pid, pid);
  EXPECT_EQ(m->codec, "zstd");
  bool has_pstree = false;
  for (const auto& f : m->files) {
    EXPECT_EQ(f.hash, HashAlg::kBlake3) << f.name;
    EXPECT_EQ(f.digest.size(), 64u);
    EXPECT_TRUE(fs::exists(Images() + "/" + id + "/" + f.name)) << f.name;
    has_pstree |= f.name == "pstree.img";
  }
  EXPECT_TRUE(has_pstree);
  EXPECT_FALSE(fs::exists(Staging() + "/" + id)) << "staging left behind";

  pid_t restored = RestoredFrom(id);
  ASSERT_GT(restored, 0);
  EXPECT_EQ(restored, pid);
  ExpectContinues(out, at_dump);

  // Job lookups.
  auto g = Send("GET", "/v2/jobs/" + Str(job, "id"));
  EXPECT_EQ(g.status, 200);
  EXPECT_EQ(Str(g.body.as_object(), "state"), "succeeded");
  auto l = Send("GET", "/v2/jobs?limit=10");
  ASSERT_EQ(l.status, 200);
  EXPECT_EQ(l.body.at("jobs").as_array().size(), 2u);
  EXPECT_EQ(Str(l.body.at("jobs").as_array()[0].as_object(), "kind"), "restore");
}

TEST_F(JobsTest, LeaveRunningKeepsTheOriginal) {
  auto out = work_.path() / "counter";
  pid_t pid = -1;
  json::object job = CheckpointNew(&pid, "counter", out, 5, {{"leave_running", true}, {"compression", "lz4"}});
  ASSERT_FALSE(job.empty());
  EXPECT_TRUE(ct::Alive(pid));
  uint64_t n = ct::ReadProgress(out).n;
  EXPECT_TRUE(ct::WaitProgress(out, n + 5)) << "original stopped counting";
  EXPECT_NE(ct::ProcState(pid), 'T');
  EXPECT_EQ(Str(GetCheckpoint(Str(job, "checkpoint_id")), "status"), "ready");
}

// A workload in a pid and mount namespace of its own (`unshare --pid --fork
// --mount-proc`), checkpointed with leave_running, is restored while the
// original still runs: the checkpoint records CRIU's root for the mount
// namespace ("restore_root" in its options) and the restore passes it.
TEST_F(JobsTest, OwnPidAndMountNamespaceRestoresWhileTheOriginalRuns) {
  auto out = work_.path() / "counter";
  pid_t unshare = -1;
  std::string why;
  pid_t init = ct::StartCounterInOwnPidNs(out, true, &unshare, &why);
  targets_.Add(unshare);
  ASSERT_GT(init, 0) << why;
  // The copy resumes from the dump, somewhere between these two.
  uint64_t before_dump = ct::ReadProgress(out).n;
  json::object job = Checkpoint(init, {{"leave_running", true}});
  ASSERT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
  std::string id = Str(job, "checkpoint_id");
  EXPECT_TRUE(ct::Alive(init));

  std::ifstream mf(Images() + "/" + id + "/manifest.json", std::ios::binary);
  auto m = Manifest::Parse(std::string((std::istreambuf_iterator<char>(mf)), {}));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(Str(m->options.as_object(), "restore_root"), "/") << json::serialize(m->options);
  EXPECT_EQ(m->options.as_object().at("auto_ext_mounts"), json::value(true)) << json::serialize(m->options);
  for (const auto& f : m->files) EXPECT_FALSE(f.name.starts_with("tmpfs-")) << "tmpfs dumped: " << f.name;
  EXPECT_EQ(Str(GetCheckpoint(id).at("info").at("options").as_object(), "restore_root"), "/");

  pid_t restored = RestoredFrom(id);
  ASSERT_GT(restored, 0);
  EXPECT_NE(restored, init);
  EXPECT_EQ(ct::InnermostPid(restored), 1);
  EXPECT_TRUE(ct::Alive(init)) << "the original must still run";
  EXPECT_NE(fs::read_symlink("/proc/" + std::to_string(restored) + "/ns/mnt"),
            fs::read_symlink("/proc/" + std::to_string(init) + "/ns/mnt"));
  // Both count into the same file: stop the original, the copy goes on
  // from where it was dumped (not from 0).
  EXPECT_EQ(ct::CopyCountsOnAfterOriginalDies(unshare, init, out, before_dump), "");
  EXPECT_TRUE(ct::Alive(restored));
}

// A plain process shares the daemon's mount namespace: no root recorded.
TEST_F(JobsTest, SharedMountNamespaceRecordsNoRestoreRoot) {
  auto out = work_.path() / "counter";
  pid_t pid = -1;
  json::object job = CheckpointNew(&pid, "counter", out, 3, {{"leave_running", true}});
  ASSERT_FALSE(job.empty());
  std::ifstream mf(Images() + "/" + Str(job, "checkpoint_id") + "/manifest.json", std::ios::binary);
  auto m = Manifest::Parse(std::string((std::istreambuf_iterator<char>(mf)), {}));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_FALSE(m->options.as_object().contains("restore_root")) << json::serialize(m->options);
  EXPECT_FALSE(m->options.as_object().contains("auto_ext_mounts")) << json::serialize(m->options);
}

TEST_F(JobsTest, MetricsMoveAsJobsRun) {
  auto scrape = [&] {
    auto r = client_->Send("GET", "/metrics");
    EXPECT_TRUE(r.ok() && r->status == 200);
    auto p = testing::ParsePrometheusText(r.ok() ? r->body : "");
    EXPECT_TRUE(p.error.empty()) << p.error;
    return p;
  };
  auto before = scrape();
  // What the daemon found: 0 without NVIDIA's driver (CI), 1 on a GPU node.
  json::value gpu = daemon_->job_system()->GpuHealth();
  const bool gpu_ok = gpu.is_object() && gpu.as_object().contains("available") && gpu.at("available") == true;
  EXPECT_EQ(before.Value("ckptd_gpu_available"), gpu_ok ? 1 : 0) << json::serialize(gpu);
  EXPECT_EQ(before.Value("ckptd_jobs_total", {{"kind", "checkpoint"}}), -1);  // none yet

  auto out = work_.path() / "counter";
  pid_t pid = -1;
  json::object job = CheckpointNew(&pid, "counter", out, 3, {{"leave_running", true}});
  ASSERT_FALSE(job.empty());
  auto bad = Post("/v2/jobs/restore",
                  {{"restore_path", "file://" + daemon_->config().ImagesDir() + "/nonexistent/"}, {"wait", true}});

  auto after = scrape();
  EXPECT_EQ(after.Value("ckptd_criu_available"), 1);  // probed in the background; done by now
  EXPECT_EQ(after.Value("ckptd_jobs_total", {{"kind", "checkpoint"}, {"result", "succeeded"}}), 1);
  EXPECT_EQ(after.Value("ckptd_jobs_total", {{"kind", "restore"}, {"result", "failed"}}), 1) << json::serialize(bad.body);
  EXPECT_EQ(after.Value("ckptd_jobs_running", {{"kind", "checkpoint"}}), 0);
  EXPECT_GE(after.Value("ckptd_bytes_uploaded_total"), static_cast<double>(job.at("bytes_written").to_number<uint64_t>()));
  EXPECT_EQ(after.Value("ckptd_job_phase_duration_seconds_count", {{"kind", "checkpoint"}, {"phase", "dump"}}), 1);
  // How long the tree stood still, inside the dump phase.
  EXPECT_EQ(after.Value("ckptd_job_phase_duration_seconds_count", {{"kind", "checkpoint"}, {"phase", "freeze"}}), 1);
  EXPECT_GT(after.Value("ckptd_job_phase_duration_seconds_sum", {{"kind", "checkpoint"}, {"phase", "freeze"}}), 0);
  EXPECT_TRUE(job.at("result").at("timings_ms").as_object().contains("freeze")) << json::serialize(job);
  EXPECT_EQ(after.Value("ckptd_checkpoints", {{"status", "ready"}}), 1);
  EXPECT_GE(after.Value("ckptd_http_requests_total", {{"route", "/v2/jobs/checkpoint"}, {"status", "200"}}), 1);
}

TEST_F(JobsTest, FileRestorePathsStayInsideTheirRoots) {
  for (const std::string& path : std::vector<std::string>{"file:///etc/", "file:///",
                                                         "file://" + daemon_->config().ImagesDir() + "/../db/"}) {
    auto r = Post("/v2/jobs/restore", {{"restore_path", path}, {"wait", true}});
    EXPECT_EQ(r.status, 400) << path << ": " << json::serialize(r.body);
    std::string why = json::serialize(r.body);
    EXPECT_TRUE(why.find("outside") != std::string::npos || why.find("'..'") != std::string::npos) << why;
  }
  // A checkpoint whose restore_path an agent pointed elsewhere is refused too.
  std::string id(Send("POST", "/v2/checkpoints").body.as_string());
  ASSERT_EQ(Send("PUT", "/v2/checkpoints/info/" + id, R"({"gpu":"none","platform":"p"})").status, 200);
  ASSERT_EQ(Send("POST", "/v2/checkpoints/uploaded/" + id, R"({"restore_path":"file:///etc/"})").status, 200);
  auto r = Post("/v2/jobs/restore", {{"checkpoint_id", id}, {"wait", true}});
  EXPECT_EQ(r.status, 400) << json::serialize(r.body);
}

TEST_F(JobsTest, MemoryWorkloadIntactAfterRestore) {
  auto out = work_.path() / "memory";
  pid_t pid = -1;
  json::object job =
      CheckpointNew(&pid, "memory", out, 1, {{"compression", "none"}}, {"--mib", "64"}, std::chrono::seconds(30));
  ASSERT_FALSE(job.empty());
  EXPECT_GE(job.at("bytes_written").to_number<uint64_t>(), 64ull << 20);
  EXPECT_TRUE(ct::ReapedOrGone(pid));
  uint64_t at_dump = ct::ReadProgress(out).n;
  ASSERT_GT(RestoredFrom(Str(job, "checkpoint_id")), 0);
  EXPECT_TRUE(ct::WaitProgress(out, at_dump + 2, std::chrono::seconds(30))) << "memory verification stalled";
  EXPECT_TRUE(ct::ReadProgress(out).ok) << "memory content differs after restore";
}

TEST_F(JobsTest, ForkChildrenContinue) {
  auto out = work_.path() / "fork";
  pid_t pid = ct::StartWorkload("fork", out, {"--children", "2"});
  targets_.Add(pid);
  fs::path c0 = out.string() + ".0", c1 = out.string() + ".1";
  ASSERT_TRUE(ct::WaitProgress(out, 5));
  ASSERT_TRUE(ct::WaitProgress(c0, 5));
  ASSERT_TRUE(ct::WaitProgress(c1, 5));
  auto tree = ct::TreeOf(pid);
  ASSERT_EQ(tree.size(), 3u);
  json::object job = Checkpoint(pid);
  ASSERT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
  // Only the root is our child; its children are orphans the daemon's
  // reaper must reap before the restore can reuse their pids.
  EXPECT_TRUE(ct::ReapedOrGone(pid));
  uint64_t n0 = ct::ReadProgress(c0).n, n1 = ct::ReadProgress(c1).n, n = ct::ReadProgress(out).n;
  ASSERT_GT(RestoredFrom(Str(job, "checkpoint_id")), 0);
  ExpectContinues(out, n);
  ExpectContinues(c0, n0);
  ExpectContinues(c1, n1);
}

TEST_F(JobsTest, CorruptedImageIsRefusedBeforeCriu) {
  auto out = work_.path() / "counter";
  pid_t pid = -1;
  json::object job = CheckpointNew(&pid, "counter", out, 5, {{"compression", "none"}});
  ASSERT_FALSE(job.empty());
  EXPECT_TRUE(ct::ReapedOrGone(pid));
  std::string id = Str(job, "checkpoint_id");
  // Flip a byte in the biggest stored image.
  fs::path biggest;
  for (const auto& e : fs::directory_iterator(Images() + "/" + id))
    if (e.path().filename() != "manifest.json" && (biggest.empty() || e.file_size() > fs::file_size(biggest)))
      biggest = e.path();
  ASSERT_FALSE(biggest.empty());
  {
    std::fstream f(biggest, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(fs::file_size(biggest) / 2));
    char c = 0;
    f.read(&c, 1);
    f.seekp(static_cast<std::streamoff>(fs::file_size(biggest) / 2));
    c = static_cast<char>(c ^ 0x5a);
    f.write(&c, 1);
  }
  auto r = Post("/v2/jobs/restore", {{"checkpoint_id", id}, {"wait", true}});
  ASSERT_EQ(r.status, 200);
  const auto& rj = r.body.as_object();
  EXPECT_EQ(Str(rj, "state"), "failed");
  EXPECT_EQ(Str(rj, "phase"), "download") << "CRIU must not run on unverified images";
  EXPECT_NE(Str(rj, "error").find(biggest.filename().string()), std::string::npos) << Str(rj, "error");
  EXPECT_NE(Str(rj, "error").find("blake3"), std::string::npos) << Str(rj, "error");
  EXPECT_TRUE(rj.at("pid").is_null());
  EXPECT_FALSE(ct::Alive(pid)) << "a process was restored from a corrupt image";
}

TEST_F(JobsTest, BadRequests) {
  pid_t gone = ct::Spawn({"true"});
  ct::ReapChild(gone);
  EXPECT_EQ(Post("/v2/jobs/checkpoint", {{"pid", gone}}).status, 404);
  auto r = Post("/v2/jobs/checkpoint", {{"pid", 1}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(json::serialize(r.body).find("PID 1"), std::string::npos);
  EXPECT_EQ(Post("/v2/jobs/checkpoint", {{"pid", getpid()}}).status, 400);
  EXPECT_EQ(Post("/v2/jobs/checkpoint", {{"pid", 0}}).status, 400);
  EXPECT_EQ(Post("/v2/jobs/checkpoint", {{"pid", -5}}).status, 400);
  EXPECT_EQ(Post("/v2/jobs/checkpoint", {{"pid", "12"}}).status, 400);
  EXPECT_EQ(Post("/v2/jobs/checkpoint", {}).status, 400);
  EXPECT_EQ(Send("POST", "/v2/jobs/checkpoint", "{not json").status, 400);
  EXPECT_EQ(Post("/v2/jobs/checkpoint", {{"pid", getppid()}, {"compression", "gzip"}}).status, 400);
  EXPECT_EQ(Post("/v2/jobs/restore", {}).status, 400);
  EXPECT_EQ(Post("/v2/jobs/restore", {{"checkpoint_id", "a"}, {"restore_path", "file:///x/"}}).status, 400);
  EXPECT_EQ(Post("/v2/jobs/restore", {{"restore_path", "ftp://x/"}}).status, 400);
  EXPECT_EQ(Post("/v2/jobs/restore", {{"checkpoint_id", NewUuid()}}).status, 404);
  auto created = Post("/v2/checkpoints", {});
  ASSERT_EQ(created.status, 200) << json::serialize(created.body);
  // Cedana's create answers the new id (a JSON string).
  std::string id = created.body.is_string() ? std::string(created.body.as_string())
                                            : Str(created.body.as_object(), "id");
  r = Post("/v2/jobs/restore", {{"checkpoint_id", id}});
  EXPECT_EQ(r.status, 409) << json::serialize(r.body);
  EXPECT_EQ(Send("GET", "/v2/jobs/" + NewUuid()).status, 404);
  EXPECT_EQ(Send("GET", "/v2/jobs?limit=0").status, 400);
  auto missing = Post("/v2/jobs/restore",
                      {{"restore_path", "file://" + daemon_->config().ImagesDir() + "/nothing/"}, {"wait", true}});
  ASSERT_EQ(missing.status, 200);
  EXPECT_EQ(Str(missing.body.as_object(), "state"), "failed");
  EXPECT_NE(Str(missing.body.as_object(), "error").find("manifest.json"), std::string::npos);
}

// Found by probing the API from outside: each was accepted before.
TEST_F(JobsTest, MoreBadRequestsAreRefusedUpFront) {
  // A kernel thread, and a thread of the daemon (this test process is it).
  auto kthread = Post("/v2/jobs/checkpoint", {{"pid", 2}});
  EXPECT_EQ(kthread.status, 400) << json::serialize(kthread.body);
  EXPECT_NE(json::serialize(kthread.body).find("kernel thread"), std::string::npos);
  std::promise<pid_t> tid;
  std::promise<void> release;
  std::thread t([&] {
    tid.set_value(static_cast<pid_t>(syscall(SYS_gettid)));
    release.get_future().wait();
  });
  auto own = Post("/v2/jobs/checkpoint", {{"pid", tid.get_future().get()}});
  release.set_value();
  t.join();
  EXPECT_EQ(own.status, 400) << json::serialize(own.body);
  EXPECT_NE(json::serialize(own.body).find("the daemon itself"), std::string::npos);
  // A name as long as the Cedana routes allow, not a megabyte.
  auto named = Post("/v2/jobs/checkpoint", {{"pid", getppid()}, {"name", std::string(1000000, 'n')}});
  EXPECT_EQ(named.status, 400) << json::serialize(named.body).substr(0, 200);
  // Bucket names follow S3's rules.
  auto bucket = Post("/v2/jobs/restore", {{"restore_path", "s3://!@$&'()*+,;=/x/"}});
  EXPECT_EQ(bucket.status, 400) << json::serialize(bucket.body);
  EXPECT_NE(json::serialize(bucket.body).find("bucket"), std::string::npos);
}

// Checkpoint ids are case-insensitive on the job routes as on the Cedana ones.
TEST_F(JobsTest, UpperCaseCheckpointIdRestores) {
  auto out = work_.path() / "counter";
  pid_t pid = -1;
  json::object job = CheckpointNew(&pid, "counter", out, 3);
  ASSERT_FALSE(job.empty());
  EXPECT_TRUE(ct::ReapedOrGone(pid));
  std::string id = Str(job, "checkpoint_id");
  for (auto& c : id) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  ASSERT_GT(RestoredFrom(id), 0);
}

TEST_F(JobsTest, SecondCheckpointOfTheSamePidConflicts) {
  auto out = work_.path() / "memory";
  pid_t pid = targets_.Start("memory", out, 1, {"--mib", "256"}, std::chrono::seconds(60));
  ASSERT_GT(pid, 0);
  auto first = Post("/v2/jobs/checkpoint", {{"pid", pid}, {"leave_running", true}});
  ASSERT_EQ(first.status, 202) << json::serialize(first.body);
  auto second = Post("/v2/jobs/checkpoint", {{"pid", pid}, {"leave_running", true}});
  EXPECT_EQ(second.status, 409) << json::serialize(second.body);
  std::string job_id = Str(first.body.as_object(), "job_id");
  auto done = daemon_->job_system()->jobs()->WaitJob(job_id, std::chrono::minutes(2));
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(Str(done->as_object(), "state"), "succeeded") << json::serialize(*done);
  EXPECT_TRUE(ct::Alive(pid));
  // Once finished, the pid can be checkpointed again.
  EXPECT_EQ(Post("/v2/jobs/checkpoint", {{"pid", pid}, {"leave_running", true}, {"wait", true}}).status, 200);
}

TEST_F(JobsTest, FailedDumpDeprecatesAndCleansUp) {
  // An established TCP connection without tcp_established: CRIU refuses.
  auto out = work_.path() / "tcp";
  pid_t pid = -1;
  int lfd = ConnectedTcpWorkload(out, &pid);
  ASSERT_GE(lfd, 0);
  auto r = Post("/v2/jobs/checkpoint", {{"pid", pid}, {"wait", true}});
  close(lfd);
  ASSERT_EQ(r.status, 200);
  const auto& job = r.body.as_object();
  EXPECT_EQ(Str(job, "state"), "failed");
  EXPECT_EQ(Str(job, "phase"), "dump");
  EXPECT_NE(Str(job, "error").find("criu dump"), std::string::npos) << Str(job, "error");
  std::string id = Str(job, "checkpoint_id");
  json::object rec = GetCheckpoint(id);
  EXPECT_EQ(Str(rec, "status"), "deprecated");
  EXPECT_NE(Str(rec.at("info").as_object(), "error").find("criu dump"), std::string::npos);
  EXPECT_FALSE(fs::exists(Staging() + "/" + id));
  EXPECT_FALSE(fs::exists(Images() + "/" + id) && !fs::is_empty(Images() + "/" + id));
  EXPECT_TRUE(ct::Alive(pid));
  EXPECT_NE(ct::ProcState(pid), 'T') << "target left frozen";
}

// A restore CRIU refuses (the tree's pid is taken: the original still
// runs) says why in its error, from CRIU's log, and that log is kept and
// served; a job that succeeded keeps none.
TEST_F(JobsTest, FailedRestoreExplainsItselfAndKeepsItsLog) {
  auto out = work_.path() / "counter";
  pid_t pid = -1;
  json::object job = CheckpointNew(&pid, "counter", out, 3, {{"leave_running", true}});
  ASSERT_FALSE(job.empty());
  auto r = Post("/v2/jobs/restore", {{"checkpoint_id", Str(job, "checkpoint_id")}, {"wait", true}});
  ASSERT_EQ(r.status, 200);
  const json::object& failed = r.body.as_object();
  ASSERT_EQ(Str(failed, "state"), "failed") << json::serialize(failed);
  const std::string error = Str(failed, "error");
  EXPECT_NE(error.find("Error ("), std::string::npos) << "no CRIU error line: " << error;
  const std::string kept = dir_.File("job-logs") + "/" + Str(failed, "id") + "/restore.log";
  EXPECT_NE(error.find(kept), std::string::npos) << "the error does not name the kept log: " << error;
  EXPECT_EQ(error.find(Staging()), std::string::npos) << "the error names the deleted staging dir: " << error;
  EXPECT_TRUE(fs::exists(kept));

  auto c = Client();
  auto log = c->Send("GET", "/v2/jobs/" + Str(failed, "id") + "/log");
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->status, 200) << log->body;
  EXPECT_EQ(log->headers["content-type"], "text/plain; charset=utf-8");
  EXPECT_NE(log->body.find("==> restore.log <=="), std::string::npos) << log->body.substr(0, 400);
  EXPECT_NE(log->body.find("Restoring FAILED"), std::string::npos);
  auto none = c->Send("GET", "/v2/jobs/" + Str(job, "id") + "/log");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->status, 404) << none->body;
  EXPECT_NE(none->body.find("kept no log"), std::string::npos) << none->body;
  EXPECT_EQ(Send("GET", "/v2/jobs/00000000-0000-4000-8000-000000000000/log").status, 404);
  auto unauth = Client("wrong-token")->Send("GET", "/v2/jobs/" + Str(failed, "id") + "/log");
  ASSERT_TRUE(unauth.ok());
  EXPECT_EQ(unauth->status, 401);
  EXPECT_TRUE(ct::Alive(pid)) << "the failed restore touched the original";
}

// An open file with no name: CRIU dumps its contents only below
// ghost_limit (1 MiB by default); above it the dump fails, saying why, and
// the target runs on.
TEST_F(JobsTest, UploadFailureAfterDumpBringsTheTargetBack) {
  auto out = work_.path() / "counter";
  pid_t pid = targets_.Start("counter", out, 5);
  ASSERT_GT(pid, 0);
  // Break the image store: its root becomes a plain file.
  fs::remove_all(Images());
  std::ofstream(Images()) << "not a directory";
  auto r = Post("/v2/jobs/checkpoint", {{"pid", pid}, {"wait", true}});
  ASSERT_EQ(r.status, 200);
  const auto& job = r.body.as_object();
  EXPECT_EQ(Str(job, "state"), "failed");
  EXPECT_EQ(Str(job, "phase"), "upload");
  EXPECT_NE(Str(job, "error").find("restored from the local images"), std::string::npos) << Str(job, "error");
  EXPECT_EQ(Str(GetCheckpoint(Str(job, "checkpoint_id")), "status"), "deprecated");
  EXPECT_FALSE(fs::exists(Staging() + "/" + Str(job, "checkpoint_id")));
  uint64_t n = ct::ReadProgress(out).n;
  EXPECT_TRUE(ct::WaitProgress(out, n + 5)) << "the target did not come back";
  fs::remove(Images());
}

TEST_F(JobsTest, StopDrainsARunningJob) {
  auto out = work_.path() / "memory";
  pid_t pid = targets_.Start("memory", out, 1, {"--mib", "128"}, std::chrono::seconds(30));
  ASSERT_GT(pid, 0);
  auto r = Post("/v2/jobs/checkpoint", {{"pid", pid}, {"leave_running", true}});
  ASSERT_EQ(r.status, 202);
  std::string job_id = Str(r.body.as_object(), "job_id");
  // Stop only once a worker holds the job: a job still queued at shutdown
  // fails instead (the engine's contract), which is not what this tests.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (Str(Send("GET", "/v2/jobs/" + job_id).body.as_object(), "state") == "queued") {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no worker took the job";
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  RestartDaemon();  // Stop() waits for the job (shutdown_drain_s)
  auto j = Send("GET", "/v2/jobs/" + job_id);
  ASSERT_EQ(j.status, 200);
  EXPECT_EQ(Str(j.body.as_object(), "state"), "succeeded") << json::serialize(j.body);
  EXPECT_EQ(Str(GetCheckpoint(Str(j.body.as_object(), "checkpoint_id")), "status"), "ready");
  EXPECT_TRUE(ct::Alive(pid));
}

TEST_F(JobsTest, HealthReportsCriu) {
  auto h = Send("GET", "/healthz");
  ASSERT_EQ(h.status, 200);
  for (int i = 0; i < 300 && h.body.at("criu").as_object().contains("probing"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    h = Send("GET", "/healthz");
  }
  const auto& c = h.body.at("criu").as_object();
  EXPECT_TRUE(c.at("found").as_bool()) << json::serialize(c);
  EXPECT_TRUE(c.at("version_ok").as_bool());
  EXPECT_TRUE(c.at("check_passed").as_bool());
  // CRIU's plugin dir is the data dir's, empty and reused: a killed daemon
  // leaves no directory of its own behind.
  EXPECT_TRUE(fs::is_directory(dir_.File("criu-plugins")));
  EXPECT_TRUE(fs::is_empty(dir_.File("criu-plugins")));
}

TEST_F(JobsTest, InterruptedJobIsRecoveredAtStartup) {
  // What a daemon killed mid-upload leaves: a possibly_uploaded record, a
  // running job, partial objects and staging.
  auto rec = daemon_->catalog()->Create(std::string("killed"));
  ASSERT_TRUE(rec.ok());
  std::string id = rec->id;
  ASSERT_TRUE(daemon_->catalog()->SetInfo(id, "none", "linux", json::object{{"pid", 4242}}).ok());
  ASSERT_TRUE(daemon_->catalog()->MarkPossiblyUploaded(id).ok());
  ASSERT_TRUE(daemon_->job_system()->images()->PutBytes(id + "/pages-1.img", "partial").ok());
  fs::create_directories(Staging() + "/" + id + "/images");
  std::ofstream(Staging() + "/" + id + "/images/core-4242.img") << "x";
  std::string job_id = NewUuid();
  json::object job{{"id", job_id},           {"kind", "checkpoint"},     {"state", "running"},
                   {"phase", "upload"},      {"checkpoint_id", id},      {"pid", 4242},
                   {"bytes_written", 7},     {"created_at_ms", 1},       {"started_at_ms", 2},
                   {"finished_at_ms", 0},    {"error", nullptr},         {"result", nullptr},
                   {"restore_path", nullptr}};
  rocksdb::WriteBatch b;
  b.Put(daemon_->db()->Handle(cf::kJobs), job_id, json::serialize(job));
  ASSERT_TRUE(daemon_->db()->Write(&b).ok());
  RestartDaemon();

  auto j = Send("GET", "/v2/jobs/" + job_id);
  ASSERT_EQ(j.status, 200);
  EXPECT_EQ(Str(j.body.as_object(), "state"), "failed");
  EXPECT_TRUE(Str(j.body.as_object(), "error").starts_with("interrupted")) << json::serialize(j.body);
  json::object r = GetCheckpoint(id);
  EXPECT_EQ(Str(r, "status"), "deprecated");
  EXPECT_EQ(Str(r.at("info").as_object(), "error"), Str(j.body.as_object(), "error"));
  EXPECT_FALSE(fs::exists(Images() + "/" + id + "/pages-1.img"));
  EXPECT_FALSE(fs::exists(Staging() + "/" + id));
}

// JobsTest on a daemon whose config `Tweak` changed.
template <void (*Tweak)(Config&)>
class JobsTestWith : public JobsTest {
 protected:
  Config MakeConfig() override {
    Config c = JobsTest::MakeConfig();
    Tweak(c);
    return c;
  }
};

void BogusCriu(Config& c) { c.criu_path = "/nonexistent/criu"; }
using BogusCriuTest = JobsTestWith<BogusCriu>;

TEST_F(BogusCriuTest, CheckpointIs503AndHealthSaysWhy) {
  auto out = work_.path() / "counter";
  pid_t pid = targets_.Start("counter", out, 3);
  ASSERT_GT(pid, 0);
  auto r = Post("/v2/jobs/checkpoint", {{"pid", pid}, {"wait", true}});
  EXPECT_EQ(r.status, 503) << json::serialize(r.body);
  EXPECT_NE(json::serialize(r.body).find("CRIU"), std::string::npos);
  uint64_t n = ct::ReadProgress(out).n;
  EXPECT_TRUE(ct::WaitProgress(out, n + 3)) << "target disturbed";
  auto list = Send("GET", "/v2/checkpoints");
  EXPECT_EQ(json::serialize(list.body).find("initializing"), std::string::npos) << "a record was created";
  auto h = Send("GET", "/healthz");
  const auto& c = h.body.at("criu").as_object();
  EXPECT_FALSE(c.at("found").as_bool());
  EXPECT_FALSE(Str(c, "error").empty());
}


// image_checksum = "sha256": manifests carry SHA-256 per image, restore
// verifies it (the same path reads manifests written before BLAKE3), and a
// flipped byte is still refused. With a non-default zstd_level too.
void Sha256Images(Config& c) {
  c.image_checksum = "sha256";
  c.zstd_level = -5;
}
using Sha256ImagesTest = JobsTestWith<Sha256Images>;

TEST_F(Sha256ImagesTest, ManifestRecordsSha256AndRestoreVerifiesIt) {
  auto out = work_.path() / "counter";
  pid_t pid = targets_.Start("counter", out, 10);
  ASSERT_GT(pid, 0);
  uint64_t before_dump = ct::ReadProgress(out).n;
  json::object job = Checkpoint(pid, {{"leave_running", true}});
  ASSERT_EQ(Str(job, "state"), "succeeded") << json::serialize(job);
  std::string id = Str(job, "checkpoint_id");
  std::ifstream mf(Images() + "/" + id + "/manifest.json", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(mf)), {});
  EXPECT_NE(bytes.find("\"sha256\":"), std::string::npos);
  EXPECT_EQ(bytes.find("\"blake3\":"), std::string::npos);
  auto m = Manifest::Parse(bytes);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const ManifestFile* biggest = nullptr;
  for (const auto& f : m->files) {
    EXPECT_EQ(f.hash, HashAlg::kSha256) << f.name;
    if (biggest == nullptr || f.size > biggest->size) biggest = &f;
  }
  ASSERT_NE(biggest, nullptr);
  // Restoring needs the original gone (same PID).
  ct::KillTree(pid);
  ASSERT_TRUE(ct::ReapedOrGone(pid));
  pid_t restored = RestoredFrom(id);
  ASSERT_GT(restored, 0);
  ExpectContinues(out, before_dump);
  ct::KillTree(restored);
  ASSERT_TRUE(ct::ReapedOrGone(restored));

  // Replace the largest image with a well-formed object of the same size
  // and codec but other bytes: only the checksum can tell.
  auto store = LocalObjectStore::Open(Images());
  ASSERT_TRUE(store.ok());
  auto inner = (*store)->NewWriter(id + "/" + biggest->name);
  ASSERT_TRUE(inner.ok());
  auto w = EncodingWriter::Create(std::move(*inner), CodecOptions{});
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write(std::string(biggest->size, 'x')).ok());
  ASSERT_TRUE((*w)->Commit().ok());
  auto bad = Post("/v2/jobs/restore", {{"checkpoint_id", id}, {"wait", true}});
  ASSERT_EQ(bad.status, 200);
  EXPECT_EQ(Str(bad.body.as_object(), "state"), "failed");
  EXPECT_NE(Str(bad.body.as_object(), "error").find("sha256"), std::string::npos)
      << Str(bad.body.as_object(), "error");
}

// Finished job records are kept job_retention_s, then removed (the next job
// to finish prunes them); the one that just finished stays, served from the
// database once it has left memory.
void OneSecondRetention(Config& c) { c.job_retention_s = 1; }

class JobRetentionTest : public JobsTestWith<OneSecondRetention> {
 protected:
  std::string FailingRestore(const std::string& name) {
    auto r = Post("/v2/jobs/restore", {{"restore_path", "file://" + Images() + "/" + name + "/"}, {"wait", true}});
    EXPECT_TRUE(r.body.is_object()) << json::serialize(r.body);
    if (!r.body.is_object()) return "";
    EXPECT_EQ(Str(r.body.as_object(), "state"), "failed") << json::serialize(r.body);
    return Str(r.body.as_object(), "id");
  }
};

TEST_F(JobRetentionTest, OldFinishedJobRecordsArePruned) {
  std::string a = FailingRestore("nothing-a");
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(Send("GET", "/v2/jobs/" + a).status, 200);
  // Kept logs go with their record.
  const fs::path a_logs = fs::path(dir_.File("job-logs")) / a;
  fs::create_directories(a_logs);
  std::ofstream(a_logs / "restore.log") << "(00.000001) Error (criu/x.c:1): boom\n";
  EXPECT_EQ(Send("GET", "/v2/jobs/" + a + "/log").status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(2200));
  std::string b = FailingRestore("nothing-b");
  ASSERT_FALSE(b.empty());
  EXPECT_EQ(Send("GET", "/v2/jobs/" + a).status, 404) << "a job finished over job_retention_s ago is still there";
  EXPECT_FALSE(fs::exists(a_logs)) << "the logs outlived their job record";
  auto got = Send("GET", "/v2/jobs/" + b);
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(Str(got.body.as_object(), "state"), "failed");
  auto list = Send("GET", "/v2/jobs?limit=10");
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.body.at("jobs").as_array().size(), 1u) << json::serialize(list.body);
  EXPECT_EQ(Str(list.body.at("jobs").as_array()[0].as_object(), "id"), b);
}

}  // namespace
}  // namespace ckptd

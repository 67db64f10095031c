// The job routes over real HTTP against a job service the test controls:
// a wait=true request holds no handler thread while its job runs (health,
// metrics and other routes keep answering with every handler thread's
// worth of waiters), the waiters get the finished job, and a full queue is
// 429 with Retry-After.
#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "api/client.h"
#include "api/job_handlers.h"
#include "api/meta_handlers.h"
#include "api/server.h"

namespace ckptd::api {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

// Jobs that run until the test finishes them; or a full queue.
class ControlledJobs final : public JobService {
 public:
  bool full = false;

  Result<JobSubmitted> SubmitCheckpoint(const CheckpointJobRequest& req) override {
    if (full) return ResourceExhausted("job queue is full (2 running, 16 waiting); retry later");
    std::lock_guard lock(mu_);
    last_checkpoint_ = req;
    std::string id = "job-" + std::to_string(++n_);
    jobs_[id] = json::object{{"id", id}, {"state", "running"}, {"pid", req.pid}};
    return JobSubmitted{id, "ckpt-" + id};
  }
  Result<JobSubmitted> SubmitRestore(const RestoreJobRequest& req) override {
    std::lock_guard lock(mu_);
    last_restore_ = req;
    return Unavailable("no");
  }
  // What the handlers passed on last.
  CheckpointJobRequest last_checkpoint() const {
    std::lock_guard lock(mu_);
    return last_checkpoint_;
  }
  RestoreJobRequest last_restore() const {
    std::lock_guard lock(mu_);
    return last_restore_;
  }
  Result<json::value> GetJob(std::string_view id) const override {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(std::string(id));
    if (it == jobs_.end()) return NotFound("no job");
    return json::value(it->second);
  }
  Result<json::value> WaitJob(std::string_view id, std::chrono::milliseconds) override { return GetJob(id); }
  Result<json::array> ListJobs(size_t) const override { return json::array{}; }
  Result<std::string> JobLog(std::string_view) const override { return NotFound("no log"); }
  void OnFinished(std::string_view id, JobDone done) override {
    std::lock_guard lock(mu_);
    waiting_.emplace_back(std::string(id), std::move(done));
  }
  size_t waiting() const {
    std::lock_guard lock(mu_);
    return waiting_.size();
  }
  // Every job ends succeeded; their waiters hear it.
  void FinishAll() {
    std::vector<std::pair<std::string, JobDone>> w;
    {
      std::lock_guard lock(mu_);
      for (auto& [id, j] : jobs_) j["state"] = "succeeded";
      w.swap(waiting_);
    }
    for (auto& [id, done] : w) done(GetJob(id));
  }

 private:
  mutable std::mutex mu_;
  int n_ = 0;
  std::map<std::string, json::object> jobs_;
  std::vector<std::pair<std::string, JobDone>> waiting_;
  CheckpointJobRequest last_checkpoint_;
  RestoreJobRequest last_restore_;
};

class JobHandlersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RegisterMetaRoutes(&router_, [] { return json::object{{"status", "ok"}}; });
    RegisterJobRoutes(&router_, &jobs_);
    ServerOptions o;
    o.port = 0;
    o.handler_threads = 2;
    server_ = std::make_unique<HttpServer>(o, &router_, &auth_);
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    jobs_.FinishAll();
    server_->Stop(1s);
  }
  std::unique_ptr<HttpClient> Client() {
    return HttpClient::Create("http://127.0.0.1:" + std::to_string(server_->port()), "t0ken", 30s).value();
  }

  Router router_;
  Authenticator auth_{"t0ken"};
  ControlledJobs jobs_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(JobHandlersTest, WaitingJobsHoldNoHandlerThread) {
  // Five times as many waiters as handler threads.
  std::vector<std::future<Result<ClientResponse>>> waiters;
  for (int i = 0; i < 10; ++i) {
    waiters.push_back(std::async(std::launch::async, [this, i] {
      return Client()->Send("POST", "/v2/jobs/checkpoint", json::serialize(json::object{{"pid", 100 + i}, {"wait", true}}));
    }));
  }
  for (int i = 0; i < 200 && jobs_.waiting() < 10; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(jobs_.waiting(), 10u);
  // Health (inline) and a route on the handler pool both answer at once.
  auto t0 = std::chrono::steady_clock::now();
  auto h = Client()->Send("GET", "/healthz");
  auto g = Client()->Send("GET", "/v2/jobs/job-1");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  ASSERT_TRUE(h.ok() && g.ok());
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(g->status, 200);
  for (auto& w : waiters) EXPECT_EQ(w.wait_for(0s), std::future_status::timeout) << "answered before the job ended";
  jobs_.FinishAll();
  for (auto& w : waiters) {
    auto r = w.get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(json::parse(r->body).at("state"), "succeeded") << r->body;
  }
}

TEST_F(JobHandlersTest, FullQueueIs429WithRetryAfter) {
  jobs_.full = true;
  auto r = Client()->Send("POST", "/v2/jobs/checkpoint", R"({"pid": 42})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 429) << r->body;
  ASSERT_TRUE(r->headers.count("retry-after")) << r->body;
  EXPECT_EQ(r->headers.at("retry-after"), std::to_string(kRetryAfterSeconds));
}

// An option ckptd lacks is refused, naming it, before any job exists; the
// Cedana and agent routes keep their specs' leniency (their own tests).
TEST_F(JobHandlersTest, UnknownFieldsAre400NamingThem) {
  auto c = Client();
  auto r = c->Send("POST", "/v2/jobs/checkpoint", R"({"pid": 42, "lazy_pages": true, "bogus_field": 1})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("'lazy_pages', 'bogus_field'"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("known: pid, container"), std::string::npos) << r->body;
  for (const char* body : {R"({"checkpoint_id": "x", "leave_running": true})",
                           R"({"checkpoint_id": "x", "device_map": [{"from": "GPU-a", "to": "GPU-b", "via": 1}]})",
                           R"({"checkpoint_id": "x", "container": {"id": "c", "bundle": "/b", "image": "i"}})"}) {
    auto bad = c->Send("POST", "/v2/jobs/restore", body);
    ASSERT_TRUE(bad.ok());
    EXPECT_EQ(bad->status, 400) << body << " -> " << bad->body;
    EXPECT_NE(bad->body.find("unknown fields"), std::string::npos) << bad->body;
  }
  auto runc_lacks = c->Send("POST", "/v2/jobs/checkpoint", R"({"container": {"id": "c"}, "tcp_close": true})");
  ASSERT_TRUE(runc_lacks.ok());
  EXPECT_EQ(runc_lacks->status, 400) << runc_lacks->body;
  EXPECT_NE(runc_lacks->body.find("'tcp_close' are for processes"), std::string::npos) << runc_lacks->body;
  auto container = c->Send("POST", "/v2/jobs/checkpoint", R"({"container": {"id": "c", "bundle": "/b"}})");
  ASSERT_TRUE(container.ok());
  EXPECT_EQ(container->status, 400) << "a checkpoint's container has no bundle: " << container->body;
  // Every known field is still taken.
  auto ok = c->Send("POST", "/v2/jobs/checkpoint",
                    R"({"pid": 42, "name": "n", "leave_running": true, "tcp_established": false, "shell_job": false,
                        "ext_unix_sk": false, "file_locks": false, "link_remap": false, "manage_cgroups": false,
                        "wait": false, "timeout": 60, "log_level": 2, "compression": "lz4", "gpu": "off",
                        "external": [], "tcp_close": true, "skip_in_flight": true, "ghost_limit": 4194304})");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 202) << ok->body;
}

// The CRIU options beyond the booleans: checked (400 naming the field and
// the choices), passed on, and refused for containers instead of dropped.
TEST_F(JobHandlersTest, CriuOptionsAreCheckedAndPassedOn) {
  auto c = Client();
  auto expect_400 = [&](const char* route, const char* body, const char* says) {
    auto r = c->Send("POST", route, body);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 400) << body << " -> " << r->body;
    EXPECT_NE(r->body.find(says), std::string::npos) << body << " -> " << r->body;
  };
  const char* ckpt = "/v2/jobs/checkpoint";
  const char* rst = "/v2/jobs/restore";
  expect_400(ckpt, R"({"pid": 42, "manage_cgroups_mode": "hard"})", "'manage_cgroups_mode' must be one of");
  expect_400(ckpt, R"({"pid": 42, "manage_cgroups": false, "manage_cgroups_mode": "full"})", "contradicts");
  expect_400(ckpt, R"({"pid": 42, "network_lock": "pf"})", "'network_lock' must be one of");
  expect_400(ckpt, R"({"pid": 42, "evasive_devices": "yes"})", "'evasive_devices' must be a boolean");
  expect_400(ckpt, R"({"pid": 42, "enable_fs": ["fuse", "Bad/Name"]})", "not a filesystem type name");
  expect_400(ckpt, R"({"pid": 42, "enable_fs": "fuse"})", "'enable_fs' must be an array");
  expect_400(ckpt, R"({"pid": 42, "external": ["mnt[a]:b", ""]})", "'external' must be an array");
  expect_400(ckpt, R"({"pid": 42, "external": ["mnt[a]:b\nx"]})", "line breaks");
  expect_400(ckpt, R"({"container": {"id": "c"}, "manage_cgroups_mode": "soft", "evasive_devices": true})",
             "'manage_cgroups_mode', 'evasive_devices' are for processes");
  expect_400(rst, R"({"checkpoint_id": "x", "lsm_profile": "smack:x"})", "apparmor:<profile>");
  expect_400(rst, R"({"checkpoint_id": "x", "lsm_profile": "apparmor:"})", "apparmor:<profile>");
  expect_400(rst, R"({"checkpoint_id": "x", "network_lock": 1})", "'network_lock' must be a string");
  expect_400(rst, R"({"checkpoint_id": "x", "container": {"id": "c", "bundle": "/b"}, "lsm_profile": "apparmor:p"})",
             "are for processes");
  expect_400(rst, R"({"checkpoint_id": "x", "inherit_fd": [{"key": "file[1:2]"}]})", "'inherit_fd' must be");
  expect_400(rst, R"({"checkpoint_id": "x", "inherit_fd": [{"key": "k", "path": "rel/p"}]})", "absolute path");
  expect_400(rst, R"({"checkpoint_id": "x", "inherit_fd": [{"key": "k", "path": "/p", "mode": "x"}]})",
             "'inherit_fd' must be");
  expect_400(rst, R"({"checkpoint_id": "x", "inherit_fd": [{"key": "k", "path": "/p", "fd": 3}]})", "unknown fields");
  expect_400(rst, R"({"checkpoint_id": "x", "console_socket": "sock"})", "absolute path");
  expect_400(ckpt, R"({"container": {"id": "c"}, "orphan_pts_master": true})", "'orphan_pts_master' are for processes");

  auto ok = c->Send("POST", ckpt,
                    R"({"pid": 42, "manage_cgroups": true, "network_lock": "skip", "evasive_devices": true,
                        "enable_fs": ["fuse", "nfs4"], "external": ["mnt[/data]:data"]})");
  ASSERT_TRUE(ok.ok());
  ASSERT_EQ(ok->status, 202) << ok->body;
  EXPECT_EQ(jobs_.last_checkpoint().manage_cgroups_mode, "soft");
  EXPECT_EQ(jobs_.last_checkpoint().network_lock, "skip");
  EXPECT_TRUE(jobs_.last_checkpoint().evasive_devices);
  EXPECT_EQ(jobs_.last_checkpoint().enable_fs, (std::vector<std::string>{"fuse", "nfs4"}));
  EXPECT_EQ(jobs_.last_checkpoint().external, (std::vector<std::string>{"mnt[/data]:data"}));
  ok = c->Send("POST", ckpt, R"({"pid": 42, "manage_cgroups_mode": "strict"})");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(jobs_.last_checkpoint().manage_cgroups_mode, "strict");
  EXPECT_EQ(jobs_.last_checkpoint().network_lock, "nftables");

  auto r = c->Send("POST", rst,
                   R"({"checkpoint_id": "x", "manage_cgroups_mode": "ignore", "network_lock": "iptables",
                       "lsm_profile": "apparmor:unconfined", "external": ["mnt[k]:/srv/k"]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503) << "passed to the service, which refused: " << r->body;
  EXPECT_EQ(jobs_.last_restore().manage_cgroups_mode, std::optional<std::string>("ignore"));
  EXPECT_EQ(jobs_.last_restore().network_lock, std::optional<std::string>("iptables"));
  EXPECT_EQ(jobs_.last_restore().lsm_profile, "apparmor:unconfined");
  EXPECT_EQ(jobs_.last_restore().external, (std::vector<std::string>{"mnt[k]:/srv/k"}));
  r = c->Send("POST", rst,
              R"({"checkpoint_id": "x", "inherit_fd": [{"key": "file[1a:2b]", "path": "/srv/f", "mode": "r"},
                                                        {"key": "pipe:[7]", "path": "/srv/p"}],
                  "console_socket": "/srv/console.sock"})");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(jobs_.last_restore().inherit_fd.size(), 2u);
  EXPECT_EQ(jobs_.last_restore().inherit_fd[0].key, "file[1a:2b]");
  EXPECT_EQ(jobs_.last_restore().inherit_fd[0].mode, "r");
  EXPECT_EQ(jobs_.last_restore().inherit_fd[1].path, "/srv/p");
  EXPECT_EQ(jobs_.last_restore().inherit_fd[1].mode, "rw");
  EXPECT_EQ(jobs_.last_restore().console_socket, "/srv/console.sock");
  r = c->Send("POST", rst, R"({"checkpoint_id": "x"})");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(jobs_.last_restore().manage_cgroups_mode.has_value()) << "unset: the checkpoint's own";
  EXPECT_FALSE(jobs_.last_restore().network_lock.has_value());
}

}  // namespace
}  // namespace ckptd::api

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
    std::string id = "job-" + std::to_string(++n_);
    jobs_[id] = json::object{{"id", id}, {"state", "running"}, {"pid", req.pid}};
    return JobSubmitted{id, "ckpt-" + id};
  }
  Result<JobSubmitted> SubmitRestore(const RestoreJobRequest&) override { return Unavailable("no"); }
  Result<json::value> GetJob(std::string_view id) const override {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(std::string(id));
    if (it == jobs_.end()) return NotFound("no job");
    return json::value(it->second);
  }
  Result<json::value> WaitJob(std::string_view id, std::chrono::milliseconds) override { return GetJob(id); }
  Result<json::array> ListJobs(size_t) const override { return json::array{}; }
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

}  // namespace
}  // namespace ckptd::api

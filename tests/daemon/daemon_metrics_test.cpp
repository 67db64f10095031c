// GET /metrics: valid Prometheus text whose counters follow the API.
#include <chrono>
#include <thread>

#include "tests/testing/daemon_fixture.h"
#include "tests/testing/prom_parser.h"

namespace ckptd {
namespace {

using testing::DaemonFixture;

class MetricsTest : public DaemonFixture {
 protected:
  testing::PromParse Scrape() {
    auto r = Client()->Send("GET", "/metrics");
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->Header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    auto p = testing::ParsePrometheusText(r->body);
    EXPECT_TRUE(p.error.empty()) << p.error;
    return p;
  }
  // A request is counted when its response has been written, which the
  // client can see before the server's write completion runs: scrape until
  // `ready` holds (at most 5 s), then once more for the caller.
  template <class Pred>
  testing::PromParse ScrapeWhen(Pred ready) {
    for (int i = 0; i < 100; ++i) {
      auto p = Scrape();
      if (ready(p)) return p;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return Scrape();
  }
};

TEST_F(MetricsTest, NeedsTheToken) { EXPECT_EQ(Client("")->Send("GET", "/metrics")->status, 401); }

TEST_F(MetricsTest, RequestAndCheckpointCountersMove) {
  auto before = Scrape();
  EXPECT_EQ(before.Value("ckptd_checkpoints", {{"status", "initializing"}}), 0);
  EXPECT_EQ(before.Value("ckptd_build_info"), 1);
  EXPECT_GE(before.Value("ckptd_rocksdb_size_bytes"), 0);

  std::string a = Client()->Send("POST", "/v2/checkpoints")->body;
  std::string b = Client()->Send("POST", "/v2/checkpoints")->body;
  ASSERT_EQ(Client()->Send("PATCH", "/v2/checkpoints/deprecate/" + b)->status, 200);
  ASSERT_EQ(Client()->Send("GET", "/v2/checkpoints/nope")->status, 400);

  auto after = ScrapeWhen([](const testing::PromParse& p) {
    return p.Value("ckptd_http_requests_total",
                   {{"method", "GET"}, {"route", "/v2/checkpoints/{id}"}, {"status", "400"}}) >= 1 &&
           p.Value("ckptd_http_requests_total",
                   {{"method", "POST"}, {"route", "/v2/checkpoints"}, {"status", "200"}}) >= 2;
  });
  EXPECT_EQ(after.Value("ckptd_checkpoints", {{"status", "initializing"}}), 1);
  EXPECT_EQ(after.Value("ckptd_checkpoints", {{"status", "deprecated"}}), 1);
  EXPECT_EQ(
      after.Value("ckptd_http_requests_total", {{"method", "POST"}, {"route", "/v2/checkpoints"}, {"status", "200"}}),
      2);
  EXPECT_EQ(after.Value("ckptd_http_requests_total",
                        {{"method", "GET"}, {"route", "/v2/checkpoints/{id}"}, {"status", "400"}}),
            1);
  EXPECT_GE(
      after.Value("ckptd_http_request_duration_seconds_count", {{"method", "POST"}, {"route", "/v2/checkpoints"}}), 2);
  EXPECT_EQ(after.types["ckptd_http_request_duration_seconds"], "histogram");

  // Agent get-tuples: the first reads RocksDB, the second memory.
  std::string put = R"({"thread_id":"t","checkpoint_id":"c1","checkpoint":{"id":"c1"}})";
  ASSERT_EQ(Client()->Send("POST", "/checkpoints/put", put)->status, 200);
  for (int i = 0; i < 2; ++i)
    ASSERT_EQ(Client()->Send("POST", "/checkpoints/get-tuple", R"({"thread_id":"t"})")->status, 200);
  auto agent = Scrape();
  EXPECT_GE(agent.Value("ckptd_agent_tuple_cache_misses_total"), 1);
  EXPECT_GE(agent.Value("ckptd_agent_tuple_cache_hits_total"), 1);
  EXPECT_GT(agent.Value("ckptd_agent_tuple_cache_bytes"), 0);
  EXPECT_EQ(agent.types["ckptd_agent_tuple_cache_hits_total"], "counter");

  // The status gauges are rebuilt from the catalog after a restart.
  RestartDaemon();
  auto restarted = Scrape();
  EXPECT_EQ(restarted.Value("ckptd_checkpoints", {{"status", "initializing"}}), 1);
  EXPECT_EQ(restarted.Value("ckptd_checkpoints", {{"status", "deprecated"}}), 1);
}

}  // namespace
}  // namespace ckptd

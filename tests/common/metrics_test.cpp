#include "common/metrics.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/testing/prom_parser.h"

namespace ckptd {
namespace {

TEST(Metrics, RendersValidPrometheusText) {
  MetricsRegistry reg;
  reg.GetCounter("ckptd_http_requests_total", "Requests", {{"route", "/v2/checkpoints"}, {"status", "200"}})->Inc(3);
  reg.GetCounter("ckptd_http_requests_total", "Requests", {{"route", "/x\"y\\z\n"}, {"status", "404"}})->Inc();
  reg.GetGauge("ckptd_checkpoints", "By status", {{"status", "ready"}})->Set(7);
  auto* h = reg.GetHistogram("ckptd_phase_duration_seconds", "Phases", {{"phase", "dump"}}, {0.1, 1, 10});
  h->Observe(0.05);
  h->Observe(0.5);
  h->Observe(50);
  double collected = 0;
  reg.AddCollector([&] { reg.GetGauge("ckptd_rocksdb_size_bytes", "Size")->Set(++collected); });

  auto text = reg.Render();
  auto p = testing::ParsePrometheusText(text);
  ASSERT_TRUE(p.error.empty()) << p.error << "\n" << text;
  EXPECT_EQ(p.types["ckptd_http_requests_total"], "counter");
  EXPECT_EQ(p.types["ckptd_phase_duration_seconds"], "histogram");
  EXPECT_EQ(p.Value("ckptd_http_requests_total", {{"status", "200"}}), 3);
  EXPECT_EQ(p.Value("ckptd_http_requests_total", {{"route", "/x\"y\\z\n"}}), 1);
  EXPECT_EQ(p.Value("ckptd_checkpoints", {{"status", "ready"}}), 7);
  EXPECT_EQ(p.Value("ckptd_phase_duration_seconds_bucket", {{"le", "0.1"}}), 1);
  EXPECT_EQ(p.Value("ckptd_phase_duration_seconds_bucket", {{"le", "1"}}), 2);
  EXPECT_EQ(p.Value("ckptd_phase_duration_seconds_bucket", {{"le", "10"}}), 2);
  EXPECT_EQ(p.Value("ckptd_phase_duration_seconds_count"), 3);
  EXPECT_DOUBLE_EQ(p.Value("ckptd_phase_duration_seconds_sum"), 50.55);
  EXPECT_EQ(p.Value("ckptd_rocksdb_size_bytes"), 1);
  EXPECT_EQ(testing::ParsePrometheusText(reg.Render()).Value("ckptd_rocksdb_size_bytes"), 2);
}

TEST(Metrics, SameSeriesSamePointerAndConcurrentIncrements) {
  MetricsRegistry reg;
  auto* a = reg.GetCounter("c_total", "c", {{"k", "v"}});
  EXPECT_EQ(a, reg.GetCounter("c_total", "c", {{"k", "v"}}));
  EXPECT_NE(a, reg.GetCounter("c_total", "c", {{"k", "w"}}));
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) a->Inc();
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(a->Value(), 80000);
}

TEST(Metrics, RaiseToNeverLowersACounter) {
  MetricsRegistry reg;
  auto* c = reg.GetCounter("kept_elsewhere_total", "c");
  c->RaiseTo(5);
  EXPECT_EQ(c->Value(), 5);
  c->RaiseTo(3);  // a scrape that read the count earlier
  EXPECT_EQ(c->Value(), 5);
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) c->RaiseTo(i * 4 + t);
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(c->Value(), 3999);
}

TEST(Metrics, ParserRejectsBrokenText) {
  EXPECT_FALSE(testing::ParsePrometheusText("x 1\n").error.empty());  // no TYPE
  EXPECT_FALSE(testing::ParsePrometheusText("# TYPE x gauge\nx{a=b} 1\n").error.empty());
  EXPECT_FALSE(testing::ParsePrometheusText("# TYPE x gauge\nx one\n").error.empty());
  EXPECT_FALSE(testing::ParsePrometheusText("# TYPE 1x gauge\n1x 1\n").error.empty());
}

}  // namespace
}  // namespace ckptd

// Durable writes under many connections: p50/p99 latency and ops/s of a
// Cedana create, an info + uploaded pair and an agent put, each from
// --clients keep-alive connections, with group commit off (every write
// fsyncs on its handler thread: the behaviour before group commit) and on,
// side by side. Rounds alternate the two modes on fresh data directories;
// the figures are medians over rounds. Prints figures; no pass/fail.
//
//   ckptd_durable_bench [--clients 64] [--seconds 3] [--rounds 3] [--handler-threads 8] [--data-dir DIR]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include "api/client.h"
#include "daemon/daemon.h"
#include "tests/testing/test_util.h"

namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

struct Figures {
  double ops_per_s = 0, p50_ms = 0, p99_ms = 0;
  long errors = 0;
};

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return v[i];
}

double Median(std::vector<double> v) { return Percentile(std::move(v), 0.5); }

// Runs `op(client, i)` (true on success) on every connection for `seconds`;
// one latency sample per op.
template <typename Op>
Figures Measure(int clients, double seconds, Op op) {
  std::vector<std::vector<double>> samples(clients);
  std::atomic<long> errors{0};
  auto start = Clock::now();
  auto deadline = start + std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      for (long i = 0; Clock::now() < deadline; ++i) {
        auto t0 = Clock::now();
        bool ok = op(c, i);
        samples[c].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        if (!ok) errors.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& s : samples) all.insert(all.end(), s.begin(), s.end());
  Figures f;
  f.ops_per_s = static_cast<double>(all.size()) / secs;
  f.p50_ms = Percentile(all, 0.50);
  f.p99_ms = Percentile(all, 0.99);
  f.errors = errors;
  return f;
}

std::string AgentPut(int client, long i) {
  std::string thread = fmt::format("thread-{:03}", client);
  std::string id = fmt::format("1ef{:012}", i);
  json::object body{
      {"thread_id", thread},
      {"checkpoint_ns", ""},
      {"checkpoint_id", id},
      {"parent_checkpoint_id", nullptr},
      {"checkpoint",
       {{"v", 4},
        {"id", id},
        {"ts", "2025-01-01T00:00:00+00:00"},
        {"channel_versions", {{"messages", id}}},
        {"versions_seen", json::object{}},
        {"channel_values", json::object{}}}},
      {"metadata", {{"step", i}}},
      {"blobs", json::array{json::object{
                    {"channel", "messages"}, {"version", id}, {"type", "json"}, {"blob", "ImhlbGxvIg=="}}}}};
  return json::serialize(body);
}

// One round in one mode: a fresh daemon, the three workloads in turn.
std::map<std::string, Figures> Round(bool group_commit, int clients, int handler_threads, double seconds,
                                     const std::string& parent) {
  ckptd::testing::TempDir dir("ckptd-durable-bench",
                              parent.empty() ? std::filesystem::temp_directory_path() : std::filesystem::path(parent));
  ckptd::Config cfg;
  cfg.listen = "127.0.0.1:0";
  cfg.data_dir = dir.path().string();
  cfg.handler_threads = handler_threads;
  cfg.group_commit = group_commit ? "true" : "false";
  cfg.cleanup_interval_s = 0;
  ckptd::Daemon daemon(cfg);
  if (auto st = daemon.Start(); !st.ok()) {
    fmt::print(stderr, "daemon: {}\n", st.ToString());
    std::exit(1);
  }
  std::string base = fmt::format("http://127.0.0.1:{}", daemon.port());
  std::vector<std::unique_ptr<ckptd::api::HttpClient>> conns;
  for (int c = 0; c < clients; ++c) conns.push_back(ckptd::api::HttpClient::Create(base, daemon.token()).value());
  auto send = [&](int c, const char* method, const std::string& path, const std::string& body, std::string* out) {
    auto r = conns[c]->Send(method, path, body);
    if (!r.ok() || r->status != 200) return false;
    if (out) *out = r->body;
    return true;
  };

  std::map<std::string, Figures> out;
  std::vector<std::vector<std::string>> created(clients);
  out["create"] = Measure(clients, seconds, [&](int c, long) {
    std::string id;
    bool ok = send(c, "POST", "/v2/checkpoints", "{}", &id);
    if (ok) created[c].push_back(id);
    return ok;
  });
  // info + uploaded: one sample is the pair, on records created above.
  out["info+uploaded"] = Measure(clients, seconds, [&](int c, long i) {
    if (static_cast<size_t>(i) >= created[c].size()) return send(c, "POST", "/v2/checkpoints", "{}", nullptr);
    const std::string& id = created[c][i];
    return send(c, "PUT", "/v2/checkpoints/info/" + id, R"({"gpu":"none","platform":"linux/amd64","info":{}})",
                nullptr) &&
           send(c, "POST", "/v2/checkpoints/uploaded/" + id, R"({"restore_path":"file:///tmp/x/)" + id + R"(/"})",
                nullptr);
  });
  out["agent put"] = Measure(
      clients, seconds, [&](int c, long i) { return send(c, "POST", "/checkpoints/put", AgentPut(c, i), nullptr); });
  daemon.Stop();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"durable-write latency, group commit off and on"};
  int clients = 64, rounds = 3, handler_threads = 8;
  double seconds = 3;
  std::string data_dir;
  app.add_option("--clients", clients, "concurrent keep-alive connections");
  app.add_option("--seconds", seconds, "duration of each workload in each round");
  app.add_option("--rounds", rounds, "rounds; each runs both modes, in alternating order");
  app.add_option("--handler-threads", handler_threads, "the daemon's handler_threads (default as shipped)");
  app.add_option("--data-dir", data_dir, "parent of the rounds' data directories (default: the temp dir)");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  // mode -> workload -> per-round figures
  std::map<bool, std::map<std::string, std::vector<Figures>>> all;
  for (int r = 0; r < rounds; ++r) {
    for (bool group : r % 2 ? std::vector<bool>{true, false} : std::vector<bool>{false, true}) {
      for (auto& [name, f] : Round(group, clients, handler_threads, seconds, data_dir)) {
        all[group][name].push_back(f);
        if (f.errors) fmt::print(stderr, "  ({} failed requests in {})\n", f.errors, name);
      }
    }
  }
  fmt::print("durable writes, {} connections, handler_threads {}, {} rounds of {} s, medians\n", clients,
             handler_threads, rounds, seconds);
  fmt::print("{:<15} {:>22} {:>22} {:>22}   {:>8} {:>8}\n", "", "one fsync each", "group commit", "", "ops x", "p99 x");
  fmt::print("{:<15} {:>8} {:>6} {:>6}   {:>8} {:>6} {:>6}\n", "workload", "ops/s", "p50", "p99", "ops/s", "p50",
             "p99");
  for (const char* name : {"create", "info+uploaded", "agent put"}) {
    auto med = [&](bool group, auto field) {
      std::vector<double> v;
      for (const auto& f : all[group][name]) v.push_back(f.*field);
      return Median(v);
    };
    double ops0 = med(false, &Figures::ops_per_s), ops1 = med(true, &Figures::ops_per_s);
    double p99_0 = med(false, &Figures::p99_ms), p99_1 = med(true, &Figures::p99_ms);
    fmt::print("{:<15} {:>8.0f} {:>6.2f} {:>6.2f}   {:>8.0f} {:>6.2f} {:>6.2f}   {:>8.2f} {:>8.2f}\n", name, ops0,
               med(false, &Figures::p50_ms), p99_0, ops1, med(true, &Figures::p50_ms), p99_1, ops1 / ops0,
               p99_1 / p99_0);
  }
  fmt::print("(latencies in ms; ops x and p99 x are group commit over one fsync each)\n");
  return 0;
}

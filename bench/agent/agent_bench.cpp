// Agent-state checkpoint API throughput: put, put-writes, get-tuple and list
// (with and without a metadata filter) from N concurrent clients over
// loopback HTTP against an in-process daemon, with --count checkpoints
// stored (100 per thread). Prints operations per second; no pass/fail.
// Last, a LangGraph list (limit 10, with values and pending writes) as
// list + get-tuple per item against one list with "include".
//
//   ckptd_agent_bench [--count 100000] [--clients 16] [--seconds 5] [--data-dir DIR]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include "api/agent_validation.h"
#include "api/client.h"
#include "daemon/daemon.h"
#include "tests/testing/test_util.h"

namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
constexpr int kPerThread = 100;

std::string ThreadId(int t) { return fmt::format("thread-{:06}", t); }
std::string CheckpointId(int i) { return fmt::format("1ef{:012}", i); }

// Checkpoint i belongs to thread i % threads at step i / threads: ids grow
// with the step within a thread, and consecutive puts go to different threads
// (as many agents checkpointing at once do).
std::string PutBody(int i, int threads) {
  int thread = i % threads, step = i / threads;
  std::string id = CheckpointId(i);
  std::string version = fmt::format("{:032}.1", step + 1);
  json::object cp{{"v", 4},
                  {"id", id},
                  {"ts", "2025-01-01T00:00:00+00:00"},
                  {"channel_versions", {{"messages", version}, {"__start__", "00000000000000000000000000000001.1"}}},
                  {"versions_seen", json::object{}},
                  {"channel_values", json::object{}}};
  json::object meta{{"source", step % 10 == 0 ? "input" : "loop"}, {"step", step}, {"writes", {{"agent", step}}}};
  std::string blob(256, static_cast<char>('a' + step % 26));
  json::object body{
      {"thread_id", ThreadId(thread)},
      {"checkpoint_id", id},
      {"parent_checkpoint_id", step ? json::value(CheckpointId(i - threads)) : json::value(nullptr)},
      {"checkpoint", cp},
      {"metadata", meta},
      {"blobs", json::array{json::object{{"channel", "messages"},
                                         {"version", version},
                                         {"type", "json"},
                                         {"blob", ckptd::api::agent::EncodeBase64("\"" + blob + "\"")}}}}};
  return json::serialize(body);
}

// Runs `fn(client_index, op_index)` on `clients` threads until `total` ops
// are done (total > 0) or `seconds` pass; returns ops/s.
template <typename Fn>
double Run(int clients, long total, double seconds, Fn fn, long* done_out) {
  std::atomic<long> next{0}, done{0}, errors{0};
  auto start = Clock::now();
  auto deadline = start + std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      std::mt19937 rng(c * 7919 + 1);
      for (;;) {
        long i = next.fetch_add(1);
        if (total > 0 ? i >= total : Clock::now() >= deadline) break;
        if (fn(c, i, rng))
          done.fetch_add(1);
        else
          errors.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  if (errors) fmt::print(stderr, "  ({} failed requests)\n", errors.load());
  *done_out = done;
  return done / secs;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"agent-state checkpoint API throughput"};
  int count = 100000, clients = 16;
  double seconds = 5;
  std::string data_dir;
  app.add_option("--count", count, "checkpoints to store (100 per thread)");
  app.add_option("--clients", clients, "concurrent HTTP clients");
  app.add_option("--seconds", seconds, "duration of each read/write phase after the load");
  app.add_option("--data-dir", data_dir, "where RocksDB goes (default: a fresh temp dir, removed after)");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  std::optional<ckptd::testing::TempDir> temp;  // removed at the end
  if (data_dir.empty()) {
    temp.emplace("ckptd-agent-bench");
    data_dir = temp->path().string();
  }
  ckptd::Config cfg;
  cfg.listen = "127.0.0.1:0";
  cfg.data_dir = data_dir;
  cfg.handler_threads = std::max(8, clients);
  ckptd::Daemon daemon(cfg);
  if (auto st = daemon.Start(); !st.ok()) {
    fmt::print(stderr, "daemon: {}\n", st.ToString());
    return 1;
  }
  std::string base = fmt::format("http://127.0.0.1:{}", daemon.port());
  std::vector<std::unique_ptr<ckptd::api::HttpClient>> conns;
  for (int c = 0; c < clients; ++c) conns.push_back(ckptd::api::HttpClient::Create(base, daemon.token()).value());
  int threads = std::max(1, count / kPerThread);
  auto post = [&](int c, const std::string& path, const std::string& body, int expect) {
    auto r = conns[c]->Send("POST", path, body);
    return r.ok() && r->status == expect;
  };

  fmt::print("ckptd agent-state API, {} clients over loopback, {} checkpoints in {} threads\n", clients, count,
             threads);
  long n = 0;
  double put = Run(
      clients, count, 0,
      [&](int c, long i, std::mt19937&) {
        return post(c, "/checkpoints/put", PutBody(static_cast<int>(i), threads), 200);
      },
      &n);
  fmt::print("  {:<28} {:>10.0f} ops/s  ({} ops, one 256-byte blob each, synced)\n", "put", put, n);

  double writes = Run(
      clients, 0, seconds,
      [&](int c, long i, std::mt19937& rng) {
        int k = static_cast<int>(rng() % count);
        json::array ws;
        for (int idx = 0; idx < 2; ++idx)
          ws.push_back(json::object{{"task_id", fmt::format("task-{}", i)},
                                    {"idx", idx},
                                    {"channel", "messages"},
                                    {"type", "json"},
                                    {"blob", "WyJoaSJd"}});
        json::object body{{"thread_id", ThreadId(k % threads)},
                          {"checkpoint_id", CheckpointId(k)},
                          {"writes", ws},
                          {"upsert", false}};
        return post(c, "/checkpoints/put-writes", json::serialize(body), 204);
      },
      &n);
  fmt::print("  {:<28} {:>10.0f} ops/s  ({} ops, 2 writes each, synced)\n", "put-writes", writes, n);

  double get = Run(
      clients, 0, seconds,
      [&](int c, long, std::mt19937& rng) {
        int k = static_cast<int>(rng() % count);
        json::object body{{"thread_id", ThreadId(k % threads)}, {"checkpoint_id", CheckpointId(k)}};
        return post(c, "/checkpoints/get-tuple", json::serialize(body), 200);
      },
      &n);
  fmt::print("  {:<28} {:>10.0f} ops/s  ({} ops, with blobs and writes)\n", "get-tuple", get, n);

  double list = Run(
      clients, 0, seconds,
      [&](int c, long, std::mt19937& rng) {
        json::object body{{"thread_id", ThreadId(static_cast<int>(rng() % threads))}, {"limit", 10}};
        return post(c, "/checkpoints/list", json::serialize(body), 200);
      },
      &n);
  fmt::print("  {:<28} {:>10.0f} ops/s  ({} ops, limit 10)\n", "list", list, n);

  double listf = Run(
      clients, 0, seconds,
      [&](int c, long, std::mt19937& rng) {
        json::object body{{"thread_id", ThreadId(static_cast<int>(rng() % threads))},
                          {"limit", 10},
                          {"filter_metadata", {{"source", "input"}}}};
        return post(c, "/checkpoints/list", json::serialize(body), 200);
      },
      &n);
  fmt::print("  {:<28} {:>10.0f} ops/s  ({} ops, limit 10, 1 in 10 matches)\n", "list + filter_metadata", listf, n);

  // What a LangGraph saver needs for list(limit=10): each item with its
  // values and pending writes. As the spec's list allows it (the list, then
  // get-tuple per item) against one list with our "include". Rounds
  // alternate; medians.
  auto lg_list = [&](bool include) {
    return [&, include](int c, long, std::mt19937& rng) {
      json::object body{{"thread_id", ThreadId(static_cast<int>(rng() % threads))}, {"limit", 10}};
      if (include) body["include"] = json::array{"values", "pending_writes"};
      auto r = conns[c]->Send("POST", "/checkpoints/list", json::serialize(body));
      if (!r.ok() || r->status != 200) return false;
      if (include) return true;
      json::value items = json::parse(r->body);
      for (const auto& it : items.as_array()) {
        json::object q{{"thread_id", it.at("thread_id")}, {"checkpoint_id", it.at("checkpoint_id")}};
        if (!post(c, "/checkpoints/get-tuple", json::serialize(q), 200)) return false;
      }
      return true;
    };
  };
  std::vector<double> split, joined;
  for (int round = 0; round < 3; ++round) {
    for (bool include : {round % 2 == 1, round % 2 == 0})
      (include ? joined : split).push_back(Run(clients, 0, seconds / 3, lg_list(include), &n));
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  double ls = median(split), lj = median(joined);
  fmt::print("  {:<28} {:>10.0f} lists/s  (list + 10 get-tuple requests; median of 3)\n", "LangGraph list, 1 + N", ls);
  fmt::print("  {:<28} {:>10.0f} lists/s  (one list request; median of 3; x{:.2f})\n",
             "LangGraph list, include", lj, lj / ls);

  conns.clear();
  daemon.Stop();
  return 0;
}

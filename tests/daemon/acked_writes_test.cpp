// Group commit under the failure that matters: the real daemon SIGKILLed in
// the middle of concurrent writes from many connections. Every write the
// daemon acknowledged (a created checkpoint, an agent put) is there after a
// restart on the same data; acknowledgements come only after the write.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "api/client.h"
#include "tests/testing/daemon_process.h"
#include "tests/testing/test_util.h"

namespace ckptd {
namespace {

namespace json = boost::json;

std::string AgentPut(const std::string& thread, const std::string& id) {
  json::object body{
      {"thread_id", thread},
      {"checkpoint_ns", ""},
      {"checkpoint_id", id},
      {"parent_checkpoint_id", nullptr},
      {"checkpoint", {{"v", 4}, {"id", id}, {"channel_versions", {{"x", id}}}}},
      {"metadata", json::object{}},
      {"blobs", json::array{json::object{{"channel", "x"}, {"version", id}, {"type", "json"}, {"blob", "MQ=="}}}}};
  return json::serialize(body);
}

TEST(AckedWritesTest, EveryAcknowledgedWriteSurvivesAKillDuringConcurrentWrites) {
  testing::TempDir dir;
  testing::DaemonChild::Options o;
  o.log = dir.File("ckptd.log");
  o.timeout = std::chrono::seconds(30);
  o.client_timeout = std::chrono::seconds(10);
  testing::DaemonChild child;
  ASSERT_GE(child.Start(dir.path(), o), 0) << testing::ReadFileText(o.log);
  std::string base = fmt::format("http://127.0.0.1:{}", child.port());
  std::string token = testing::ReadFileText(dir.File("token"));
  while (!token.empty() && (token.back() == '\n' || token.back() == ' ')) token.pop_back();

  constexpr int kClients = 16;
  std::mutex mu;
  std::vector<std::string> created;                       // acknowledged creates
  std::vector<std::pair<std::string, std::string>> puts;  // acknowledged (thread, id)
  std::atomic<int> acked{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      auto client = api::HttpClient::Create(base, token, std::chrono::seconds(10));
      if (!client.ok()) return;
      std::string thread = fmt::format("thread-{}", c);
      for (int i = 0;; ++i) {
        auto r = (*client)->Send("POST", "/v2/checkpoints", "{}");
        if (!r.ok()) return;  // the daemon is gone
        if (r->status == 200) {
          std::lock_guard l(mu);
          created.push_back(r->body);
        }
        std::string id = fmt::format("1ef{:08}", i);
        auto p = (*client)->Send("POST", "/checkpoints/put", AgentPut(thread, id));
        if (!p.ok()) return;
        if (p->status == 200) {
          std::lock_guard l(mu);
          puts.emplace_back(thread, id);
        }
        acked.fetch_add(1);
      }
    });
  }
  // Kill once the writers are well under way.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (acked.load() < 400 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  child.process()->Signal(SIGKILL);
  for (auto& t : clients) t.join();
  ASSERT_GE(acked.load(), 400);

  testing::DaemonChild again;
  ASSERT_GE(again.Start(dir.path(), o), 0) << testing::ReadFileText(o.log);
  for (const auto& id : created) {
    int status = 0;
    again.Call("GET", "/v2/checkpoints/" + id, {}, &status);
    ASSERT_EQ(status, 200) << "acknowledged checkpoint " << id << " is gone";
  }
  for (const auto& [thread, id] : puts) {
    int status = 0;
    json::value t = again.Call("POST", "/checkpoints/get-tuple",
                               {{"thread_id", thread}, {"checkpoint_ns", ""}, {"checkpoint_id", id}}, &status);
    ASSERT_EQ(status, 200);
    ASSERT_TRUE(t.is_object()) << "acknowledged put " << thread << "/" << id << " is gone";
  }
}

}  // namespace
}  // namespace ckptd

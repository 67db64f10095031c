// A LangGraph-style client round trip, persistence across a restart, and
// the thread state at a checkpoint.
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/testing/agent_fixture.h"

namespace ckptd {
namespace {

namespace json = boost::json;
using testing::AgentApiFixture;

// What a client put, kept the way a client would keep it.
struct Expected {
  json::object put;               // the /checkpoints/put body
  std::map<std::string, json::object> blobs;  // channel -> BlobData in force at this checkpoint
  std::vector<json::object> writes;           // by (task_id, idx)
};

class AgentRoundTripTest : public AgentApiFixture {
 protected:
  // Two threads x two namespaces, a chain of 6 checkpoints each: channel
  // "messages" changes every step, "counter" every other step, "config"
  // once; each checkpoint gets two tasks' writes.
  void PutEverything() {
    for (std::string thread : {"thread-A", "thread-B"}) {
      for (std::string ns : {"", "child:task-1"}) {
        std::map<std::string, json::object> live;
        std::map<std::string, std::string> versions;
        std::string parent;
        for (int step = 0; step < 6; ++step) {
          std::string id = fmt::format("1ef{:02d}-{}", step, thread.back());
          json::array blobs;
          auto change = [&](const std::string& ch, const std::string& type, const std::string& data) {
            std::string v = fmt::format("{:032}.{}", step + 1, 0.25 * step);
            versions[ch] = v;
            json::object b = Blob(ch, v, type, data);
            live[ch] = b;
            blobs.push_back(b);
          };
          change("messages", "json", fmt::format("[\"{}-{}-{}\"]", thread, ns, step));
          if (step % 2 == 0) change("counter", "msgpack", std::string(1, static_cast<char>(step)) + '\0');
          if (step == 0) change("config", "json", "{\"model\":\"x\"}");
          json::object cv;
          for (const auto& [ch, v] : versions) cv[ch] = v;
          json::object meta{{"source", step == 0 ? "input" : "loop"}, {"step", step - 1},
                            {"parents", json::object{{"", ns.empty() ? "" : "root"}}},
                            {"thread", thread}};
          json::object body{{"thread_id", thread}, {"checkpoint_ns", ns}, {"checkpoint_id", id},
                            {"parent_checkpoint_id", parent.empty() ? json::value(nullptr) : json::value(parent)},
                            {"checkpoint", CheckpointJson(id, cv)}, {"metadata", meta}, {"blobs", blobs}};
          auto r = Post("/checkpoints/put", body);
          ASSERT_EQ(r.status, 200) << r.raw;
          Expected e{body, live, {}};
          std::vector<json::object> writes;
          for (std::string task : {"task-b", "task-a"}) {
            json::array ws;
            for (int idx : {1, 0}) {
              json::object w = Write(task, idx, "messages", "json", fmt::format("\"{}{}\"", task, idx));
              w["task_path"] = "~__pregel_pull, " + task;
              ws.push_back(w);
              writes.push_back(w);
            }
            ASSERT_EQ(PutWrites(thread, ns, id, ws).status, 204);
          }
          std::sort(writes.begin(), writes.end(), [](const json::object& a, const json::object& b) {
            return std::pair(a.at("task_id").as_string(), a.at("idx").as_int64()) <
                   std::pair(b.at("task_id").as_string(), b.at("idx").as_int64());
          });
          e.writes = writes;
          expected_[{thread, ns}].push_back(std::move(e));
          parent = id;
        }
      }
    }
  }

  void CheckEverything() {
    for (const auto& [key, chain] : expected_) {
      const auto& [thread, ns] = key;
      for (const auto& e : chain) {
        auto r = GetTuple(thread, ns, e.put.at("checkpoint_id"));
        ASSERT_EQ(r.status, 200) << r.raw;
        const auto& t = r.body.as_object();
        for (const char* f : {"thread_id", "checkpoint_ns", "checkpoint_id", "parent_checkpoint_id", "checkpoint",
                              "metadata"}) {
          EXPECT_EQ(t.at(f), e.put.at(f)) << thread << "/" << ns << " " << f;
        }
        json::array want_blobs;
        // get-tuple lists blobs in channel_versions order (here: sorted names).
        for (const auto& [ch, b] : e.blobs) want_blobs.push_back(b);
        EXPECT_EQ(t.at("blobs"), json::value(want_blobs)) << thread << "/" << ns;
        json::array want_writes;
        for (const auto& w : e.writes) want_writes.push_back(w);
        EXPECT_EQ(t.at("pending_writes"), json::value(want_writes));
      }
      // Latest is the end of the chain; list gives the chain newest first.
      EXPECT_EQ(GetTuple(thread, ns).body.at("checkpoint_id"), chain.back().put.at("checkpoint_id"));
      auto list = Post("/checkpoints/list", json::object{{"thread_id", thread}, {"checkpoint_ns", ns}});
      ASSERT_EQ(list.body.as_array().size(), chain.size());
      for (size_t i = 0; i < chain.size(); ++i) {
        const auto& item = list.body.at(i).as_object();
        const auto& put = chain[chain.size() - 1 - i].put;
        for (const char* f : {"thread_id", "checkpoint_ns", "checkpoint_id", "parent_checkpoint_id", "checkpoint",
                              "metadata"}) {
          EXPECT_EQ(item.at(f), put.at(f)) << f;
        }
      }
      // The parent chain from the latest reaches the first checkpoint.
      json::value cursor = chain.back().put.at("checkpoint_id");
      size_t hops = 0;
      while (!cursor.is_null()) {
        auto r = GetTuple(thread, ns, cursor);
        ASSERT_FALSE(r.body.is_null());
        cursor = r.body.at("parent_checkpoint_id");
        ++hops;
      }
      EXPECT_EQ(hops, chain.size());
    }
    // Across namespaces and threads, with a metadata filter.
    auto a = Post("/checkpoints/list", json::object{{"thread_id", "thread-A"}, {"checkpoint_ns", nullptr},
                                                    {"filter_metadata", {{"source", "input"}}}});
    EXPECT_EQ(a.body.as_array().size(), 2u);
    auto all = Post("/checkpoints/list", json::object{{"filter_metadata", {{"parents", {{"", "root"}}}}}});
    EXPECT_EQ(all.body.as_array().size(), 12u);
    for (const auto& item : all.body.as_array()) EXPECT_EQ(item.at("checkpoint_ns"), "child:task-1");
  }

  std::map<std::pair<std::string, std::string>, std::vector<Expected>> expected_;
};

TEST_F(AgentRoundTripTest, ClientRoundTripTwoThreadsTwoNamespaces) {
  PutEverything();
  CheckEverything();
}

TEST_F(AgentRoundTripTest, EverythingSurvivesARestart) {
  PutEverything();
  Restart();
  CheckEverything();
  // And the store keeps working after the restart.
  ASSERT_EQ(Post("/checkpoints/delete-thread", json::object{{"thread_id", "thread-A"}}).status, 204);
  Restart();
  EXPECT_EQ(ListIds({{"thread_id", "thread-A"}}).size(), 0u);
  EXPECT_EQ(ListIds({{"thread_id", "thread-B"}}).size(), 12u);
}

class AgentStateTest : public AgentApiFixture {};

TEST_F(AgentStateTest, StateAtCheckpoint) {
  json::object cv1{{"__start__", "1"}, {"messages", "1"}};
  ASSERT_EQ(Put("t", "", "c1", CheckpointJson("c1", cv1), {{"source", "input"}, {"step", -1}},
                {Blob("__start__", "1", "json", "{\"messages\":[]}"), Blob("messages", "1", "json", "[]")})
                .status, 200);
  // c2: agent ran; "tools" is triggered, "agent" has seen its trigger.
  json::object cv2{{"__start__", "2"}, {"messages", "2"}, {"branch:to:agent", "2"}, {"branch:to:tools", "3"},
                   {"blobby", "1"}, {"empty", "1"}};
  json::object seen{{"__start__", {{"__start__", "2"}}}, {"agent", {{"branch:to:agent", "2"}}}};
  json::object cp2 = CheckpointJson("c2", cv2, seen);
  cp2["ts"] = "2025-02-03T04:05:06.000007+00:00";
  cp2["channel_values"] = json::object{{"inline", 42}};
  ASSERT_EQ(Put("t", "", "c2", cp2, {{"source", "loop"}, {"step", 1}},
                {Blob("messages", "2", "json", "[{\"role\":\"ai\",\"content\":\"hi\"}]"),
                 Blob("branch:to:agent", "2", "empty", ""), Blob("branch:to:tools", "3", "json", "null"),
                 Blob("blobby", "1", "msgpack", std::string("\x92\x01\x02", 3)),
                 json::object{{"channel", "empty"}, {"version", "1"}, {"type", "empty"}, {"blob", nullptr}}},
                "c1").status, 200);
  json::object w1 = Write("task-1", -3, "__interrupt__", "json", "[{\"value\":\"approve?\",\"id\":\"int-1\"}]");
  w1["task_path"] = "~__pregel_pull, tools";
  json::object w2 = Write("task-2", -1, "__error__", "json", "\"boom\"");
  ASSERT_EQ(PutWrites("t", "", "c2", {w1, w2}, true).status, 204);

  auto r = Post("/threads/t/state/checkpoint",
                json::object{{"checkpoint", {{"checkpoint_id", "c2"}, {"checkpoint_ns", ""}}}, {"subgraphs", true}});
  ASSERT_EQ(r.status, 200) << r.raw;
  const auto& s = r.body.as_object();
  EXPECT_EQ(s.at("values"),
            (json::value{{"inline", 42},
                         {"messages", json::array{json::object{{"role", "ai"}, {"content", "hi"}}}},
                         {"blobby", {{"type", "msgpack"}, {"blob", B64(std::string("\x92\x01\x02", 3))}}}}));
  EXPECT_EQ(s.at("next"), (json::value{"tools"}));
  EXPECT_EQ(s.at("checkpoint"), (json::value{{"thread_id", "t"}, {"checkpoint_ns", ""}, {"checkpoint_id", "c2"},
                                            {"checkpoint_map", json::object{}}}));
  EXPECT_EQ(s.at("parent_checkpoint"), (json::value{{"thread_id", "t"}, {"checkpoint_ns", ""},
                                                   {"checkpoint_id", "c1"}, {"checkpoint_map", json::object{}}}));
  EXPECT_EQ(s.at("metadata"), (json::value{{"source", "loop"}, {"step", 1}}));
  EXPECT_EQ(s.at("created_at"), "2025-02-03T04:05:06.000007+00:00");
  json::value interrupt{{"value", "approve?"}, {"id", "int-1"}};
  EXPECT_EQ(s.at("interrupts"), json::value(json::array{interrupt}));
  ASSERT_EQ(s.at("tasks").as_array().size(), 2u);
  EXPECT_EQ(s.at("tasks").at(0), (json::value{{"id", "task-1"}, {"name", "tools"}, {"error", nullptr},
                                             {"interrupts", json::array{interrupt}}, {"checkpoint", nullptr},
                                             {"state", nullptr}}));
  EXPECT_EQ(s.at("tasks").at(1).at("error"), "boom");

  // The first checkpoint: __start__ is next, no parent; latest when id is null.
  auto first = Post("/threads/t/state/checkpoint", json::object{{"checkpoint", {{"checkpoint_id", "c1"}}}});
  ASSERT_EQ(first.status, 200) << first.raw;
  EXPECT_EQ(first.body.at("next"), (json::value{"__start__"}));
  EXPECT_TRUE(first.body.at("parent_checkpoint").is_null());
  EXPECT_EQ(first.body.at("values"), (json::value{{"messages", json::array{}}}));
  auto latest = Post("/threads/t/state/checkpoint", json::object{{"checkpoint", {{"checkpoint_id", nullptr}}}});
  EXPECT_EQ(latest.body.at("checkpoint").at("checkpoint_id"), "c2");
}

TEST_F(AgentStateTest, UnknownThreadOrCheckpointIs404) {
  ASSERT_EQ(PutSimple("t", "", "c1").status, 200);
  auto r = Post("/threads/nope/state/checkpoint", json::object{{"checkpoint", {{"checkpoint_id", "c1"}}}});
  EXPECT_EQ(r.status, 404);
  EXPECT_TRUE(r.body.at("detail").is_string());
  EXPECT_EQ(Post("/threads/t/state/checkpoint", json::object{{"checkpoint", {{"checkpoint_id", "c9"}}}}).status, 404);
  EXPECT_EQ(Post("/threads/t/state/checkpoint",
                 json::object{{"checkpoint", {{"checkpoint_id", "c1"}, {"checkpoint_ns", "x"}}}}).status, 404);
  auto bad = Post("/threads/t/state/checkpoint", json::object{{"subgraphs", false}});
  EXPECT_EQ(bad.status, 422);
  EXPECT_EQ(bad.body.at("detail").at(0).at("loc"), (json::value{"body", "checkpoint"}));
}

}  // namespace
}  // namespace ckptd

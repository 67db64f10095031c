// Thread-level operations of the agent-state API: delete-thread's tombstone
// (a late write of the deleted history is refused, a new history is not),
// prune (keep_latest and delete) and copy-thread, each checked against
// what get-tuple and list answered before, and across a daemon restart;
// retention (a thread's own TTL, the daemon's default, the sweep).
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tests/testing/agent_fixture.h"

namespace ckptd {
namespace {

namespace json = boost::json;
using testing::AgentApiFixture;
using Ids = std::vector<std::string>;

class AgentThreadsTest : public AgentApiFixture {
 protected:
  // A chain <prefix>1..<prefix>n in (thread, ns): channel "x" changes at
  // every step, "y" keeps version 1 from the first; two writes each.
  void PutChain(const std::string& thread, const std::string& ns, const std::string& prefix, int n) {
    json::value parent = nullptr;
    for (int i = 1; i <= n; ++i) {
      std::string id = fmt::format("{}{}", prefix, i);
      json::array blobs{Blob("x", std::to_string(i), "json", fmt::format("x{}", i))};
      if (i == 1) blobs.push_back(Blob("y", "1", "json", "y"));
      json::object versions{{"x", std::to_string(i)}, {"y", "1"}};
      ASSERT_EQ(Put(thread, ns, id, CheckpointJson(id, versions), {{"step", i}}, blobs, parent).status, 200);
      ASSERT_EQ(PutWrites(thread, ns, id, {Write("t", 0, "x", "json", id), Write("t", 1, "y", "json", id)}).status,
                204);
      parent = json::value(id);
    }
  }
  // get-tuple's answer, without the thread id (for comparing copies).
  json::object TupleOf(const std::string& thread, const std::string& ns, json::value id = nullptr) {
    auto r = GetTuple(thread, ns, std::move(id));
    EXPECT_EQ(r.status, 200) << r.raw;
    if (!r.body.is_object()) return {};
    json::object o = r.body.as_object();
    o.erase("thread_id");
    return o;
  }
  json::object Prune(const json::array& threads, const std::string& strategy) {
    auto r = Post("/checkpoints/prune", json::object{{"thread_ids", threads}, {"strategy", strategy}});
    EXPECT_EQ(r.status, 200) << r.raw;
    return r.body.is_object() ? r.body.at("removed").as_object() : json::object{};
  }
};

TEST_F(AgentThreadsTest, DeleteThreadRefusesLateWritesButNotANewHistory) {
  PutChain("t", "", "c", 3);
  PutChain("t", "a", "c", 2);
  ASSERT_EQ(Post("/checkpoints/delete-thread", json::object{{"thread_id", "t"}}).status, 204);
  // Late writes of the deleted history: a put-writes for its checkpoint, a
  // put continuing it (newer id, old parent), a replay of a checkpoint.
  EXPECT_EQ(PutWrites("t", "", "c3", {Write("t", 2, "x", "json", "late")}).status, 409);
  auto cont = Put("t", "", "c4", CheckpointJson("c4", {}), {}, {}, json::value("c3"));
  EXPECT_EQ(cont.status, 409) << cont.raw;
  EXPECT_NE(cont.raw.find("was deleted"), std::string::npos) << cont.raw;
  EXPECT_EQ(PutSimple("t", "a", "c2").status, 409);
  EXPECT_EQ(ListIds({{"thread_id", "t"}, {"checkpoint_ns", nullptr}}), Ids{});
  // A new history (newer ids, no parent) is accepted, in any namespace.
  EXPECT_EQ(PutSimple("t", "b", "d1").status, 200);
  EXPECT_EQ(PutWrites("t", "b", "d1", {Write("t", 0, "x", "json", "new")}).status, 204);
  // Another thread is not affected.
  EXPECT_EQ(PutSimple("t2", "", "a1").status, 200);

  Restart();
  EXPECT_EQ(Put("t", "", "c9", CheckpointJson("c9", {}), {}, {}, json::value("c1")).status, 409);
  EXPECT_EQ(ListIds({{"thread_id", "t"}, {"checkpoint_ns", nullptr}}), Ids{"d1"});
  EXPECT_EQ(TupleOf("t", "b").at("pending_writes").as_array().size(), 1u);
}

TEST_F(AgentThreadsTest, KeepLatestKeepsWhatTheLatestNeedsAndRemovesTheRest) {
  PutChain("t", "", "c", 5);
  PutChain("t", "a", "c", 3);
  PutChain("u", "", "c", 2);
  json::object latest = TupleOf("t", ""), latest_a = TupleOf("t", "a"), other = TupleOf("u", "", "c1");

  json::object removed = Prune({"t"}, "keep_latest");
  // 4 + 2 older checkpoints, 2 writes each; x's versions 1..4 and 1..2 (y's
  // version 1 stays: the latest names it).
  EXPECT_EQ(removed.at("checkpoints").as_int64(), 6);
  EXPECT_EQ(removed.at("writes").as_int64(), 12);
  EXPECT_EQ(removed.at("blobs").as_int64(), 6);
  EXPECT_EQ(TupleOf("t", ""), latest);
  EXPECT_EQ(TupleOf("t", "a"), latest_a);
  EXPECT_EQ(TupleOf("t", "").at("blobs").as_array().size(), 2u) << "the blob of an unchanged channel went";
  EXPECT_EQ(ListIds({{"thread_id", "t"}, {"checkpoint_ns", nullptr}}), (Ids{"c5", "c3"}));
  EXPECT_EQ(GetTuple("t", "", "c4").raw, "null");
  EXPECT_EQ(ListIds({{"thread_id", "u"}}), (Ids{"c2", "c1"}));
  EXPECT_EQ(TupleOf("u", "", "c1"), other);
  // Pruning again removes nothing; the thread goes on from its latest.
  removed = Prune({"t"}, "keep_latest");
  EXPECT_EQ(removed.at("checkpoints").as_int64() + removed.at("writes").as_int64() + removed.at("blobs").as_int64(), 0);
  EXPECT_EQ(Put("t", "", "c6", CheckpointJson("c6", {{"x", "5"}, {"y", "1"}}), {}, {}, json::value("c5")).status,
            200);
  EXPECT_EQ(TupleOf("t", "", json::value("c6")).at("blobs").as_array().size(), 2u);

  Restart();
  EXPECT_EQ(ListIds({{"thread_id", "t"}, {"checkpoint_ns", nullptr}}), (Ids{"c6", "c5", "c3"}));
  EXPECT_EQ(TupleOf("t", "a"), latest_a);
}

TEST_F(AgentThreadsTest, PruneDeleteRemovesTheThreadsWithTombstones) {
  PutChain("t", "", "c", 2);
  PutChain("u", "x", "c", 1);
  PutChain("v", "", "c", 1);
  json::object removed = Prune({"t", "u", "unknown"}, "delete");
  EXPECT_EQ(removed.at("checkpoints").as_int64(), 3);
  EXPECT_EQ(removed.at("writes").as_int64(), 6);
  EXPECT_EQ(removed.at("blobs").as_int64(), 2 + 1 + 2);
  EXPECT_EQ(ListIds(json::object{}), Ids{"c1"});
  EXPECT_EQ(PutWrites("u", "x", "c1", {Write("t", 5, "x", "json", "late")}).status, 409);
}

TEST_F(AgentThreadsTest, CopyThreadMakesAnIndependentCopy) {
  PutChain("t", "", "c", 3);
  PutChain("t", "a", "c", 2);
  auto r = Post("/checkpoints/copy-thread", json::object{{"source_thread_id", "t"}, {"target_thread_id", "t2"}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body.at("copied").as_int64(), 5);
  for (std::string ns : {"", "a"}) {
    for (std::string id : {"c1", "c2"}) EXPECT_EQ(TupleOf("t2", ns, json::value(id)), TupleOf("t", ns, json::value(id)));
  }
  EXPECT_EQ(GetTuple("t2", "", "c1").body.at("thread_id"), "t2");
  EXPECT_EQ(ListIds({{"thread_id", "t2"}, {"checkpoint_ns", nullptr}}),
            ListIds({{"thread_id", "t"}, {"checkpoint_ns", nullptr}}));
  // Independent: the source deleted, the copy stays whole and goes on.
  json::object copied_latest = TupleOf("t2", "");
  ASSERT_EQ(Post("/checkpoints/delete-thread", json::object{{"thread_id", "t"}}).status, 204);
  EXPECT_EQ(TupleOf("t2", ""), copied_latest);
  EXPECT_EQ(Put("t2", "", "c4", CheckpointJson("c4", {{"x", "3"}, {"y", "1"}}), {}, {}, json::value("c3")).status,
            200);
  EXPECT_EQ(ListIds({{"thread_id", "t"}, {"checkpoint_ns", nullptr}}), Ids{});

  // A target with checkpoints: 409; the same thread: 409; an empty source: 404.
  auto busy = Post("/checkpoints/copy-thread", json::object{{"source_thread_id", "t2"}, {"target_thread_id", "t2"}});
  EXPECT_EQ(busy.status, 409) << busy.raw;
  PutChain("s", "", "e", 1);
  EXPECT_EQ(Post("/checkpoints/copy-thread", json::object{{"source_thread_id", "s"}, {"target_thread_id", "t2"}})
                .status,
            409);
  EXPECT_EQ(Post("/checkpoints/copy-thread", json::object{{"source_thread_id", "t"}, {"target_thread_id", "t3"}})
                .status,
            404);
  // Copying into a deleted thread lifts its tombstone: the copied history is writable.
  auto back = Post("/checkpoints/copy-thread", json::object{{"source_thread_id", "t2"}, {"target_thread_id", "t"}});
  ASSERT_EQ(back.status, 200) << back.raw;
  EXPECT_EQ(PutWrites("t", "", "c2", {Write("t", 9, "x", "json", "after copy")}).status, 204);
}

TEST_F(AgentThreadsTest, BadRequestsAre422) {
  auto empty = Post("/checkpoints/prune", json::object{{"thread_ids", json::array{}}});
  ASSERT_EQ(empty.status, 422) << empty.raw;
  EXPECT_EQ(empty.body.at("detail").at(0).at("type"), "too_short");
  auto strategy = Post("/checkpoints/prune", json::object{{"thread_ids", json::array{"t"}}, {"strategy", "all"}});
  ASSERT_EQ(strategy.status, 422) << strategy.raw;
  EXPECT_EQ(strategy.body.at("detail").at(0).at("type"), "literal_error");
  EXPECT_EQ(strategy.body.at("detail").at(0).at("loc"), (json::value{"body", "strategy"}));
  auto not_strings = Post("/checkpoints/prune", json::object{{"thread_ids", json::array{"t", 5}}});
  ASSERT_EQ(not_strings.status, 422) << not_strings.raw;
  EXPECT_EQ(not_strings.body.at("detail").at(0).at("loc"), (json::value{"body", "thread_ids", 1}));
  EXPECT_EQ(Post("/checkpoints/prune", json::object{}).status, 422);
  auto copy = Post("/checkpoints/copy-thread", json::object{{"source_thread_id", "t"}});
  ASSERT_EQ(copy.status, 422) << copy.raw;
  EXPECT_EQ(copy.body.at("detail").at(0).at("loc"), (json::value{"body", "target_thread_id"}));
}

TEST_F(AgentThreadsTest, ThreadRetentionExpiresThreadsAndSurvivesARestart) {
  PutChain("t", "", "c", 3);
  PutChain("k", "", "c", 3);
  PutChain("k", "a", "c", 2);
  PutChain("x", "", "c", 1);
  auto t = Post("/checkpoints/retention", json::object{{"thread_id", "t"}, {"ttl_s", 2}});
  ASSERT_EQ(t.status, 200) << t.raw;
  EXPECT_EQ(t.body.at("ttl_s"), 2);
  EXPECT_EQ(t.body.at("strategy"), "delete");  // the daemon default's
  EXPECT_EQ(t.body.at("own"), (json::object{{"ttl_s", 2}, {"strategy", nullptr}}));
  EXPECT_TRUE(t.body.at("expires_at").is_string()) << t.raw;
  auto k = Post("/checkpoints/retention", json::object{{"thread_id", "k"}, {"ttl_s", 2}, {"strategy", "keep_latest"}});
  ASSERT_EQ(k.status, 200) << k.raw;
  auto x = Post("/checkpoints/retention", json::object{{"thread_id", "x"}, {"ttl_s", nullptr}});
  ASSERT_EQ(x.status, 200) << x.raw;
  EXPECT_EQ(x.body.at("ttl_s"), 0);
  EXPECT_TRUE(x.body.at("expires_at").is_null());

  auto early = Post("/checkpoints/sweep", json::object{});
  ASSERT_EQ(early.status, 200) << early.raw;
  EXPECT_EQ(early.body.at("threads"), 0);
  Restart();
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  auto swept = Post("/checkpoints/sweep", json::object{});
  ASSERT_EQ(swept.status, 200) << swept.raw;
  EXPECT_EQ(swept.body.at("threads"), 2);
  EXPECT_EQ(swept.body.at("removed").at("checkpoints"), 3 + 2 + 1);
  EXPECT_EQ(ListIds({{"thread_id", "t"}, {"checkpoint_ns", nullptr}}), Ids{});
  EXPECT_EQ(PutWrites("t", "", "c3", {Write("t", 9, "x", "json", "late")}).status, 409);
  EXPECT_EQ(ListIds({{"thread_id", "k"}, {"checkpoint_ns", nullptr}}), (Ids{"c3", "c2"}));
  EXPECT_EQ(ListIds({{"thread_id", "x"}, {"checkpoint_ns", nullptr}}), Ids{"c1"});
}

TEST_F(AgentThreadsTest, PruneBeforeKeepsNewerCheckpoints) {
  PutChain("t", "", "c", 5);
  auto r = Post("/checkpoints/prune", json::object{{"thread_ids", {"t"}}, {"strategy", "delete"}, {"before", "c3"}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body.at("removed").at("checkpoints"), 2);
  EXPECT_EQ(ListIds({{"thread_id", "t"}, {"checkpoint_ns", nullptr}}), (Ids{"c5", "c4", "c3"}));
  // "y" stays at version 1 from c1: its blob is still named, so still there.
  EXPECT_EQ(TupleOf("t", "", json::value("c3")).at("blobs").as_array().size(), 2u);
}

TEST_F(AgentThreadsTest, BadRetentionRequestsAre422) {
  auto negative = Post("/checkpoints/retention", json::object{{"thread_id", "t"}, {"ttl_s", -1}});
  ASSERT_EQ(negative.status, 422) << negative.raw;
  EXPECT_EQ(negative.body.at("detail").at(0).at("loc"), (json::value{"body", "ttl_s"}));
  auto strategy = Post("/checkpoints/retention", json::object{{"thread_id", "t"}, {"strategy", "all"}});
  ASSERT_EQ(strategy.status, 422) << strategy.raw;
  EXPECT_EQ(strategy.body.at("detail").at(0).at("type"), "literal_error");
  EXPECT_EQ(Post("/checkpoints/retention", json::object{{"ttl_s", 5}}).status, 422);
  auto before = Post("/checkpoints/prune", json::object{{"thread_ids", {"t"}}, {"before", 5}});
  EXPECT_EQ(before.status, 422) << before.raw;
}

// The daemon's own default and its background sweep.
class AgentTtlDaemonTest : public AgentThreadsTest {
 protected:
  Config MakeConfig() override {
    Config c = AgentThreadsTest::MakeConfig();
    c.agent_ttl_s = 1;
    c.agent_ttl_strategy = "keep_latest";
    c.agent_sweep_interval_s = 1;
    return c;
  }
};

TEST_F(AgentTtlDaemonTest, TheBackgroundSweepAppliesTheDefault) {
  PutChain("t", "", "c", 3);
  ASSERT_EQ(Post("/checkpoints/retention", json::object{{"thread_id", "kept"}, {"ttl_s", 0}}).status, 200);
  PutChain("kept", "", "c", 2);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (ListIds({{"thread_id", "t"}, {"checkpoint_ns", nullptr}}).size() > 1 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(ListIds({{"thread_id", "t"}, {"checkpoint_ns", nullptr}}), Ids{"c3"});
  EXPECT_EQ(ListIds({{"thread_id", "kept"}, {"checkpoint_ns", nullptr}}), (Ids{"c2", "c1"}));
}

}  // namespace
}  // namespace ckptd

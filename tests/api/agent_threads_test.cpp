// Thread-level operations of the agent-state API: delete-thread's tombstone
// (a late write of the deleted history is refused, a new history is not),
// prune (keep_latest and delete) and copy-thread, each checked against
// what get-tuple and list answered before, and across a daemon restart.
#include <map>
#include <string>
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

}  // namespace
}  // namespace ckptd

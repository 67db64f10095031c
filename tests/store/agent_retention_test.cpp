// Agent-state retention on the store, with a clock the test moves: the
// default and per-thread TTLs, both strategies, the early due hint of a busy
// thread, a default changed across a reopen, and prune's `before`.
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store/agent_store.h"
#include "tests/testing/agent_store_fixture.h"

namespace ckptd {
namespace {

constexpr auto kDelete = AgentPruneStrategy::kDelete;
constexpr auto kKeepLatest = AgentPruneStrategy::kKeepLatest;

class AgentRetentionTest : public testing::AgentStoreFixture {
 protected:
  // Checkpoint `id` in (thread, ns) naming blob x@id, with one write.
  void Put(const std::string& thread, const std::string& ns, const std::string& id) {
    ASSERT_TRUE(PutX(thread, ns, id).ok());
    ASSERT_TRUE(store_->PutWrites(thread, ns, id, {{"task", 0, "x", "json", "w", ""}}, false).ok());
  }
  std::vector<std::string> Ids(const std::string& thread) {
    std::vector<std::string> out;
    for (const auto& c : Checkpoints(thread)) out.push_back(c.checkpoint_ns + "/" + c.checkpoint_id);
    return out;
  }
  uint64_t SweepAt(int64_t seconds) {
    clock_.SetSeconds(seconds);
    auto r = store_->Sweep();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->threads : 0;
  }
};

TEST_F(AgentRetentionTest, DefaultTtlDeletesAThreadItsTtlAfterItsLastWrite) {
  OpenStore({60, kDelete});
  clock_.SetSeconds(0);
  Put("a", "", "1");
  clock_.SetSeconds(50);
  Put("b", "", "1");
  EXPECT_EQ(SweepAt(59), 0u);
  EXPECT_EQ(Ids("a").size(), 1u);
  EXPECT_EQ(SweepAt(60), 1u);
  EXPECT_TRUE(Ids("a").empty());
  EXPECT_EQ(Ids("b").size(), 1u);
  // Deleted as delete-thread deletes: the late write is refused.
  EXPECT_EQ(store_->PutWrites("a", "", "1", {{"task", 1, "x", "json", "late", ""}}, false).code(), Code::kConflict);
  EXPECT_EQ(SweepAt(109), 0u);
  EXPECT_EQ(SweepAt(110), 1u);
  EXPECT_TRUE(Ids("b").empty());
  EXPECT_EQ(SweepAt(1000), 0u);
}

TEST_F(AgentRetentionTest, KeepLatestKeepsEachNamespacesNewestAndIsNotDueAgainUntilAWrite) {
  clock_.SetSeconds(0);
  for (std::string id : {"1", "2", "3"}) Put("t", "", id);
  for (std::string id : {"1", "2"}) Put("t", "sub", id);
  auto state = store_->SetThreadRetention("t", {10, kKeepLatest});
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->expires_at_ms, clock_.NowMillis() + 10'000);
  EXPECT_EQ(SweepAt(9), 0u);
  clock_.SetSeconds(10);
  auto swept = store_->Sweep();
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(swept->threads, 1u);
  EXPECT_EQ(swept->removed.checkpoints, 3u);
  EXPECT_EQ(swept->removed.writes, 3u);
  EXPECT_EQ(swept->removed.blobs, 3u);
  EXPECT_EQ(Ids("t"), (std::vector<std::string>{"/3", "sub/2"}));
  auto tuple = store_->GetTuple("t", "", std::nullopt);
  ASSERT_TRUE(tuple.ok() && tuple->has_value());
  EXPECT_EQ((*tuple)->blobs.size(), 1u);
  EXPECT_EQ((*tuple)->pending_writes.size(), 1u);
  EXPECT_EQ(SweepAt(100), 0u);  // not due again
  Put("t", "", "4");
  EXPECT_EQ(SweepAt(109), 0u);
  EXPECT_EQ(SweepAt(110), 1u);
  EXPECT_EQ(Ids("t"), (std::vector<std::string>{"/4", "sub/2"}));
}

TEST_F(AgentRetentionTest, AThreadsOwnTtlOverridesTheDefault) {
  OpenStore({10, kDelete});
  clock_.SetSeconds(0);
  Put("forever", "", "1");
  Put("short", "", "1");
  Put("default", "", "1");
  ASSERT_TRUE(store_->SetThreadRetention("forever", {0, std::nullopt}).ok());
  auto s = store_->SetThreadRetention("short", {2, std::nullopt});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->effective.strategy, kDelete);  // the default's
  EXPECT_EQ(SweepAt(2), 1u);
  EXPECT_TRUE(Ids("short").empty());
  EXPECT_EQ(SweepAt(10), 1u);
  EXPECT_TRUE(Ids("default").empty());
  EXPECT_EQ(SweepAt(100000), 0u);
  EXPECT_EQ(Ids("forever").size(), 1u);
  // A retention set before the thread's first checkpoint applies to it.
  clock_.SetSeconds(200000);
  ASSERT_TRUE(store_->SetThreadRetention("new", {5, kKeepLatest}).ok());
  Put("new", "", "1");
  Put("new", "", "2");
  EXPECT_EQ(SweepAt(200005), 1u);
  EXPECT_EQ(Ids("new"), (std::vector<std::string>{"/2"}));
}

TEST_F(AgentRetentionTest, ABusyThreadIsSweptOnlyWhenItsLastWriteIsOld) {
  OpenStore({40, kDelete});
  clock_.SetSeconds(0);
  Put("t", "", "1");
  clock_.SetSeconds(4);  // within the hint's slack (ttl/8): the hint stays at 40
  Put("t", "", "2");
  EXPECT_EQ(SweepAt(40), 0u);  // the early hint moves to 44
  EXPECT_EQ(Ids("t").size(), 2u);
  clock_.SetSeconds(30);
  Put("t", "", "3");  // beyond the slack: the hint moves to 70
  EXPECT_EQ(SweepAt(69), 0u);
  EXPECT_EQ(Ids("t").size(), 3u);
  EXPECT_EQ(SweepAt(70), 1u);
  EXPECT_TRUE(Ids("t").empty());
}

TEST_F(AgentRetentionTest, ANewDefaultAppliesToThreadsWrittenBeforeAReopen) {
  clock_.SetSeconds(0);
  Put("old", "", "1");
  Put("old", "", "2");
  ASSERT_TRUE(store_->SetThreadRetention("own", {1000, std::nullopt}).ok());
  Put("own", "", "1");
  EXPECT_EQ(SweepAt(500), 0u);  // default: kept
  OpenStore({30, kKeepLatest});
  EXPECT_EQ(SweepAt(500), 1u);  // written at 0: due at 30 under the new default
  EXPECT_EQ(Ids("old"), (std::vector<std::string>{"/2"}));
  EXPECT_EQ(Ids("own").size(), 1u);
  Put("old", "", "3");  // at 500: due at 530
  EXPECT_EQ(SweepAt(529), 0u);
  EXPECT_EQ(SweepAt(530), 1u);
  EXPECT_EQ(Ids("old"), (std::vector<std::string>{"/3"}));
  EXPECT_EQ(SweepAt(1000), 1u);  // its own TTL, from its write at 0
  OpenStore({0, kDelete});
  clock_.SetSeconds(2000);
  Put("own", "", "2");
  EXPECT_EQ(SweepAt(2999), 0u);
  EXPECT_EQ(SweepAt(3000), 1u);  // kept its own TTL across both reopens
}

TEST_F(AgentRetentionTest, PruneBeforeRemovesOnlyOlderCheckpoints) {
  for (std::string id : {"1", "2", "3", "4"}) Put("t", "", id);
  Put("t", "sub", "1");
  auto r = store_->Prune({"t"}, kDelete, std::string("3"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->checkpoints, 3u);
  EXPECT_EQ(r->writes, 3u);
  EXPECT_EQ(r->blobs, 3u);
  EXPECT_EQ(Ids("t"), (std::vector<std::string>{"/4", "/3"}));
  // No tombstone: the thread lives on, even below `before`.
  ASSERT_TRUE(store_->PutWrites("t", "", "1", {{"task", 1, "x", "json", "w", ""}}, false).ok());
  Put("t", "sub", "2");
  Put("t", "sub", "5");
  r = store_->Prune({"t"}, kKeepLatest, std::string("4"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Ids("t"), (std::vector<std::string>{"sub/5", "/4"}));
  EXPECT_EQ(r->checkpoints, 2u);  // "/3" and "sub/2"
}

}  // namespace
}  // namespace ckptd

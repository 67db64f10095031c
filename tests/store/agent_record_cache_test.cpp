// AgentStore's record cache (the tombstones and retention records that
// every Put and PutWrites reads, kept in memory): whatever writes those
// records, a later write of the thread sees them as the database holds
// them, also once more threads were written than the cache keeps.
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "store/agent_store.h"
#include "tests/testing/agent_store_fixture.h"

namespace ckptd {
namespace {

class AgentRecordCacheTest : public testing::AgentStoreFixture {
 protected:
  Status Put(const std::string& thread, const std::string& id, Sync sync = Sync::kNow) {
    return PutX(thread, "", id, sync);
  }
  size_t Count(const std::string& thread) { return Checkpoints(thread).size(); }
};

TEST_F(AgentRecordCacheTest, ATombstoneIsSeenWhenWrittenAndForgottenWhenACopyLiftsIt) {
  ASSERT_TRUE(Put("t", "c2").ok());  // the cache now holds "no tombstone"
  ASSERT_TRUE(store_->DeleteThread("t").ok());
  EXPECT_EQ(Put("t", "c1").code(), Code::kConflict);
  EXPECT_EQ(store_->PutWrites("t", "", "c2", {{"task", 0, "x", "json", "w", ""}}, false).code(), Code::kConflict);
  // A copy into the deleted thread removes its tombstone: the old ids are
  // the copy's own history now.
  ASSERT_TRUE(Put("s", "c1").ok());
  ASSERT_TRUE(store_->CopyThread("s", "t").ok());
  EXPECT_TRUE(Put("t", "c0").ok());
  EXPECT_TRUE(store_->PutWrites("t", "", "c1", {{"task", 0, "x", "json", "w", ""}}, false).ok());
  EXPECT_EQ(Count("t"), 2u);
  // Prune's delete leaves a tombstone too.
  ASSERT_TRUE(store_->Prune({"t"}, AgentPruneStrategy::kDelete).ok());
  EXPECT_EQ(Put("t", "c1").code(), Code::kConflict);
}

TEST_F(AgentRecordCacheTest, EachThreadKeepsItsOwnRetentionPastTheCachesSize) {
  // Two records a thread, more threads than the cache holds records: every
  // thread's own TTL, set first, must survive its later put.
  constexpr int kThreads = 10000;
  auto name = [](int i) { return fmt::format("thread-{:05}", i); };
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_TRUE(store_->SetThreadRetention(name(i), {i % 2 ? 10 : 0, AgentPruneStrategy::kDelete}).ok());
    ASSERT_TRUE(Put(name(i), "c1", Sync::kDeferred).ok());
  }
  db_->WaitForSyncs();
  clock_.SetSeconds(10);
  auto swept = store_->Sweep();
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(swept->threads, uint64_t{kThreads / 2});
  for (int i : {0, 1, kThreads - 2, kThreads - 1}) EXPECT_EQ(Count(name(i)), i % 2 ? 0u : 1u) << name(i);
  // A deleted thread's records went with it; a write starts its clock anew.
  ASSERT_TRUE(Put(name(1), "c2").ok());
  clock_.SetSeconds(20);
  EXPECT_EQ(store_->Sweep()->threads, 0u);  // the default TTL (keep) now
  EXPECT_EQ(Count(name(1)), 1u);
}

}  // namespace
}  // namespace ckptd

// AgentWriteGroup: several puts and put-writes written as one batch when the
// group is flushed. Nothing is written before; a call sees the group's
// earlier writes of its thread; a refused call adds nothing; and two groups
// that take the same threads in opposite orders never wait on each other.
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "store/agent_store.h"
#include "tests/testing/agent_store_fixture.h"

namespace ckptd {
namespace {

class AgentWriteGroupTest : public testing::AgentStoreFixture {
 protected:
  Status Put(const std::string& thread, const std::string& id, AgentWriteGroup* group) {
    return PutX(thread, "", id, Sync::kDeferred, group);
  }
  Status Write(const std::string& thread, const std::string& id, const std::string& data, AgentWriteGroup* group) {
    return store_->PutWrites(thread, "", id, {{"task", 0, "ch", "json", data, ""}}, false, Sync::kDeferred, group);
  }
  size_t Count(const std::string& thread) { return Checkpoints(thread).size(); }
};

TEST_F(AgentWriteGroupTest, NothingIsWrittenUntilTheFlushThenEverything) {
  AgentWriteGroup group(store_.get());
  ASSERT_TRUE(Put("a", "c1", &group).ok());
  ASSERT_TRUE(Put("b", "c1", &group).ok());
  ASSERT_TRUE(Write("c", "c1", "w", &group).ok());
  EXPECT_EQ(Count("a"), 0u);
  EXPECT_EQ(Count("b"), 0u);
  ASSERT_TRUE(group.Flush().ok());
  EXPECT_TRUE(group.first_error().ok());
  EXPECT_EQ(Count("a"), 1u);
  EXPECT_EQ(Count("b"), 1u);
  auto b = store_->GetTuple("c", "", std::nullopt);  // writes of a checkpoint not stored (yet)
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->has_value());
  ASSERT_TRUE(Put("c", "c1", nullptr).ok());
  b = store_->GetTuple("c", "", std::nullopt);
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ((*b)->pending_writes.size(), 1u);
}

TEST_F(AgentWriteGroupTest, ACallSeesTheGroupsEarlierWritesOfItsThread) {
  AgentWriteGroup group(store_.get());
  ASSERT_TRUE(Put("a", "c1", &group).ok());
  ASSERT_TRUE(Write("a", "c1", "first", &group).ok());
  // Insert-if-absent: the first write of (task, idx) stays.
  ASSERT_TRUE(Write("a", "c1", "second", &group).ok());
  ASSERT_TRUE(group.Flush().ok());
  auto a = store_->GetTuple("a", "", "c1");
  ASSERT_TRUE(a.ok() && a->has_value());
  ASSERT_EQ((*a)->pending_writes.size(), 1u);
  EXPECT_EQ((*a)->pending_writes[0].data, "first");
}

TEST_F(AgentWriteGroupTest, ARefusedCallAddsNothing) {
  ASSERT_TRUE(Put("gone", "c5", nullptr).ok());
  ASSERT_TRUE(store_->DeleteThread("gone").ok());
  AgentWriteGroup group(store_.get());
  ASSERT_TRUE(Put("a", "c1", &group).ok());
  EXPECT_EQ(Put("gone", "c1", &group).code(), Code::kConflict);
  EXPECT_EQ(Write("gone", "c5", "late", &group).code(), Code::kConflict);
  ASSERT_TRUE(group.Flush().ok());
  EXPECT_EQ(Count("a"), 1u);
  EXPECT_EQ(Count("gone"), 0u);
}

TEST_F(AgentWriteGroupTest, GroupsTakingThreadsInOppositeOrdersNeverWaitOnEachOther) {
  constexpr int kRounds = 300;
  auto run = [&](const std::string& first, const std::string& second, const std::string& tag) {
    for (int i = 0; i < kRounds; ++i) {
      AgentWriteGroup group(store_.get());
      std::string id = fmt::format("{}{:04}", tag, i);
      EXPECT_TRUE(Put(first, id, &group).ok());
      std::this_thread::yield();
      EXPECT_TRUE(Put(second, id, &group).ok());
      EXPECT_TRUE(group.Flush().ok());
    }
  };
  auto one = std::async(std::launch::async, run, "a", "b", "x");
  auto two = std::async(std::launch::async, run, "b", "a", "y");
  ASSERT_EQ(one.wait_for(std::chrono::seconds(60)), std::future_status::ready) << "deadlocked";
  ASSERT_EQ(two.wait_for(std::chrono::seconds(60)), std::future_status::ready) << "deadlocked";
  EXPECT_EQ(Count("a"), size_t{2 * kRounds});
  EXPECT_EQ(Count("b"), size_t{2 * kRounds});
}

}  // namespace
}  // namespace ckptd

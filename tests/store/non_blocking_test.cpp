// NonBlockingScope (store/db.h): inside it, store work that would wait (a
// read from disk, a synced write) is refused with kUnavailable, writes
// nothing and marks the scope, and so is a scan past the scope's budget;
// work that memory serves answers as usual.
// The data is made cold by reopening the database: recovery flushes the
// memtables, and the new block cache is empty.
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "store/agent_store.h"
#include "store/db.h"
#include "tests/testing/test_util.h"

namespace ckptd {
namespace {

class NonBlockingTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    store_.reset();
    db_.reset();
    DbOptions o;
    o.group_commit = true;
    auto db = Db::Open(dir_.path(), o);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    store_ = std::make_unique<AgentStore>(db_.get());
  }

  // Thread "t", newest first.
  static AgentListQuery Query(size_t limit, const boost::json::object* filter = nullptr) {
    AgentListQuery q;
    q.thread_id = "t";
    q.filter = filter;
    q.limit = limit;
    return q;
  }

  static AgentCheckpoint Checkpoint(const std::string& id) {
    return AgentCheckpoint{"t", "", id, std::nullopt, R"({"channel_versions":{"a":"1"}})", "{}"};
  }

  Status PutOne(const std::string& id, Sync sync) {
    return store_->Put(Checkpoint(id), {AgentBlob{"a", "1", "json", std::string("[1]")}}, sync);
  }

  testing::TempDir dir_;
  std::unique_ptr<Db> db_;
  std::unique_ptr<AgentStore> store_;
};

TEST_F(NonBlockingTest, AReadTheDiskMustServeIsRefusedThenServedOutsideTheScope) {
  ASSERT_TRUE(PutOne("c1", Sync::kNow).ok());
  ASSERT_TRUE(store_->PutWrites("t", "", "c1", {AgentWrite{"task", 0, "a", "json", "2", ""}}, false).ok());
  Open();
  {
    NonBlockingScope scope;
    EXPECT_TRUE(NonBlockingScope::Active());
    auto cold = store_->GetTuple("t", "", std::nullopt);
    ASSERT_FALSE(cold.ok());
    EXPECT_EQ(cold.status().code(), Code::kUnavailable) << cold.status().ToString();
    EXPECT_TRUE(scope.refused());
  }
  EXPECT_FALSE(NonBlockingScope::Active());
  auto read = store_->GetTuple("t", "", std::nullopt);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_TRUE(read->has_value());
  // Now in the block cache: memory serves the same answer inside a scope.
  NonBlockingScope scope;
  auto warm = store_->GetTuple("t", "", std::nullopt);
  ASSERT_TRUE(warm.ok()) << warm.status().ToString();
  EXPECT_FALSE(scope.refused());
  ASSERT_TRUE(warm->has_value());
  EXPECT_EQ((**warm).checkpoint.checkpoint_id, "c1");
  ASSERT_EQ((**warm).blobs.size(), 1u);
  EXPECT_EQ((**warm).blobs[0].data, "[1]");
  ASSERT_EQ((**warm).pending_writes.size(), 1u);
  EXPECT_EQ((**warm).pending_writes[0].data, "2");
}

TEST_F(NonBlockingTest, AColdPutIsRefusedAndWritesNothing) {
  ASSERT_TRUE(PutOne("c1", Sync::kNow).ok());
  Open();
  {
    NonBlockingScope scope;
    // The tombstone and blob checks would read the disk.
    Status st = PutOne("c2", Sync::kDeferred);
    EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
    EXPECT_TRUE(scope.refused());
  }
  auto listed = store_->List(Query(10));
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].checkpoint_id, "c1");
}

TEST_F(NonBlockingTest, ADeferredWriteMemoryServesIsMadeButASyncedOneIsRefused) {
  {
    NonBlockingScope scope;
    // Nothing on disk yet: every check is answered by the memtables.
    EXPECT_TRUE(PutOne("c1", Sync::kDeferred).ok());
    EXPECT_FALSE(scope.refused());
    Status st = PutOne("c2", Sync::kNow);
    EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
    EXPECT_TRUE(scope.refused());
  }
  db_->WaitForSyncs();
  auto listed = store_->List(Query(10));
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].checkpoint_id, "c1");
}

TEST_F(NonBlockingTest, AListThatScansPastTheBudgetIsRefused) {
  const size_t n = NonBlockingScope::kBudget + 10;
  for (size_t i = 0; i < n; ++i) {
    AgentCheckpoint c = Checkpoint(fmt::format("c{:05}", i));
    c.metadata_json = i == 0 ? R"({"first":true})" : "{}";
    ASSERT_TRUE(store_->Put(c, {}, Sync::kDeferred).ok());
  }
  boost::json::object first{{"first", true}};
  AgentListQuery page = Query(10);
  AgentListQuery oldest = Query(1, &first);
  {
    NonBlockingScope scope;
    auto listed = store_->ListTuples(page, true, true);  // memory serves a short page
    ASSERT_TRUE(listed.ok()) << listed.status().ToString();
    EXPECT_EQ(listed->size(), 10u);
    EXPECT_FALSE(scope.refused());
    auto found = store_->List(oldest);  // newest first: every record is scanned
    EXPECT_EQ(found.status().code(), Code::kUnavailable) << found.status().ToString();
    EXPECT_TRUE(scope.refused());
  }
  auto found = store_->List(oldest);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].checkpoint_id, "c00000");
}

TEST_F(NonBlockingTest, RefuseOutsideAScopeMarksNothing) {
  Status st = NonBlockingScope::Refuse("a test");
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_TRUE(NonBlockingScope::Spend(NonBlockingScope::kBudget + 1, "a test").ok());
  EXPECT_FALSE(NonBlockingScope::Active());
  NonBlockingScope scope;
  EXPECT_FALSE(scope.refused());
  EXPECT_EQ(ReadOptionsFor().read_tier, rocksdb::kBlockCacheTier);
}

}  // namespace
}  // namespace ckptd

// The database (store/db.h): its memory bounds (one block cache and one
// memtable budget for every column family, as configured) and group commit
// (deferred writes answered after a WAL sync that callers share), watched
// through a file system whose WAL syncs the test holds, counts and fails.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table_properties.h>
#include <rocksdb/write_buffer_manager.h>

#include "store/db.h"
#include "tests/testing/gated_sync_fs.h"
#include "tests/testing/test_util.h"

namespace ckptd {
namespace {

using testing::GatedSyncFs;

TEST(DbTest, MemoryIsBoundedAsConfigured) {
  testing::TempDir dir;
  DbOptions o;
  o.block_cache_bytes = 8ull << 20;
  o.write_buffer_bytes = 16ull << 20;
  auto db = Db::Open(dir.path(), o);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  rocksdb::DB* raw = (*db)->raw();
  auto wbm = raw->GetDBOptions().write_buffer_manager;
  ASSERT_NE(wbm, nullptr);
  EXPECT_TRUE(wbm->enabled());
  EXPECT_EQ(wbm->buffer_size(), 16ull << 20);
  for (std::string_view name : {cf::kCheckpoints, cf::kJobs, cf::kAgentBlobs}) {
    uint64_t capacity = 0;
    ASSERT_TRUE(raw->GetIntProperty((*db)->Handle(name), "rocksdb.block-cache-capacity", &capacity));
    EXPECT_EQ(capacity, 8ull << 20) << name;
    EXPECT_EQ(raw->GetOptions((*db)->Handle(name)).write_buffer_size, 4ull << 20) << name;
  }
}

// The agent families' memtables search for a new key from where the last
// key of its thread (channel) went; the other families keep RocksDB's search.
TEST(DbTest, AgentFamiliesInsertWithHints) {
  testing::TempDir dir;
  auto db = Db::Open(dir.path(), DbOptions{});
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  rocksdb::DB* raw = (*db)->raw();
  for (std::string_view name : {cf::kAgentCheckpoints, cf::kAgentBlobs, cf::kAgentWrites}) {
    auto hints = raw->GetOptions((*db)->Handle(name)).memtable_insert_with_hint_prefix_extractor;
    ASSERT_NE(hints, nullptr) << name;
    EXPECT_EQ(std::string(hints->Name()), fmt::format("ckptd.{}", name));
  }
  for (std::string_view name : {cf::kCheckpoints, cf::kCheckpointsByCreated, cf::kJobs, cf::kOutbox}) {
    EXPECT_EQ(raw->GetOptions((*db)->Handle(name)).memtable_insert_with_hint_prefix_extractor, nullptr) << name;
  }
}

// A file's index and filter are cut into small partitions (a read loads one,
// not the whole of either), so that data blocks evicting them from the cache
// cost little.
TEST(DbTest, TableIndexesAndFiltersArePartitioned) {
  testing::TempDir dir;
  auto db = Db::Open(dir.path(), DbOptions{});
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  rocksdb::DB* raw = (*db)->raw();
  rocksdb::ColumnFamilyHandle* cf = (*db)->Handle(cf::kAgentBlobs);
  const std::string value(1024, 'v');
  for (int i = 0; i < 20000; ++i) {
    ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), cf, fmt::format("key-{:08}", i), value).ok());
  }
  ASSERT_TRUE(raw->Flush(rocksdb::FlushOptions(), cf).ok());
  rocksdb::TablePropertiesCollection tables;
  ASSERT_TRUE(raw->GetPropertiesOfAllTables(cf, &tables).ok());
  ASSERT_FALSE(tables.empty());
  for (const auto& [file, props] : tables) {
    // Only a two-level index has partitions and a top level.
    EXPECT_GT(props->index_partitions, 1u) << file;
    EXPECT_GT(props->top_level_index_size, 0u) << file;
    EXPECT_FALSE(props->filter_policy_name.empty()) << file;
  }
  std::string value_read;
  ASSERT_TRUE(raw->Get(rocksdb::ReadOptions(), cf, "key-00012345", &value_read).ok());
  EXPECT_EQ(value_read, value);
  EXPECT_TRUE(raw->Get(rocksdb::ReadOptions(), cf, "key-99999999", &value_read).IsNotFound());
}

class GroupCommitTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(true); }
  void Open(bool group_commit) {
    db_.reset();
    fs_ = std::make_shared<GatedSyncFs>();
    env_ = rocksdb::NewCompositeEnv(fs_);
    DbOptions o;
    o.env = env_.get();
    o.group_commit = group_commit;
    auto db = Db::Open(dir_.path(), o);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
  }
  void TearDown() override {
    fs_->Open();
    db_.reset();
  }
  Status Put(const std::string& key, Sync sync) {
    rocksdb::WriteBatch b;
    EXPECT_TRUE(b.Put(db_->Handle(cf::kJobs), key, "v").ok());
    return db_->Write(&b, sync);
  }
  // A future that AfterSync() fulfils.
  std::future<Status> AfterSync() {
    auto p = std::make_shared<std::promise<Status>>();
    db_->AfterSync([p](Status st) { p->set_value(st); });
    return p->get_future();
  }
  static bool Ready(std::future<Status>& f, int ms = 0) {
    return f.wait_for(std::chrono::milliseconds(ms)) == std::future_status::ready;
  }

  testing::TempDir dir_;
  std::shared_ptr<GatedSyncFs> fs_;
  std::unique_ptr<rocksdb::Env> env_;
  std::unique_ptr<Db> db_;
};

TEST_F(GroupCommitTest, ADeferredWriteIsVisibleAtOnceAndAnsweredOnlyAfterItsSync) {
  fs_->Close();
  ASSERT_TRUE(Put("a", Sync::kDeferred).ok());  // does not wait for the disk
  EXPECT_TRUE(db_->Get(cf::kJobs, "a").ok());
  auto done = AfterSync();
  ASSERT_TRUE(fs_->WaitForWaiter());
  EXPECT_FALSE(Ready(done, 200));
  fs_->Open();
  ASSERT_TRUE(Ready(done, 10000));
  EXPECT_TRUE(done.get().ok());
}

TEST_F(GroupCommitTest, CallersThatArriveDuringASyncShareTheNextOne) {
  fs_->Close();
  ASSERT_TRUE(Put("first", Sync::kDeferred).ok());
  auto first = AfterSync();
  ASSERT_TRUE(fs_->WaitForWaiter());  // the syncer is inside the first sync
  int before = fs_->syncs;
  std::vector<std::future<Status>> later;
  std::vector<std::thread> writers;
  std::mutex mu;
  for (int i = 0; i < 32; ++i) {
    writers.emplace_back([&, i] {
      ASSERT_TRUE(Put("k" + std::to_string(i), Sync::kDeferred).ok());
      auto f = AfterSync();
      std::lock_guard l(mu);
      later.push_back(std::move(f));
    });
  }
  for (auto& t : writers) t.join();
  for (auto& f : later) EXPECT_FALSE(Ready(f));
  fs_->Open();
  for (auto& f : later) {
    ASSERT_TRUE(Ready(f, 10000));
    EXPECT_TRUE(f.get().ok());
  }
  EXPECT_TRUE(first.get().ok());
  // The first sync, and one more for all 32.
  EXPECT_EQ(fs_->syncs - before, 2);
}

TEST_F(GroupCommitTest, ACallerWhoseWritesARunningSyncCoversIsAnsweredWhenItEnds) {
  fs_->Close();
  ASSERT_TRUE(Put("a", Sync::kDeferred).ok());
  int before = fs_->syncs;
  auto first = AfterSync();
  ASSERT_TRUE(fs_->WaitForWaiter());  // the sync that covers "a" runs
  // No write since it began: this caller needs no sync of its own, but its
  // answer still waits for the running one.
  auto second = AfterSync();
  EXPECT_FALSE(Ready(second, 200));
  fs_->Open();
  ASSERT_TRUE(Ready(first, 10000));
  ASSERT_TRUE(Ready(second, 10000));
  EXPECT_TRUE(second.get().ok());
  EXPECT_EQ(fs_->syncs - before, 1);
}

TEST_F(GroupCommitTest, AFailedSyncIsReportedToItsCallers) {
  ASSERT_TRUE(Put("a", Sync::kDeferred).ok());
  fs_->fail = true;
  auto done = AfterSync();
  ASSERT_TRUE(Ready(done, 10000));
  EXPECT_FALSE(done.get().ok());
}

TEST_F(GroupCommitTest, PendingCallersAreAnsweredWhenTheDbCloses) {
  fs_->Close();
  ASSERT_TRUE(Put("a", Sync::kDeferred).ok());
  auto done = AfterSync();
  ASSERT_TRUE(fs_->WaitForWaiter());
  auto second = AfterSync();
  std::thread closer([&] { db_.reset(); });
  fs_->Open();
  closer.join();
  ASSERT_TRUE(Ready(done));
  ASSERT_TRUE(Ready(second));
  auto reopened = Db::Open(dir_.path());
  ASSERT_TRUE(reopened.ok());
  EXPECT_TRUE((*reopened)->Get(cf::kJobs, "a").ok());
}

TEST_F(GroupCommitTest, WithoutGroupCommitDeferredWritesSyncAtOnceAndAfterSyncAnswersInline) {
  Open(false);
  int before = fs_->syncs;
  ASSERT_TRUE(Put("a", Sync::kDeferred).ok());
  EXPECT_EQ(fs_->syncs - before, 1);
  bool called = false;
  db_->AfterSync([&](Status st) { called = st.ok(); });
  EXPECT_TRUE(called);
}

}  // namespace
}  // namespace ckptd

// The database's memory bounds (store/db.h): one block cache and one
// memtable budget for every column family, as configured.
#include <gtest/gtest.h>
#include <rocksdb/write_buffer_manager.h>

#include "store/db.h"
#include "tests/testing/test_util.h"

namespace ckptd {
namespace {

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

}  // namespace
}  // namespace ckptd

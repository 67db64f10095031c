// The tuple cache under a writer and readers on one thread: no reader sees
// a tuple older than the last write that finished before it began. Not in
// the TSan set: the readers copy memtable entries RocksDB's uninstrumented
// skiplist published, and TSan cannot always pair them with their write.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "store/agent_store.h"
#include "tests/testing/agent_store_fixture.h"

namespace ckptd {
namespace {

using AgentTupleCacheRaceTest = testing::AgentStoreFixture;

// One writer puts ever newer checkpoints (and their writes) into one
// thread; readers check that what they read is no older than what was
// written before they began, cache or not.
TEST_F(AgentTupleCacheRaceTest, AReaderRacingAWriterNeverSeesAnOlderTuple) {
  constexpr int kSteps = 400;
  std::atomic<int> done{0};
  std::atomic<bool> stale{false};
  std::atomic<int> reads{0};
  std::thread writer([&] {
    for (int i = 1; i <= kSteps; ++i) {
      ASSERT_TRUE(PutNumbered("t", "", i).ok());
      ASSERT_TRUE(store_->PutWrites("t", "", Id(i), {{"task", 0, "a", "json", "w", ""}}, false).ok());
      done.store(i);
    }
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      while (done.load() < kSteps) {
        int before = done.load();
        auto got = store_->GetTuple("t", "", std::nullopt);
        if (!got.ok() || (before > 0 && !*got)) {
          stale = true;
          return;
        }
        ++reads;
        if (!*got) continue;
        const AgentTuple& t = **got;
        // A finished step's checkpoint has its write: an answer for it
        // without the write is older than that step.
        if (t.checkpoint.checkpoint_id < Id(before) ||
            (t.checkpoint.checkpoint_id == Id(before) && t.pending_writes.empty())) {
          stale = true;
          return;
        }
      }
    });
  }
  writer.join();
  for (auto& r : readers) r.join();
  EXPECT_FALSE(stale);
  EXPECT_GT(reads.load(), 0);  // how many depends on the scheduler
}

}  // namespace
}  // namespace ckptd

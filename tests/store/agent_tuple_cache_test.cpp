// The tuple cache (store/agent_tuple_cache.h): on its own, a write that
// comes between a reader's miss and its insert voids the insert, a write
// under way hides the stripe, and the byte budget holds. Through the store,
// GetTuple with the cache answers exactly as a store without it does after
// every kind of write (put, put-writes, delete-thread, prune, copy-thread,
// sweep, a write group), on a randomized history. (A reader racing a
// writer: agent_tuple_cache_race_test.cpp.)
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "store/agent_store.h"
#include "store/agent_tuple_cache.h"
#include "tests/testing/agent_store_fixture.h"

namespace ckptd {
namespace {

AgentTuple Tuple(const std::string& thread, const std::string& ns, const std::string& id, size_t value_bytes = 8) {
  AgentTuple t;
  t.checkpoint = {thread, ns, id, std::nullopt, "{}", "{}"};
  t.blobs.push_back({"x", id, "json", std::string(value_bytes, 'v')});
  return t;
}

using Ticket = AgentTupleCache::Ticket;
constexpr std::nullopt_t kNewest = std::nullopt;

TEST(AgentTupleCacheTest, AWriteAfterATicketVoidsItsFindsAndInserts) {
  AgentTupleCache cache(1 << 20);
  Ticket before = cache.Take("t");
  EXPECT_FALSE(cache.Find(before, "t", "", kNewest));
  std::vector<std::string> threads{"t"};
  cache.BeginWrite(threads);
  cache.EndWrite(threads);
  cache.Insert(before, Tuple("t", "", "1"), true);  // read before the write: not kept
  Ticket after = cache.Take("t");
  EXPECT_FALSE(cache.Find(after, "t", "", kNewest));
  cache.Insert(after, Tuple("t", "", "2"), true);
  cache.Insert(after, Tuple("t", "", "1"), false);
  auto held = cache.Find(after, "t", "", kNewest);
  ASSERT_TRUE(held);
  EXPECT_EQ(held->checkpoint.checkpoint_id, "2");
  ASSERT_TRUE(cache.Find(after, "t", "", std::string("1")));
  EXPECT_EQ(cache.Find(after, "t", "", std::string("1"))->checkpoint.checkpoint_id, "1");
  EXPECT_FALSE(cache.Find(after, "t", "", std::string("3")));
  EXPECT_FALSE(cache.Find(after, "t", "other-ns", kNewest));
  // A write of another thread of the stripe voids the ticket too.
  EXPECT_TRUE(cache.Find(cache.Take("t"), "t", "", kNewest));
  cache.BeginWrite(threads);
  cache.EndWrite(threads);
  EXPECT_FALSE(cache.Find(after, "t", "", kNewest));
  EXPECT_EQ(cache.hits(), 4u);
  EXPECT_EQ(cache.misses(), 5u);
}

TEST(AgentTupleCacheTest, AWriteUnderWayHidesItsStripeAndRefusesInserts) {
  AgentTupleCache cache(1 << 20);
  Ticket ticket = cache.Take("t");
  cache.Insert(ticket, Tuple("t", "", "1"), true);
  ASSERT_TRUE(cache.Find(ticket, "t", "", kNewest));
  std::vector<std::string> threads{"t"};
  cache.BeginWrite(threads);
  Ticket during = cache.Take("t");
  EXPECT_FALSE(during.usable);
  EXPECT_FALSE(cache.Find(during, "t", "", kNewest));
  cache.Insert(during, Tuple("t", "", "2"), true);
  cache.EndWrite(threads);
  EXPECT_FALSE(cache.Find(cache.Take("t"), "t", "", kNewest));  // the write dropped "1"
  EXPECT_EQ(cache.bytes(), 0u);
}

TEST(AgentTupleCacheTest, HoldsNoMoreThanItsBudgetNorPerThreadCap) {
  constexpr size_t kBudget = 64 << 10;
  AgentTupleCache cache(kBudget);
  Ticket ticket = cache.Take("big");
  cache.Insert(ticket, Tuple("big", "", "1", kBudget / 8), true);  // over an eighth: not kept
  EXPECT_FALSE(cache.Find(ticket, "big", "", kNewest));
  for (int i = 0; i < 2000; ++i) {
    std::string thread = fmt::format("t{}", i);
    cache.Insert(cache.Take(thread), Tuple(thread, "", "1", 500), true);
    EXPECT_LE(cache.bytes(), kBudget);
  }
  size_t held = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string thread = fmt::format("t{}", i);
    held += cache.Find(cache.Take(thread), thread, "", kNewest) ? 1 : 0;
  }
  EXPECT_GT(held, 20u);   // it keeps what fits...
  EXPECT_LT(held, 200u);  // ...and no more

  AgentTupleCache one(1 << 20);
  ticket = one.Take("t");
  for (size_t i = 0; i < AgentTupleCache::kPerThread + 5; ++i)
    one.Insert(ticket, Tuple("t", "", fmt::format("{:04}", i)), false);
  EXPECT_FALSE(one.Find(ticket, "t", "", std::string("0000")));  // the oldest kept went
  EXPECT_TRUE(one.Find(ticket, "t", "", fmt::format("{:04}", AgentTupleCache::kPerThread + 4)));

  AgentTupleCache off(0);
  ticket = off.Take("t");
  off.Insert(ticket, Tuple("t", "", "1"), true);
  EXPECT_FALSE(off.Find(ticket, "t", "", kNewest));
  EXPECT_EQ(off.bytes(), 0u);
}

class AgentTupleCacheStoreTest : public testing::AgentStoreFixture {
 protected:
  void SetUp() override {
    AgentStoreFixture::SetUp();
    if (HasFatalFailure()) return;
    // The truth: the same database read by a store that keeps nothing.
    truth_ = std::make_unique<AgentStore>(db_.get(), &clock_, 0);
  }
  static void ExpectEqual(const AgentTuple& g, const AgentTuple& w, const std::string& where) {
    EXPECT_EQ(g.checkpoint.checkpoint_id, w.checkpoint.checkpoint_id) << where;
    EXPECT_EQ(g.checkpoint.checkpoint_json, w.checkpoint.checkpoint_json) << where;
    ASSERT_EQ(g.blobs.size(), w.blobs.size()) << where;
    for (size_t i = 0; i < g.blobs.size(); ++i) EXPECT_EQ(g.blobs[i].data, w.blobs[i].data) << where;
    ASSERT_EQ(g.pending_writes.size(), w.pending_writes.size()) << where;
    for (size_t i = 0; i < g.pending_writes.size(); ++i) {
      EXPECT_EQ(g.pending_writes[i].task_id, w.pending_writes[i].task_id) << where;
      EXPECT_EQ(g.pending_writes[i].data, w.pending_writes[i].data) << where;
    }
  }
  // The store's answers (each read twice, so the second may come from the
  // cache) against the truth's: the newest tuple, and lists of the thread.
  void ExpectSame(const std::string& thread, const std::string& ns, const std::string& when) {
    std::string where = fmt::format("{}: {}/{}", when, thread, ns);
    auto want = truth_->GetTuple(thread, ns, std::nullopt);
    ASSERT_TRUE(want.ok());
    AgentListQuery in_ns, any_ns, older;
    in_ns.thread_id = any_ns.thread_id = older.thread_id = thread;
    in_ns.checkpoint_ns = older.checkpoint_ns = ns;
    in_ns.limit = 4;
    older.before = *want ? (*want)->checkpoint.checkpoint_id : Id(1 << 20);
    // Older items first: a list that fills the cache must not pass one
    // off as the newest.
    for (const AgentListQuery* q : {&older, &any_ns, &in_ns}) {
      auto truth = truth_->ListTuples(*q, true, true);
      ASSERT_TRUE(truth.ok());
      for (int pass = 0; pass < 2; ++pass) {
        auto got = store_->ListTuples(*q, true, true);
        ASSERT_TRUE(got.ok());
        ASSERT_EQ(got->size(), truth->size()) << where << " list";
        for (size_t i = 0; i < got->size(); ++i) ExpectEqual((*got)[i], (*truth)[i], where + " list");
      }
    }
    for (int pass = 0; pass < 2; ++pass) {
      auto got = store_->GetTuple(thread, ns, std::nullopt);
      ASSERT_TRUE(got.ok());
      ASSERT_EQ(got->has_value(), want->has_value()) << where;
      if (*want) ExpectEqual(**got, **want, where);
    }
  }

  std::unique_ptr<AgentStore> truth_;
};

TEST_F(AgentTupleCacheStoreTest, EveryKindOfWriteIsSeenOnARandomizedHistory) {
  std::mt19937 rng(18);
  const std::vector<std::string> threads{"t0", "t1", "t2", "t3"}, spaces{"", "sub"};
  auto pick = [&](const auto& v) { return v[rng() % v.size()]; };
  int next_id = 1;
  for (int op = 0; op < 600; ++op) {
    std::string thread = pick(threads), ns = pick(spaces), what;
    switch (rng() % 10) {
      case 0: case 1: case 2:
        what = "put";
        ASSERT_TRUE(PutNumbered(thread, ns, next_id++).ok());
        break;
      case 3: case 4: {
        what = "put-writes";
        auto latest = truth_->GetTuple(thread, ns, std::nullopt);
        ASSERT_TRUE(latest.ok());
        if (!*latest) break;
        std::string task = fmt::format("task{}", rng() % 3);
        ASSERT_TRUE(store_->PutWrites(thread, ns, (*latest)->checkpoint.checkpoint_id,
                                      {{task, 0, "a", "json", fmt::format("w{}", op), ""}}, rng() % 2)
                        .ok());
        break;
      }
      case 5:
        what = "delete-thread";
        ASSERT_TRUE(store_->DeleteThread(thread).ok());
        break;
      case 6:
        what = "prune";
        ASSERT_TRUE(store_->Prune({thread}, AgentPruneStrategy::kKeepLatest).ok());
        break;
      case 7: {
        what = "copy-thread";
        std::string target = pick(threads);
        if (target == thread) break;
        ASSERT_TRUE(store_->DeleteThread(target).ok());
        ExpectSame(target, ns, "delete before copy");
        auto copied = store_->CopyThread(thread, target);
        ASSERT_TRUE(copied.ok() || copied.status().code() == Code::kNotFound) << copied.status().ToString();
        thread = target;
        break;
      }
      case 8: {
        what = "write group";
        AgentWriteGroup group(store_.get());
        ASSERT_TRUE(PutNumbered(thread, ns, next_id++, &group).ok());
        ASSERT_TRUE(PutNumbered(pick(threads), ns, next_id++, &group).ok());
        ASSERT_TRUE(group.Flush().ok());
        break;
      }
      default:
        what = "sweep";
        ASSERT_TRUE(store_->SetThreadRetention(thread, {1, AgentPruneStrategy::kKeepLatest}).ok());
        clock_.Advance(std::chrono::seconds(2));
        ASSERT_TRUE(store_->Sweep().ok());
        break;
    }
    for (const auto& t : threads)
      for (const auto& n : spaces) ExpectSame(t, n, fmt::format("op {} ({} of {})", op, what, thread));
    if (HasFailure()) return;
  }
}

}  // namespace
}  // namespace ckptd

#include "store/catalog.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include <boost/json.hpp>

#include "tests/testing/test_util.h"

namespace ckptd {
namespace {

namespace json = boost::json;
using ckptd::testing::TempDir;

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }
  void Reopen() {
    catalog_.reset();
    db_.reset();
    auto db = Db::Open(dir_.path());
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
    catalog_ = std::make_unique<Catalog>(db_.get(), SystemClock::Default());
    ASSERT_TRUE(catalog_->Init().ok());
  }
  TempDir dir_;
  std::unique_ptr<Db> db_;
  std::unique_ptr<Catalog> catalog_;
};

TEST_F(CatalogTest, CreateGetAndLifecycle) {
  auto c = catalog_->Create(std::string("train-42"));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(IsUuid(c->id));
  EXPECT_EQ(c->status, CheckpointStatus::kInitializing);

  auto g = catalog_->Get(c->id);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->name, "train-42");
  EXPECT_FALSE(g->checksum.has_value());
  EXPECT_FALSE(g->restore_path.has_value());

  auto i = catalog_->SetInfo(c->id, "H100", "linux/amd64", json::object{{"pid", 7}});
  ASSERT_TRUE(i.ok()) << i.status().ToString();
  EXPECT_EQ(i->status, CheckpointStatus::kUpdatedInfo);
  auto r = catalog_->MarkReady(c->id, std::string("file:///x"), std::string("abc"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, CheckpointStatus::kReady);
  ASSERT_EQ(r->history.size(), 3u);  // via possibly_uploaded
  EXPECT_EQ(r->history[1].to, CheckpointStatus::kPossiblyUploaded);

  // Info can no longer change once ready.
  auto bad = catalog_->SetInfo(c->id, "none", "x", nullptr);
  EXPECT_EQ(bad.status().code(), Code::kConflict);
  auto d = catalog_->Deprecate(c->id);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->status, CheckpointStatus::kDeprecated);
  // Deprecate is idempotent, everything else is refused.
  EXPECT_TRUE(catalog_->Deprecate(c->id).ok());
  EXPECT_EQ(catalog_->MarkReady(c->id, {}, {}).status().code(), Code::kConflict);
  EXPECT_EQ(catalog_->Get(c->id)->history.size(), 4u);
}

TEST_F(CatalogTest, UnknownIdIsNotFound) {
  EXPECT_EQ(catalog_->Get("3f2a0000-0000-4000-8000-000000000000").status().code(), Code::kNotFound);
  EXPECT_EQ(catalog_->Deprecate("nope").status().code(), Code::kNotFound);
}

TEST_F(CatalogTest, FailedMutatorWritesNothing) {
  auto c = catalog_->Create(std::nullopt);
  ASSERT_TRUE(c.ok());
  auto u = catalog_->Update(c->id, [](CheckpointRecord& r) {
    r.gpu = "changed";
    return Internal("boom");
  });
  EXPECT_FALSE(u.ok());
  EXPECT_EQ(catalog_->Get(c->id)->gpu, "");
}

TEST_F(CatalogTest, ReopenLosesNothing) {
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(catalog_->Create(std::to_string(i))->id);
  ASSERT_TRUE(catalog_->SetInfo(ids[3], "A100", "p", json::object{{"k", "v"}}).ok());
  Reopen();
  auto page = catalog_->List(std::nullopt, 100);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(page->items[i].id, ids[i]);
  EXPECT_EQ(catalog_->Get(ids[3])->gpu, "A100");
  EXPECT_EQ(catalog_->Get(ids[3])->info.at("k").as_string(), "v");
  // New records continue the creation order after a reopen.
  auto later = catalog_->Create(std::nullopt);
  page = catalog_->List(std::nullopt, 100);
  EXPECT_EQ(page->items.back().id, later->id);
}

TEST_F(CatalogTest, ListPagesWithCursorInCreationOrder) {
  std::vector<std::string> ids;
  for (int i = 0; i < 25; ++i) ids.push_back(catalog_->Create(std::nullopt)->id);
  std::vector<std::string> seen;
  std::optional<std::string> cursor;
  int pages = 0;
  do {
    auto page = catalog_->List(cursor, 10);
    ASSERT_TRUE(page.ok());
    EXPECT_LE(page->items.size(), 10u);
    for (auto& r : page->items) seen.push_back(r.id);
    cursor = page->next_cursor;
    ++pages;
  } while (cursor);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, ids);
  EXPECT_EQ(catalog_->List(std::string("x1"), 10).status().code(), Code::kInvalidArgument);
}

TEST_F(CatalogTest, GetManySkipsUnknownAndDuplicates) {
  auto a = catalog_->Create(std::nullopt)->id;
  auto b = catalog_->Create(std::nullopt)->id;
  auto got = catalog_->GetMany({b, "3f2a0000-0000-4000-8000-000000000000", a, b});
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].id, b);
  EXPECT_EQ((*got)[1].id, a);
}

TEST_F(CatalogTest, ConcurrentUpdatesOfOneRecordLoseNothing) {
  auto id = catalog_->Create(std::nullopt)->id;
  ASSERT_TRUE(catalog_->SetInfo(id, "none", "p", json::object{{"n", 0}}).ok());
  constexpr int kThreads = 8, kPerThread = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = catalog_->Update(id, [&](CheckpointRecord& rec) {
          auto& o = rec.info.as_object();
          o["n"] = o["n"].to_number<int64_t>() + 1;
          o["t" + std::to_string(t)] = i;
          return Status::Ok();
        });
        ASSERT_TRUE(r.ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  auto r = catalog_->Get(id);
  EXPECT_EQ(r->info.at("n").to_number<int64_t>(), kThreads * kPerThread);
  for (int t = 0; t < kThreads; ++t)
    EXPECT_EQ(r->info.at("t" + std::to_string(t)).to_number<int64_t>(), kPerThread - 1);
}

TEST_F(CatalogTest, ConcurrentTransitionsExactlyOneWins) {
  // Many threads race to move the same record forward; the state machine
  // lets exactly one of each transition through.
  auto id = catalog_->Create(std::nullopt)->id;
  ASSERT_TRUE(catalog_->SetInfo(id, "none", "p", nullptr).ok());
  std::atomic<int> won{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      auto r = catalog_->MarkPossiblyUploaded(id);
      (r.ok() ? won : refused)++;
      if (!r.ok()) {
        EXPECT_EQ(r.status().code(), Code::kConflict);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(refused.load(), 15);
  EXPECT_EQ(catalog_->Get(id)->history.size(), 2u);
}

TEST_F(CatalogTest, RemoveDeletesRecordAndIndex) {
  auto a = catalog_->Create(std::nullopt)->id;
  auto b = catalog_->Create(std::nullopt)->id;
  ASSERT_TRUE(catalog_->Remove(a).ok());
  EXPECT_EQ(catalog_->Get(a).status().code(), Code::kNotFound);
  auto page = catalog_->List(std::nullopt, 10);
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].id, b);
}

TEST_F(CatalogTest, DeprecateWithErrorKeepsInfo) {
  auto id = catalog_->Create(std::nullopt)->id;
  ASSERT_TRUE(catalog_->SetInfo(id, "none", "p", json::object{{"pid", 9}}).ok());
  auto d = catalog_->Deprecate(id, std::string("criu dump: boom"));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->info.at("pid").to_number<int>(), 9);
  EXPECT_EQ(d->info.at("error").as_string(), "criu dump: boom");
}

// Records every change and writes an outbox-like row into the same batch.
class RecordingObserver : public CatalogObserver {
 public:
  explicit RecordingObserver(Db* db) : db_(db) {}
  Status OnWrite(const CheckpointRecord* before, const CheckpointRecord* after,
                 rocksdb::WriteBatch* batch) override {
    if (fail) return Internal("observer refused");
    std::string id = after ? after->id : before->id;
    std::string to = after ? std::string(StatusName(after->status)) : "removed";
    auto s = batch->Put(db_->Handle(cf::kOutbox), id + "/" + std::to_string(seen.size()), to);
    return FromRocks(s, "outbox");
  }
  void AfterWrite(const CheckpointRecord* before, const CheckpointRecord* after) override {
    seen.push_back(after ? std::string(StatusName(after->status)) : "removed");
  }
  Db* db_;
  bool fail = false;
  std::vector<std::string> seen;
};

TEST_F(CatalogTest, ObserverAddsToTheSameBatchAndCanAbort) {
  RecordingObserver obs(db_.get());
  catalog_->AddObserver(&obs);
  auto id = catalog_->Create(std::nullopt)->id;
  ASSERT_TRUE(catalog_->SetInfo(id, "none", "p", nullptr).ok());
  EXPECT_EQ(obs.seen, (std::vector<std::string>{"initializing", "updated_info"}));
  EXPECT_EQ(*db_->Get(cf::kOutbox, id + "/1"), "updated_info");

  obs.fail = true;
  auto d = catalog_->Deprecate(id);
  EXPECT_EQ(d.status().code(), Code::kInternal);
  EXPECT_EQ(catalog_->Get(id)->status, CheckpointStatus::kUpdatedInfo);
  EXPECT_EQ(obs.seen.size(), 2u);
  obs.fail = false;
  ASSERT_TRUE(catalog_->Remove(id).ok());
  EXPECT_EQ(obs.seen.back(), "removed");
}

}  // namespace
}  // namespace ckptd

// The agent store tests' fixture: a RocksDB database on disk in a fresh
// temporary directory, an AgentStore on it that reads a ManualClock, and
// the numbered checkpoints several tests write. Header-only; members are
// used from the test's thread unless a test says otherwise.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "store/agent_store.h"
#include "store/db.h"
#include "tests/testing/manual_clock.h"
#include "tests/testing/test_util.h"

namespace ckptd::testing {

class AgentStoreFixture : public ::testing::Test {
 protected:
  void SetUp() override { OpenStore(); }

  // Closes the store and its database, if open, then opens them again on
  // the same directory with `retention` as the daemon's default.
  void OpenStore(const AgentRetention& retention = {}) {
    store_.reset();
    db_.reset();
    auto db = Db::Open(dir_.File("db"));
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    store_ = std::make_unique<AgentStore>(db_.get(), &clock_);
    ASSERT_TRUE(store_->SetDefaultRetention(retention).ok());
  }

  // Checkpoint ids that sort as their numbers do.
  static std::string Id(int id) { return fmt::format("{:08}", id); }

  // Puts checkpoint Id(id) of (thread, ns): channel "a" at version id, "b"
  // at id / 3, so that b's blob carries over between steps. Deferred into
  // `group` when one is given, else synced.
  Status PutNumbered(const std::string& thread, const std::string& ns, int id, AgentWriteGroup* group = nullptr) {
    std::string cp = fmt::format(R"({{"id":"{}","channel_versions":{{"a":"{}","b":"{}"}}}})", Id(id), id, id / 3);
    return store_->Put({thread, ns, Id(id), std::nullopt, cp, "{}"},
                       {{"a", std::to_string(id), "json", fmt::format("a{}", id)},
                        {"b", std::to_string(id / 3), "json", fmt::format("b{}", id / 3)}},
                       group ? Sync::kDeferred : Sync::kNow, group);
  }

  // Puts checkpoint `id` of (thread, ns): its one channel "x" at version
  // `id`, valued "v" + id.
  Status PutX(const std::string& thread, const std::string& ns, const std::string& id, Sync sync = Sync::kNow,
              AgentWriteGroup* group = nullptr) {
    std::string cp = fmt::format(R"({{"id":"{}","channel_versions":{{"x":"{}"}}}})", id, id);
    return store_->Put({thread, ns, id, std::nullopt, cp, "{}"}, {{"x", id, "json", "v" + id}}, sync, group);
  }

  // Every checkpoint of `thread` (all namespaces), as List() orders them.
  std::vector<AgentCheckpoint> Checkpoints(const std::string& thread) {
    AgentListQuery q;
    q.thread_id = thread;
    q.limit = 100000;
    auto found = store_->List(q);
    EXPECT_TRUE(found.ok()) << found.status().ToString();
    return found.ok() ? std::move(*found) : std::vector<AgentCheckpoint>{};
  }

  TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<Db> db_;
  std::unique_ptr<AgentStore> store_;
};

}  // namespace ckptd::testing

#include "store/db.h"

#include <algorithm>
#include <filesystem>
#include <future>

#include <fmt/format.h>
#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_buffer_manager.h>

#include "store/agent_keys.h"
#include "store/wal_syncer.h"

namespace ckptd {

namespace {

const std::vector<std::string_view>& KnownColumnFamilies() {
  static const std::vector<std::string_view> names = {
      cf::kCheckpoints, cf::kCheckpointsByCreated, cf::kJobs,   cf::kAgentCheckpoints,
      cf::kAgentBlobs,  cf::kAgentWrites,          cf::kOutbox,
  };
  return names;
}

// A memtable insert-hint prefix given by a function of the key (0: none).
class HintPrefix : public rocksdb::SliceTransform {
 public:
  HintPrefix(std::string name, size_t (*length)(std::string_view)) : name_(std::move(name)), length_(length) {}
  const char* Name() const override { return name_.c_str(); }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), length_(std::string_view(key.data(), key.size())));
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return length_(std::string_view(key.data(), key.size())) > 0;
  }

 private:
  std::string name_;
  size_t (*length_)(std::string_view);
};

// The agent families' hints (agent_keys.h says why); none for the others.
std::shared_ptr<const rocksdb::SliceTransform> InsertHintsFor(std::string_view family) {
  size_t (*length)(std::string_view) = nullptr;
  if (family == cf::kAgentCheckpoints) length = agent_keys::CheckpointsHintPrefix;
  if (family == cf::kAgentBlobs) length = agent_keys::BlobsHintPrefix;
  if (family == cf::kAgentWrites) length = agent_keys::WritesHintPrefix;
  if (!length) return nullptr;
  return std::make_shared<HintPrefix>(fmt::format("ckptd.{}", family), length);
}

// The calling thread's NonBlockingScope, if one is alive.
struct NonBlockingState {
  bool active = false;
  bool refused = false;
  size_t spent = 0;
};
thread_local NonBlockingState non_blocking;

}  // namespace

NonBlockingScope::NonBlockingScope() { non_blocking = NonBlockingState{.active = true}; }
NonBlockingScope::~NonBlockingScope() { non_blocking = NonBlockingState{}; }
bool NonBlockingScope::refused() const { return non_blocking.refused; }
bool NonBlockingScope::Active() { return non_blocking.active; }

Status NonBlockingScope::Refuse(std::string_view what) {
  if (non_blocking.active) non_blocking.refused = true;
  return Unavailable(fmt::format("{}: would block a thread that must not wait", what));
}

Status NonBlockingScope::Spend(size_t units, std::string_view what) {
  if (!non_blocking.active) return Status::Ok();
  non_blocking.spent += units;
  return non_blocking.spent <= kBudget ? Status::Ok() : Refuse(what);
}

rocksdb::ReadOptions ReadOptionsFor(const rocksdb::Snapshot* snapshot) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  if (non_blocking.active) ro.read_tier = rocksdb::kBlockCacheTier;
  return ro;
}

Status FromRocks(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) return Status::Ok();
  if (s.IsIncomplete()) return NonBlockingScope::Refuse(fmt::format("{}: rocksdb: {}", context, s.ToString()));
  Code code = Code::kIOError;
  if (s.IsNotFound()) code = Code::kNotFound;
  if (s.IsCorruption()) code = Code::kCorruption;
  if (s.IsBusy() || s.IsTryAgain()) code = Code::kConflict;
  return Status(code, fmt::format("{}: rocksdb: {}", context, s.ToString()));
}

Result<std::unique_ptr<Db>> Db::Open(const std::string& dir, const DbOptions& opts) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IOError(fmt::format("cannot create data directory {}: {}", dir, ec.message()));

  rocksdb::Options options;
  options.create_if_missing = true;
  if (opts.env) options.env = opts.env;
  options.create_missing_column_families = true;
  options.IncreaseParallelism(2);
  options.keep_log_file_num = 5;
  options.max_total_wal_size = 64 << 20;
  options.write_buffer_manager = std::make_shared<rocksdb::WriteBufferManager>(opts.write_buffer_bytes);

  std::vector<std::string> names;
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(options, dir, &existing).ok()) names = existing;
  if (std::find(names.begin(), names.end(), rocksdb::kDefaultColumnFamilyName) == names.end())
    names.insert(names.begin(), rocksdb::kDefaultColumnFamilyName);
  for (auto n : KnownColumnFamilies()) {
    if (std::find(names.begin(), names.end(), n) == names.end()) names.emplace_back(n);
  }

  rocksdb::BlockBasedTableOptions table;
  table.whole_key_filtering = true;
  // Most point reads on the write path miss (a thread's tombstone, a blob
  // not stored yet, a write not made yet): a Bloom filter per file answers
  // them without searching each file's index.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // Index and filter blocks count against the cache, not beside it. A
  // large file's are hundreds of KiB, and data blocks that outgrow the cache
  // evicted them: every read then read, checksummed (and decompressed) a
  // whole one again. Partitioned, a read loads a 4 KiB partition of each;
  // their top levels stay pinned, and index and filter blocks go to the
  // cache's high-priority pool, which data blocks do not evict.
  rocksdb::LRUCacheOptions cache(opts.block_cache_bytes, -1, false, 0.5);
  table.block_cache = rocksdb::NewLRUCache(cache);
  table.cache_index_and_filter_blocks = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  table.partition_filters = true;
  table.metadata_block_size = 4096;
  table.pin_top_level_index_and_filter = true;
  rocksdb::ColumnFamilyOptions cf_options(options);
  // Each family's memtable a share of the whole, so small families flush
  // small files rather than holding the budget.
  cf_options.write_buffer_size = std::clamp<uint64_t>(opts.write_buffer_bytes / 4, 1 << 20, 64ull << 20);
  cf_options.max_write_buffer_number = 2;
  // The same for the memtables, which hold the newest (most read) keys.
  cf_options.memtable_whole_key_filtering = true;
  cf_options.memtable_prefix_bloom_size_ratio = 0.02;
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (const auto& n : names) {
    descs.emplace_back(n, cf_options);
    descs.back().options.memtable_insert_with_hint_prefix_extractor = InsertHintsFor(n);
  }

  std::unique_ptr<Db> db(new Db());
  db->dir_ = dir;
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(options, dir, descs, &db->handles_, &raw);
  if (!s.ok()) return FromRocks(s, fmt::format("open {}", dir));
  db->db_.reset(raw);
  db->names_ = names;
  if (opts.group_commit) db->syncer_ = std::make_unique<WalSyncer>(raw);
  return db;
}

Db::~Db() {
  syncer_.reset();  // its last callers are answered first
  if (!db_) return;
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  db_->Close().PermitUncheckedError();
}

rocksdb::ColumnFamilyHandle* Db::Handle(std::string_view name) const {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return handles_[i];
  }
  std::abort();
}

Status Db::Write(rocksdb::WriteBatch* batch, Sync sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync == Sync::kNow || !syncer_;
  if (NonBlockingScope::Active()) {
    if (wo.sync) return NonBlockingScope::Refuse("a synced write");
    wo.no_slowdown = true;  // Incomplete instead of a stall
  }
  return FromRocks(db_->Write(wo, batch), "write");
}

void Db::AfterSync(std::function<void(Status)> done) {
  if (!syncer_) return done(Status::Ok());
  syncer_->AfterSync(std::move(done));
}

void Db::WaitForSyncs() {
  // Rounds run in order, and a round's callbacks in order: when this one
  // runs, every earlier one has.
  std::promise<void> ran;
  AfterSync([&ran](Status) { ran.set_value(); });
  ran.get_future().wait();
}

Result<std::string> Db::Get(std::string_view cf_name, std::string_view key) const {
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), Handle(cf_name), rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return NotFound(std::string(key));
  if (!s.ok()) return FromRocks(s, "get");
  return value;
}

uint64_t Db::ApproximateSizeBytes() const {
  uint64_t total = 0;
  for (auto* h : handles_) {
    uint64_t v = 0;
    if (db_->GetIntProperty(h, "rocksdb.total-sst-files-size", &v)) total += v;
    if (db_->GetIntProperty(h, "rocksdb.size-all-mem-tables", &v)) total += v;
  }
  return total;
}

}  // namespace ckptd

// Agent-state checkpoints (Agentex/LangGraph checkpointer semantics) in the
// daemon's RocksDB, in the agent_checkpoints, agent_blobs and agent_writes
// column families (layout in store/agent_keys.h).
//
// Contract:
// - Put() writes the checkpoint, its index entries and its blobs in one
//   synced WriteBatch. Blobs are insert-if-absent by (thread, ns, channel,
//   version); an existing checkpoint with the same (thread, ns, id) has its
//   checkpoint, parent and metadata replaced.
// - PutWrites() writes all writes in one synced batch; with upsert=false a
//   write whose (thread, ns, checkpoint, task, idx) exists is left alone.
// - List() scans newest first (checkpoint_id descending) and holds at most
//   `limit` items: the store never loads a thread into memory.
// - GetTuple() reads the checkpoint, the blobs named by its
//   channel_versions and its pending writes from one RocksDB snapshot. What
//   it read is kept in memory (the tuple cache, store/agent_tuple_cache.h)
//   until a write of the thread, so a tuple read again costs no RocksDB read.
// - ListTuples() is List() with, per item, what GetTuple() adds (the blobs
//   when `values`, the pending writes when `writes`), all from one
//   snapshot: a LangGraph list in one call instead of one per item. A list
//   of one thread with both takes and leaves its items in the tuple cache.
// - DeleteThread() removes everything of a thread in one synced batch and
//   leaves a tombstone: the newest checkpoint id it removed. From then on
//   Put() of a checkpoint whose id or parent id is not newer than that, and
//   PutWrites() for such a checkpoint, are Conflict: a late write of the
//   deleted history is refused, not resurrected. A new history (newer ids,
//   as LangGraph's time-ordered ids are) is accepted.
// - Prune() per thread: kKeepLatest keeps the newest checkpoint of each
//   namespace and removes the others, the pending writes of every removed
//   checkpoint and every blob no kept checkpoint names; kDelete is
//   DeleteThread(). With `before`, only checkpoints whose id is older than
//   it are removed (kDelete then leaves no tombstone: the thread lives on).
//   One synced batch per thread.
// - Retention: a thread expires `ttl_s` after its last write (Put,
//   PutWrites, CopyThread into it, SetThreadRetention); the TTL and the
//   strategy are the thread's own (SetThreadRetention) or the default
//   (SetDefaultRetention; ttl 0 = keep forever). Sweep() applies the
//   strategy to every expired thread: kDelete deletes it as DeleteThread()
//   does, kKeepLatest prunes it to its latest checkpoints (and it is not due
//   again until its next write). Expiry is indexed by due time, so a sweep
//   reads only the threads that are due. Each thread's write and its
//   retention record go in the same synced batch, so a crash never leaves a
//   written thread without its due time.
// - CopyThread() writes every checkpoint, blob and write of `source` under
//   `target` in one synced batch (target's tombstone goes): NotFound when
//   source has no checkpoint, Conflict when target has one.
// Checkpoint and metadata are stored as serialized JSON text and handed back
// as such, so listings can splice them into a response without re-parsing.
// Errors: IOError/Corruption from RocksDB; inputs are validated by callers.
// Thread safety: all methods may be called concurrently; mutations of one
// thread are serialized (a striped lock), so insert-if-absent is exact.
// Put and PutWrites read the thread's tombstone and retention record from a
// cache that every write of this store keeps in step: a Db has one
// AgentStore, and nothing else writes its agent families.
// Inside a NonBlockingScope (store/db.h), Put, PutWrites (deferred sync),
// GetTuple and ListTuples read only from memory, take the thread's lock
// only when free, and List/ListTuples spend the scope's budget, a unit per
// record scanned and per item's values or writes read: otherwise they fail
// with kUnavailable, having written nothing. Put and PutWrites are
// idempotent, so such work can be redone.
#pragma once

#include <array>
#include <functional>
#include <initializer_list>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <rocksdb/write_batch.h>
#include <boost/json/object.hpp>

#include "common/clock.h"
#include "common/status.h"
#include "store/agent_store_types.h"
#include "store/agent_tuple_cache.h"
#include "store/db.h"

namespace ckptd {

enum class AgentPruneStrategy { kKeepLatest, kDelete };

// What Prune() removed, over all the threads it was given.
struct AgentPruneResult {
  uint64_t checkpoints = 0;
  uint64_t writes = 0;
  uint64_t blobs = 0;
};

struct AgentRetention {
  int64_t ttl_s = 0;  // 0: kept forever
  AgentPruneStrategy strategy = AgentPruneStrategy::kDelete;
};

// A thread's own retention: each unset member follows the default.
struct AgentThreadRetention {
  std::optional<int64_t> ttl_s;
  std::optional<AgentPruneStrategy> strategy;
};

// A thread's retention in force, as SetThreadRetention() reports it.
struct AgentRetentionState {
  AgentRetention effective;
  AgentThreadRetention own;
  int64_t last_write_ms = 0;
  std::optional<int64_t> expires_at_ms;  // nullopt: kept forever
};

// What a Sweep() did: the threads whose strategy it applied and what went.
struct AgentSweepResult {
  uint64_t threads = 0;
  AgentPruneResult removed;
};

struct AgentListQuery {
  std::optional<std::string> thread_id;         // nullopt: every thread
  std::optional<std::string> checkpoint_ns;     // nullopt: every namespace
  std::optional<std::string> before;            // strictly older ids only
  const boost::json::object* filter = nullptr;  // metadata @> filter; null/empty: none
  size_t limit = 100;
};

// JSONB `@>`: objects contain recursively, arrays contain element-wise
// (every element of `needle` is contained in some element of `hay`), a
// top-level array contains a scalar equal to one of its elements, scalars
// are equal (numbers by value).
bool JsonContains(const boost::json::value& hay, const boost::json::value& needle);

// Channel versions may be JSON strings or numbers; blobs are keyed by the
// string form (numbers as Python's str() writes them).
std::string VersionString(const boost::json::value& v);

class AgentStore;

// Several Put and PutWrites calls written to RocksDB as one batch (deferred
// sync) when the group is flushed: one log record and one pass of the
// write path instead of one each, for a batch request's writes. Until then
// the group holds the locks of the threads it has writes of, so no other
// writer sees them half-made; a call for a thread the group has writes of
// writes those first (the call reads them), and a call whose thread's lock is
// taken flushes the group before it takes the lock, so a group never waits
// holding locks. Readers (GetTuple, List) take no lock: flush before reading
// what the group wrote. A failed call adds nothing to the group.
// Thread safety: one thread makes the calls and flushes (the locks are its).
class AgentWriteGroup {
 public:
  explicit AgentWriteGroup(AgentStore* store) : store_(store) {}
  ~AgentWriteGroup();  // flushes; call Flush() to see how that went
  AgentWriteGroup(const AgentWriteGroup&) = delete;
  AgentWriteGroup& operator=(const AgentWriteGroup&) = delete;

  // Writes what the group holds and releases its locks; the caller waits
  // for AfterSync() before acknowledging the calls.
  Status Flush() { return Write(true); }
  // The first error any of the group's writes met (Ok: none). The calls
  // whose changes that write held were not made; earlier ones may have been.
  const Status& first_error() const { return first_error_; }

 private:
  friend class AgentStore;
  bool Holds(size_t stripe) const;
  bool HasWritesOf(std::string_view thread_id) const;
  // Adds what `fill` adds to the group's batch, or nothing when it fails.
  Status Add(std::string_view thread_id, const std::function<Status(rocksdb::WriteBatch*)>& fill);
  // Writes the batch; releases the locks when `release`.
  Status Write(bool release);

  AgentStore* store_;
  rocksdb::WriteBatch batch_;
  std::vector<std::pair<size_t, std::unique_lock<std::mutex>>> locks_;  // stripe, held
  std::vector<std::string> threads_;  // those with changes in batch_
  Status first_error_;
};

class AgentStore {
 public:
  // `tuple_cache_bytes`: what GetTuple may keep of threads' newest tuples
  // (store/agent_tuple_cache.h); 0: nothing.
  static constexpr size_t kDefaultTupleCacheBytes = size_t{64} << 20;
  explicit AgentStore(Db* db, const Clock* clock = SystemClock::Default(),
                      size_t tuple_cache_bytes = kDefaultTupleCacheBytes);

  // The default retention. Call before any other method: when its TTL is
  // not the one the due index was built with, the index is rebuilt (one
  // pass over the threads' retention records, crash-safe: the pass is redone
  // until it completes).
  Status SetDefaultRetention(const AgentRetention& retention);
  // Sets the thread's own TTL and strategy (unset members: the default) and
  // restarts its clock. The thread need not have checkpoints yet.
  Result<AgentRetentionState> SetThreadRetention(std::string_view thread_id, const AgentThreadRetention& own);
  // Applies retention to every thread due by now.
  Result<AgentSweepResult> Sweep();

  // Synced before they return; with Sync::kDeferred applied, and the caller
  // acknowledges them only from AfterSync() (group commit, store/db.h). With
  // a `group`, added to it (`sync` is the group's, deferred).
  Status Put(const AgentCheckpoint& checkpoint, const std::vector<AgentBlob>& blobs, Sync sync = Sync::kNow,
             AgentWriteGroup* group = nullptr);
  Status PutWrites(std::string_view thread_id, std::string_view checkpoint_ns, std::string_view checkpoint_id,
                   const std::vector<AgentWrite>& writes, bool upsert, Sync sync = Sync::kNow,
                   AgentWriteGroup* group = nullptr);
  void AfterSync(std::function<void(Status)> done) { db_->AfterSync(std::move(done)); }
  Result<std::vector<AgentCheckpoint>> List(const AgentListQuery& query) const;
  Result<std::vector<AgentTuple>> ListTuples(const AgentListQuery& query, bool values, bool writes) const;
  // checkpoint_id nullopt: the newest in the namespace. nullopt when absent.
  Result<std::optional<AgentTuple>> GetTuple(std::string_view thread_id, std::string_view checkpoint_ns,
                                             const std::optional<std::string>& checkpoint_id) const;
  Status DeleteThread(std::string_view thread_id);
  Result<AgentPruneResult> Prune(const std::vector<std::string>& thread_ids, AgentPruneStrategy strategy,
                                 const std::optional<std::string>& before = std::nullopt);
  // The number of checkpoints copied.
  Result<uint64_t> CopyThread(std::string_view source, std::string_view target);
  // Whether the thread has any checkpoint in any namespace.
  Result<bool> ThreadExists(std::string_view thread_id) const;
  const AgentTupleCache& tuple_cache() const { return tuples_; }

 private:
  friend class AgentWriteGroup;
  static size_t StripeOf(std::string_view thread_id);
  std::mutex& LockFor(std::string_view thread_id);
  // LockFor's lock, held; inside a NonBlockingScope only when it is free.
  // With a group, the group holds it (and the lock returned is empty).
  Result<std::unique_lock<std::mutex>> LockThread(std::string_view thread_id, AgentWriteGroup* group = nullptr);
  // Under the thread's lock: what `fill` adds, committed, or added to `group`.
  Status Apply(std::string_view thread_id, Sync sync, AgentWriteGroup* group,
               const std::function<Status(rocksdb::WriteBatch*)>& fill);
  Result<std::vector<AgentCheckpoint>> Scan(const AgentListQuery& q, const rocksdb::Snapshot* snapshot) const;
  // Each tuple's blobs, by its checkpoint's channel versions: one MultiGet
  // for all of them.
  Status ReadBlobs(const rocksdb::ReadOptions& ro, std::span<AgentTuple> tuples) const;
  // `it`: an iterator over the writes family, at the read's snapshot.
  Status ReadWrites(rocksdb::Iterator* it, const AgentCheckpoint& c, std::vector<AgentWrite>* out) const;
  // Under the thread's lock: the value of its tombstone or retention record
  // (`key`), from the record cache when it holds it (nullopt: absent).
  Result<std::optional<std::string>> ReadThreadRecord(std::string_view thread_id, const std::string& key) const;
  // Under the stripe's lock: the cache holds `value` for `key` (a full
  // stripe's map is emptied first).
  void RememberThreadRecord(size_t stripe, const std::string& key, std::optional<std::string> value) const;
  // Writes `batch` (Db::Write) and brings the record cache in step with
  // it. Called under the lock of every thread whose tombstone or retention
  // record the batch writes.
  Status Commit(rocksdb::WriteBatch* batch, Sync sync = Sync::kNow);
  // Empties the record cache (each stripe under its lock).
  void ForgetThreadRecords();
  // Under the thread's lock: Conflict when the thread was deleted and one
  // of `ids` is not newer than the newest checkpoint deleted.
  Status RefuseLate(std::string_view thread_id, std::initializer_list<std::string_view> ids) const;
  // The *Into methods run under the thread's lock and add their changes to
  // `batch`; the caller writes it.
  // `removed` may be null: then nothing is counted (counting reads every
  // blob and write key of the thread).
  Status DeleteThreadInto(std::string_view thread_id, rocksdb::WriteBatch* batch, AgentPruneResult* removed);
  // Removes the checkpoints that are neither the newest of their namespace
  // (when keep_latest) nor at least `before`, their writes, and the blobs no
  // kept checkpoint names.
  Status PruneInto(std::string_view thread_id, bool keep_latest, const std::optional<std::string>& before,
                   rocksdb::WriteBatch* batch, AgentPruneResult* removed);
  // Records a write to the thread now: its retention record and due hint.
  // `own` replaces the thread's own retention when given.
  Status TouchInto(std::string_view thread_id, const AgentThreadRetention* own, rocksdb::WriteBatch* batch,
                   AgentRetentionState* state = nullptr);
  // Applies retention to one thread whose hint `hint_ms` is due.
  Status SweepThread(const std::string& thread_id, int64_t hint_ms, AgentSweepResult* result);
  AgentRetention DefaultRetention() const;
  // The thread's retention record as of `snapshot` (null: now).
  Result<AgentRetentionState> ReadRetention(std::string_view thread_id, const rocksdb::Snapshot* snapshot) const;

  Db* db_;
  const Clock* clock_;
  mutable std::mutex default_mu_;
  AgentRetention default_retention_;
  rocksdb::ColumnFamilyHandle* checkpoints_;
  rocksdb::ColumnFamilyHandle* blobs_;
  rocksdb::ColumnFamilyHandle* writes_;
  // Many stripes: a write group holds its threads' for a whole batch
  // request, and two requests seldom meet on one.
  static constexpr size_t kStripes = 1024;
  std::array<std::mutex, kStripes> locks_;
  // Every Put and PutWrites reads its thread's tombstone and retention
  // record: the record cache keeps those of recently written threads, as
  // the database holds them (nullopt: absent), keyed by their keys. Stripe
  // i's map is used only under locks_[i]; a full map is emptied.
  static constexpr size_t kCachedRecordsPerStripe = 16;
  mutable std::array<std::unordered_map<std::string, std::optional<std::string>>, kStripes> records_;
  // GetTuple's answers for the newest checkpoint of recently read threads;
  // Commit brackets every write with it.
  mutable AgentTupleCache tuples_;
};

}  // namespace ckptd

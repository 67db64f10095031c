// The daemon's one RocksDB database, shared by the catalog, the job table
// and the agent-state store, each in its own column families.
//
// Contract: Open() creates the directory and every column family in
// kColumnFamilies (plus any found on disk, so an older binary can open a
// newer database). Write() applies a WriteBatch atomically and synced (fsync
// of the WAL) before it returns: what Write() accepted survives a crash.
// Group commit: Write(batch, Sync::kDeferred) applies the batch and writes
// it to the WAL file without an fsync (it then survives the daemon's own
// crash, not the machine's), and AfterSync() says when a shared fsync has
// made it durable; a caller acknowledges such a write only from there.
// Thread safety: Db is safe to use from many threads (RocksDB is).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "common/status.h"

namespace ckptd {

// Column family names, one place.
namespace cf {
inline constexpr std::string_view kCheckpoints = "checkpoints";               // id -> record JSON
inline constexpr std::string_view kCheckpointsByCreated = "ckpt_by_created";  // seq|id -> ""
inline constexpr std::string_view kJobs = "jobs";                             // job id -> job JSON
inline constexpr std::string_view kAgentCheckpoints = "agent_checkpoints";
inline constexpr std::string_view kAgentBlobs = "agent_blobs";
inline constexpr std::string_view kAgentWrites = "agent_writes";
inline constexpr std::string_view kOutbox = "outbox";
}  // namespace cf

// RocksDB's memory, bounded: without a bound every column family keeps
// memtables of its own (64 MiB, two of them, per family by default) and the
// daemon's RSS grows with the write load and stays.
struct DbOptions {
  // One LRU cache for the data, index and filter blocks of every family.
  uint64_t block_cache_bytes = 32ull << 20;
  // All memtables together (a WriteBufferManager): past it RocksDB flushes.
  uint64_t write_buffer_bytes = 64ull << 20;
  // false: Sync::kDeferred writes are synced at once and AfterSync() calls
  // back at once (every write pays its own fsync, on its caller's thread).
  bool group_commit = true;
  // The environment RocksDB's files go through; null: the default (tests
  // pass one that watches or fails WAL syncs). Must outlive the Db.
  rocksdb::Env* env = nullptr;
};

enum class Sync { kNow, kDeferred };

class WalSyncer;

class Db {
 public:
  static Result<std::unique_ptr<Db>> Open(const std::string& dir, const DbOptions& opts = {});
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  rocksdb::DB* raw() const { return db_.get(); }
  // The handle of a column family listed in namespace cf; aborts on an
  // unknown name (a programming error, not an environment error).
  rocksdb::ColumnFamilyHandle* Handle(std::string_view name) const;
  // Atomic write; synced before it returns unless `sync` is kDeferred (see
  // above), when the caller must wait for AfterSync() before acknowledging.
  // Inside a NonBlockingScope only a deferred write that needs no stall is
  // made; others are refused, unwritten.
  Status Write(rocksdb::WriteBatch* batch, Sync sync = Sync::kNow);
  // Calls done(status) once every write applied before this call is durable
  // (WalSyncer; inline without group commit). `done` must not block.
  void AfterSync(std::function<void(Status)> done);
  // Returns once every AfterSync() callback asked for before it has run.
  void WaitForSyncs();
  // Point read: NotFound when the key is absent.
  Result<std::string> Get(std::string_view cf_name, std::string_view key) const;
  // Approximate on-disk size of all column families, for metrics.
  uint64_t ApproximateSizeBytes() const;
  const std::string& dir() const { return dir_; }

 private:
  Db() = default;
  std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
  std::unique_ptr<WalSyncer> syncer_;  // null without group commit
  std::vector<std::string> names_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

// Converts a RocksDB status into ours with context. An Incomplete status
// (a memory-only read that needed the disk, a write that would have
// stalled) marks the thread's NonBlockingScope.
Status FromRocks(const rocksdb::Status& s, std::string_view context);

// Work for a thread that must not wait: an I/O thread that tries a short
// request itself before handing it to the handler pool. While a
// NonBlockingScope lives on a thread, that thread's store calls read only
// what memory holds (memtables and block cache: ReadOptionsFor), refuse a
// write that would stall or sync before it returns (Db::Write), take a lock
// only when it is free (each store says which) and bound the work they do
// (Spend). A refusal is a kUnavailable status and marks the scope:
// refused() is then true, and the caller drops what the work answered and
// redoes it where it may block, so work tried this way must be safe to redo
// (idempotent writes only).
// Scopes do not nest. Thread safety: a scope belongs to its thread.
class NonBlockingScope {
 public:
  NonBlockingScope();
  ~NonBlockingScope();
  NonBlockingScope(const NonBlockingScope&) = delete;
  NonBlockingScope& operator=(const NonBlockingScope&) = delete;

  // Whether some work in this scope was refused.
  bool refused() const;
  // Whether a scope is alive on the calling thread.
  static bool Active();
  // Marks the calling thread's scope (if any) and returns the status to fail
  // with; `what` says what would have blocked.
  static Status Refuse(std::string_view what);
  // Work that memory serves but may run long (records a scan visits): a
  // scope allows kBudget units in all; past them Spend() refuses as Refuse()
  // does. Ok outside a scope.
  static constexpr size_t kBudget = 1024;
  static Status Spend(size_t units, std::string_view what);
};

// Read options at `snapshot` (null: the newest state), memory-only inside a
// NonBlockingScope.
rocksdb::ReadOptions ReadOptionsFor(const rocksdb::Snapshot* snapshot = nullptr);

}  // namespace ckptd

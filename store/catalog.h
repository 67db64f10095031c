// The checkpoint catalog: records in RocksDB, an index in creation order,
// and every lifecycle change as one synced WriteBatch.
//
// Contract:
// - Create() assigns a UUID v4 and a creation sequence number; record and
//   index entry are written in one synced batch.
// - Update() is an atomic read-modify-write of one record: concurrent updates
//   of the same id are serialized (a striped lock), so none is lost; the
//   mutator sees the current record, may call TransitionTo() (which enforces
//   the state machine), and its result is written synced. A mutator error
//   writes nothing.
// - List() walks the creation-order index from a cursor and loads at most
//   `limit` records: the catalog never holds all records in memory.
// Errors: NotFound for an unknown id, Conflict for an illegal transition,
// InvalidArgument for a malformed cursor, IOError/Corruption from RocksDB.
// Thread safety: all methods may be called concurrently.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "store/checkpoint_record.h"
#include "store/db.h"

namespace ckptd {

// Sees every change of the catalog. OnWrite runs inside the change, before
// the batch is written, and may add entries to it (an outbox row, a counter)
// so they commit atomically with the record; an error aborts the change.
// AfterWrite runs once the batch is written (synced, or with Sync::kDeferred
// applied and its shared sync under way). `before` is empty on create,
// `after` is empty on remove. Calls for one id are serialized; calls for
// different ids may run concurrently.
class CatalogObserver {
 public:
  virtual ~CatalogObserver() = default;
  virtual Status OnWrite(const CheckpointRecord* before, const CheckpointRecord* after, rocksdb::WriteBatch* batch) {
    return Status::Ok();
  }
  virtual void AfterWrite(const CheckpointRecord* before, const CheckpointRecord* after) {}
};

class Catalog {
 public:
  Catalog(Db* db, const Clock* clock);
  // Reads the highest creation sequence number; call once before use.
  Status Init();

  // Entries a caller adds to the batch of a change (the job record that
  // goes with it), so both commit in one synced write. Called with the
  // record as it will be written; an error aborts the change.
  using BatchExtra = std::function<Status(const CheckpointRecord& after, rocksdb::WriteBatch* batch)>;

  // Writes are synced before the call returns; with Sync::kDeferred they
  // are applied and the caller acknowledges them only from AfterSync().
  Result<CheckpointRecord> Create(std::optional<std::string> name, const BatchExtra& extra = {},
                                  Sync sync = Sync::kNow);
  Result<CheckpointRecord> Get(std::string_view id) const;
  // Records for the given ids that exist, in the order given (duplicates
  // collapsed).
  Result<std::vector<CheckpointRecord>> GetMany(const std::vector<std::string>& ids) const;

  using Mutator = std::function<Status(CheckpointRecord&)>;
  Result<CheckpointRecord> Update(std::string_view id, const Mutator& fn, const BatchExtra& extra = {},
                                  Sync sync = Sync::kNow);

  // Lifecycle operations shared by the API and the daemon's jobs.
  // Sets gpu/platform/info: initializing -> updated_info; on updated_info it
  // refreshes the fields; any other status is a Conflict.
  Result<CheckpointRecord> SetInfo(std::string_view id, std::string gpu, std::string platform, boost::json::value info,
                                   Sync sync = Sync::kNow);
  // updated_info -> possibly_uploaded.
  Result<CheckpointRecord> MarkPossiblyUploaded(std::string_view id);
  // -> ready with restore_path (and checksum when given); from updated_info
  // the record passes through possibly_uploaded in the same batch.
  Result<CheckpointRecord> MarkReady(std::string_view id, std::optional<std::string> restore_path,
                                     std::optional<std::string> checksum, const BatchExtra& extra = {},
                                     Sync sync = Sync::kNow);
  // -> deprecated; already deprecated is not an error (idempotent). When
  // `error` is given it is stored as info.error.
  Result<CheckpointRecord> Deprecate(std::string_view id, std::optional<std::string> error = {},
                                     const BatchExtra& extra = {});

  struct Page {
    std::vector<CheckpointRecord> items;
    std::optional<std::string> next_cursor;  // absent on the last page
  };
  Result<Page> List(const std::optional<std::string>& cursor, size_t limit) const;
  // Visits every record in creation order; stop early by returning false.
  Status ForEach(const std::function<bool(const CheckpointRecord&)>& fn) const;

  // Deletes a record and its index entry (retention after cleanup).
  Status Remove(std::string_view id);

  const Clock* clock() const { return clock_; }
  // Db::AfterSync: for callers of the Sync::kDeferred writes.
  void AfterSync(std::function<void(Status)> done) { db_->AfterSync(std::move(done)); }
  // Observers are added before the catalog is shared between threads.
  void AddObserver(CatalogObserver* observer) { observers_.push_back(observer); }

 private:
  std::mutex& LockFor(std::string_view id);
  // Writes `after` (or removes `before` when after is null) with the
  // observers' additions, in one synced batch.
  Status Commit(const CheckpointRecord* before, const CheckpointRecord* after, const BatchExtra& extra = {},
                Sync sync = Sync::kNow);
  static std::string IndexKey(uint64_t seq, std::string_view id);

  Db* db_;
  const Clock* clock_;
  std::atomic<uint64_t> next_seq_{1};
  std::array<std::mutex, 64> locks_;
  std::vector<CatalogObserver*> observers_;
};

}  // namespace ckptd

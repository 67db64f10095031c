// The job table: one JSON record per job in cf::kJobs, beside the catalog
// in the same database, so a job record can commit in the same WriteBatch
// as the catalog change it goes with (a checkpoint's creation, its ready).
//
// Contract: records are opaque JSON objects here (jobs/job.h gives them
// meaning). Put() is synced (Db::Write). ForEach() skips nothing: a record
// that is not JSON is passed as null so the caller can report it.
// Thread safety: all methods may be called concurrently (RocksDB is).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <rocksdb/write_batch.h>
#include <boost/json/value.hpp>

#include "common/status.h"
#include "store/db.h"

namespace ckptd {

class JobStore {
 public:
  explicit JobStore(Db* db) : db_(db) {}

  // Writes one record, synced.
  Status Put(std::string_view id, const boost::json::value& record);
  // Adds the record to `batch`, which the caller commits.
  Status AddTo(rocksdb::WriteBatch* batch, std::string_view id, const boost::json::value& record) const;
  // NotFound for an unknown id, Corruption for a record that is not JSON.
  Result<boost::json::value> Get(std::string_view id) const;
  // Every record in key order; stop early by returning false.
  Status ForEach(const std::function<bool(std::string_view id, const boost::json::value& record)>& fn) const;
  // Deletes, in one synced batch, the records `expired` says so of;
  // returns how many.
  Result<size_t> DeleteIf(const std::function<bool(const boost::json::value& record)>& expired);

 private:
  Db* db_;
};

}  // namespace ckptd

// Internals shared by the agent store's translation units (agent_store.cpp,
// agent_retention.cpp): record codecs, RocksDB scan helpers and the batch
// edits that keep a checkpoint's record and its two index entries together.
// Not for use outside store/. Thread safety: as the RocksDB calls they wrap.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/write_batch.h>

#include "common/status.h"
#include "store/agent_keys.h"
#include "store/agent_store.h"

namespace ckptd::agent_internal {

inline rocksdb::Slice S(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
inline std::string_view V(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

std::string EncodeCheckpoint(const AgentCheckpoint& c);
Result<AgentCheckpoint> DecodeCheckpoint(std::string_view v);

// A checkpoint record's fields in place, valid while the record's bytes
// are: for looking at a record (its metadata, say) before copying it.
struct CheckpointView {
  std::string_view thread_id, checkpoint_ns, checkpoint_id;
  std::optional<std::string_view> parent_checkpoint_id;
  std::string_view metadata_json, checkpoint_json;
};
Result<CheckpointView> ViewCheckpoint(std::string_view v);

// The blobs a checkpoint names (channel and version, in channel_versions
// order), with their keys.
Status NamedBlobs(const AgentCheckpoint& c, std::vector<AgentBlob>* wanted, std::vector<std::string>* keys);

// The checkpoint's record and its thread and global index entries.
Status PutCheckpoint(rocksdb::WriteBatch* batch, rocksdb::ColumnFamilyHandle* cf, const AgentCheckpoint& c);
Status DeleteCheckpoint(rocksdb::WriteBatch* batch, rocksdb::ColumnFamilyHandle* cf, std::string_view thread,
                        std::string_view ns, std::string_view id);

// An iterator over [start, PrefixEnd(prefix)) reading from `snapshot`
// (null: the latest state).
struct PrefixScan {
  std::string upper;
  rocksdb::Slice upper_slice;
  rocksdb::ReadOptions ro;
  std::unique_ptr<rocksdb::Iterator> it;

  PrefixScan(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const rocksdb::Snapshot* snapshot,
             const std::string& prefix, const std::string& start)
      : upper(agent_keys::PrefixEnd(prefix)), upper_slice(upper), ro(ReadOptionsFor(snapshot)) {
    ro.iterate_upper_bound = &upper_slice;
    it.reset(db->NewIterator(ro, cf));
    it->Seek(S(start));
  }
};

class SnapshotHolder {
 public:
  explicit SnapshotHolder(rocksdb::DB* db) : db_(db), snap_(db->GetSnapshot()) {}
  ~SnapshotHolder() { db_->ReleaseSnapshot(snap_); }
  SnapshotHolder(const SnapshotHolder&) = delete;
  SnapshotHolder& operator=(const SnapshotHolder&) = delete;
  const rocksdb::Snapshot* get() const { return snap_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_;
};

}  // namespace ckptd::agent_internal

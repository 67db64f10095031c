#include "store/agent_store.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <set>

#include <fmt/format.h>
#include <rocksdb/iterator.h>
#include <boost/json.hpp>

#include "store/agent_keys.h"
#include "store/agent_store_internal.h"

namespace ckptd {

namespace json = boost::json;
namespace k = agent_keys;
using namespace agent_internal;  // NOLINT(google-build-using-namespace): the store's own internals

namespace agent_internal {

constexpr char kRecordVersion = 1;

std::string EncodeCheckpoint(const AgentCheckpoint& c) {
  std::string v(1, kRecordVersion);
  v.push_back(c.parent_checkpoint_id ? 1 : 0);
  k::PutField(&v, c.thread_id);
  k::PutField(&v, c.checkpoint_ns);
  k::PutField(&v, c.checkpoint_id);
  k::PutField(&v, c.parent_checkpoint_id.value_or(""));
  k::PutField(&v, c.metadata_json);
  k::PutField(&v, c.checkpoint_json);
  return v;
}

Result<CheckpointView> ViewCheckpoint(std::string_view v) {
  if (v.size() < 2 || v[0] != kRecordVersion) return Corruption("agent checkpoint record: bad header");
  bool has_parent = v[1] != 0;
  v.remove_prefix(2);
  CheckpointView c;
  std::string_view parent;
  if (!k::GetField(&v, &c.thread_id) || !k::GetField(&v, &c.checkpoint_ns) || !k::GetField(&v, &c.checkpoint_id) ||
      !k::GetField(&v, &parent) || !k::GetField(&v, &c.metadata_json) || !k::GetField(&v, &c.checkpoint_json)) {
    return Corruption("agent checkpoint record: truncated");
  }
  if (has_parent) c.parent_checkpoint_id = parent;
  return c;
}

Result<AgentCheckpoint> DecodeCheckpoint(std::string_view v) {
  CKPTD_ASSIGN_OR_RETURN(CheckpointView view, ViewCheckpoint(v));
  AgentCheckpoint c;
  c.thread_id = view.thread_id;
  c.checkpoint_ns = view.checkpoint_ns;
  c.checkpoint_id = view.checkpoint_id;
  if (view.parent_checkpoint_id) c.parent_checkpoint_id = std::string(*view.parent_checkpoint_id);
  c.metadata_json = view.metadata_json;
  c.checkpoint_json = view.checkpoint_json;
  return c;
}

}  // namespace agent_internal

namespace {

std::string EncodeBlob(const AgentBlob& b) {
  std::string v(1, b.data ? 1 : 0);
  k::PutField(&v, b.type);
  k::PutField(&v, b.data.value_or(""));
  return v;
}

Status DecodeBlob(std::string_view v, AgentBlob* b) {
  if (v.empty()) return Corruption("agent blob: empty value");
  bool has = v[0] != 0;
  v.remove_prefix(1);
  std::string_view type, data;
  if (!k::GetField(&v, &type) || !k::GetField(&v, &data)) return Corruption("agent blob: truncated");
  b->type = type;
  if (has)
    b->data = std::string(data);
  else
    b->data.reset();
  return Status::Ok();
}

std::string EncodeWrite(const AgentWrite& w) {
  std::string v(1, w.type ? 1 : 0);
  k::PutField(&v, w.type.value_or(""));
  k::PutField(&v, w.channel);
  k::PutField(&v, w.task_path);
  k::PutField(&v, w.data);
  return v;
}

Status DecodeWrite(std::string_view v, AgentWrite* w) {
  if (v.empty()) return Corruption("agent write: empty value");
  bool has_type = v[0] != 0;
  v.remove_prefix(1);
  std::string_view type, channel, path, data;
  if (!k::GetField(&v, &type) || !k::GetField(&v, &channel) || !k::GetField(&v, &path) || !k::GetField(&v, &data)) {
    return Corruption("agent write: truncated");
  }
  if (has_type)
    w->type = std::string(type);
  else
    w->type.reset();
  w->channel = channel;
  w->task_path = path;
  w->data = data;
  return Status::Ok();
}

// The seek key for "ids strictly older than `before`" under a prefix that is
// followed by Desc(id): just past every key that starts with Desc(before).
std::string SeekPastId(const std::string& prefix, std::string_view before) {
  std::string d;
  k::AppendDesc(&d, before);
  return k::PrefixEnd(prefix + d);
}

bool NumberEqual(const json::value& a, const json::value& b) {
  if (a.is_double() || b.is_double()) return a.to_number<double>() == b.to_number<double>();
  if (a.is_int64() && b.is_int64()) return a.get_int64() == b.get_int64();
  if (a.is_uint64() && b.is_uint64()) return a.get_uint64() == b.get_uint64();
  // int64 vs uint64: equal only when the int64 is non-negative.
  int64_t i = a.is_int64() ? a.get_int64() : b.get_int64();
  uint64_t u = a.is_uint64() ? a.get_uint64() : b.get_uint64();
  return i >= 0 && static_cast<uint64_t>(i) == u;
}

bool Contains(const json::value& hay, const json::value& needle, bool top) {
  if (needle.is_object()) {
    if (!hay.is_object()) return false;
    const auto& h = hay.get_object();
    for (const auto& kv : needle.get_object()) {
      const json::value* hv = h.if_contains(kv.key());
      if (!hv || !Contains(*hv, kv.value(), false)) return false;
    }
    return true;
  }
  if (needle.is_array()) {
    if (!hay.is_array()) return false;
    for (const auto& n : needle.get_array()) {
      bool found = false;
      for (const auto& h : hay.get_array()) {
        // Postgres compares array elements structurally: an object element
        // contains an object, an array element an array, scalars are equal.
        if ((n.is_object() || n.is_array()) ? Contains(h, n, false) : Contains(h, n, false) && !h.is_array()) {
          found = true;
          break;
        }
      }
      if (!found) return false;
    }
    return true;
  }
  // Scalar needle.
  if (top && hay.is_array()) {
    for (const auto& h : hay.get_array())
      if (!h.is_array() && !h.is_object() && Contains(h, needle, false)) return true;
    return false;
  }
  if (needle.is_number() && hay.is_number()) return NumberEqual(hay, needle);
  return hay == needle;
}

// A metadata filter, with a test on the stored text that rules most
// records out without parsing them. In JSON text without a backslash every
// string (key or value) is written as its own characters between quotes, so
// a record whose text has no backslash can contain the filter only if each
// of the filter's strings appears there quoted; a filter string that would
// need an escape cannot appear at all. Text with a backslash is parsed.
class MetadataFilter {
 public:
  explicit MetadataFilter(const json::object& filter) : needle_(filter) { Collect(needle_); }

  Result<bool> Matches(std::string_view text, std::string_view checkpoint_id) const {
    if (text.find('\\') == std::string_view::npos) {
      if (needs_escape_) return false;
      for (const auto& quoted : quoted_)
        if (text.find(quoted) == std::string_view::npos) return false;
    }
    json::monotonic_resource scratch;
    json::error_code ec;
    json::value meta = json::parse(text, ec, &scratch);
    if (ec) return Corruption(fmt::format("agent checkpoint {}: metadata is not JSON", checkpoint_id));
    return JsonContains(meta, needle_);
  }

 private:
  void Add(std::string_view str) {
    for (char ch : str)
      if (ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20) needs_escape_ = true;
    quoted_.push_back(fmt::format("\"{}\"", str));
  }
  void Collect(const json::value& v) {
    if (v.is_string()) return Add(v.get_string());
    if (v.is_array())
      for (const auto& e : v.get_array()) Collect(e);
    if (v.is_object()) {
      for (const auto& kv : v.get_object()) {
        Add(kv.key());
        Collect(kv.value());
      }
    }
  }

  json::value needle_;
  std::vector<std::string> quoted_;
  bool needs_escape_ = false;
};

}  // namespace

bool JsonContains(const json::value& hay, const json::value& needle) { return Contains(hay, needle, true); }

std::string VersionString(const json::value& v) {
  if (v.is_string()) return std::string(v.get_string());
  if (v.is_int64()) return std::to_string(v.get_int64());
  if (v.is_uint64()) return std::to_string(v.get_uint64());
  if (v.is_double()) {
    double d = v.get_double();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e16) return fmt::format("{:.1f}", d);
    return fmt::format("{}", d);
  }
  return json::serialize(v);
}

namespace agent_internal {

Status NamedBlobs(const AgentCheckpoint& c, std::vector<AgentBlob>* wanted, std::vector<std::string>* keys) {
  // Read once and dropped: its memory comes from one block, freed at once.
  json::monotonic_resource scratch;
  json::error_code ec;
  json::value cp = json::parse(c.checkpoint_json, ec, &scratch);
  if (ec || !cp.is_object()) return Corruption("agent checkpoint " + c.checkpoint_id + ": not a JSON object");
  const json::value* cv = cp.get_object().if_contains("channel_versions");
  if (!cv || !cv->is_object()) return Status::Ok();
  for (const auto& kv : cv->get_object()) {
    AgentBlob b;
    b.channel = kv.key();
    b.version = VersionString(kv.value());
    keys->push_back(k::BlobKey(c.thread_id, c.checkpoint_ns, b.channel, b.version));
    wanted->push_back(std::move(b));
  }
  return Status::Ok();
}

Status PutCheckpoint(rocksdb::WriteBatch* batch, rocksdb::ColumnFamilyHandle* cf, const AgentCheckpoint& c) {
  for (auto s :
       {batch->Put(cf, S(k::CheckpointKey(c.thread_id, c.checkpoint_ns, c.checkpoint_id)), S(EncodeCheckpoint(c))),
        batch->Put(cf, S(k::ThreadIndexKey(c.thread_id, c.checkpoint_id, c.checkpoint_ns)), ""),
        batch->Put(cf, S(k::GlobalIndexKey(c.checkpoint_id, c.thread_id, c.checkpoint_ns)), "")}) {
    if (!s.ok()) return FromRocks(s, "agent: batch");
  }
  return Status::Ok();
}

Status DeleteCheckpoint(rocksdb::WriteBatch* batch, rocksdb::ColumnFamilyHandle* cf, std::string_view thread,
                        std::string_view ns, std::string_view id) {
  for (auto s :
       {batch->Delete(cf, S(k::CheckpointKey(thread, ns, id))), batch->Delete(cf, S(k::ThreadIndexKey(thread, id, ns))),
        batch->Delete(cf, S(k::GlobalIndexKey(id, thread, ns)))}) {
    if (!s.ok()) return FromRocks(s, "agent: batch");
  }
  return Status::Ok();
}

}  // namespace agent_internal

AgentStore::AgentStore(Db* db, const Clock* clock, size_t tuple_cache_bytes)
    : db_(db),
      clock_(clock),
      checkpoints_(db->Handle(cf::kAgentCheckpoints)),
      blobs_(db->Handle(cf::kAgentBlobs)),
      writes_(db->Handle(cf::kAgentWrites)),
      tuples_(tuple_cache_bytes) {}

size_t AgentStore::StripeOf(std::string_view thread_id) { return std::hash<std::string_view>{}(thread_id) % kStripes; }

std::mutex& AgentStore::LockFor(std::string_view thread_id) { return locks_[StripeOf(thread_id)]; }

Result<std::optional<std::string>> AgentStore::ReadThreadRecord(std::string_view thread_id,
                                                                const std::string& key) const {
  size_t stripe = StripeOf(thread_id);
  if (auto it = records_[stripe].find(key); it != records_[stripe].end()) return it->second;
  std::optional<std::string> value(std::in_place);
  auto s = db_->raw()->Get(ReadOptionsFor(), checkpoints_, S(key), &*value);
  if (s.IsNotFound()) {
    value.reset();
  } else if (!s.ok()) {
    return FromRocks(s, "agent: read thread record");
  }
  RememberThreadRecord(stripe, key, value);
  return value;
}

void AgentStore::RememberThreadRecord(size_t stripe, const std::string& key, std::optional<std::string> value) const {
  auto& records = records_[stripe];
  if (records.size() >= kCachedRecordsPerStripe && !records.contains(key)) records.clear();
  records.insert_or_assign(key, std::move(value));
}

namespace {
// Walks a written (or refused) batch and sets (or drops) the record cache's
// entries for the tombstone and retention keys it writes.
class RecordCacheUpdate : public rocksdb::WriteBatch::Handler {
 public:
  using Apply = std::function<void(std::string_view thread, const std::string& key, std::optional<std::string>)>;
  RecordCacheUpdate(uint32_t cf_id, Apply apply) : cf_id_(cf_id), apply_(std::move(apply)) {}
  rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& key, const rocksdb::Slice& value) override {
    Record(cf, key, value.ToString());
    return rocksdb::Status::OK();
  }
  rocksdb::Status DeleteCF(uint32_t cf, const rocksdb::Slice& key) override {
    Record(cf, key, std::nullopt);
    return rocksdb::Status::OK();
  }
  rocksdb::Status SingleDeleteCF(uint32_t cf, const rocksdb::Slice& key) override { return DeleteCF(cf, key); }
  rocksdb::Status DeleteRangeCF(uint32_t, const rocksdb::Slice&, const rocksdb::Slice&) override {
    return rocksdb::Status::OK();  // only blob and write keys go by range
  }
  rocksdb::Status MergeCF(uint32_t, const rocksdb::Slice&, const rocksdb::Slice&) override {
    return rocksdb::Status::OK();
  }

 private:
  void Record(uint32_t cf, const rocksdb::Slice& key, std::optional<std::string> value) {
    std::string_view rest = V(key);
    if (cf != cf_id_ || rest.empty() || (rest[0] != k::kTombstoneTag && rest[0] != k::kThreadMetaTag)) return;
    rest.remove_prefix(1);
    std::string thread;
    if (k::ReadAsc(&rest, &thread) && rest.empty()) apply_(thread, key.ToString(), std::move(value));
  }
  uint32_t cf_id_;
  Apply apply_;
};
}  // namespace

namespace {
// Collects the threads whose tuples a batch changes: those of the
// checkpoint records, blobs and writes it puts or deletes.
class TupleThreads : public rocksdb::WriteBatch::Handler {
 public:
  TupleThreads(uint32_t checkpoints_id, std::vector<std::string>* out) : checkpoints_id_(checkpoints_id), out_(out) {}
  rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& key, const rocksdb::Slice&) override {
    return Record(cf, key);
  }
  rocksdb::Status DeleteCF(uint32_t cf, const rocksdb::Slice& key) override { return Record(cf, key); }
  rocksdb::Status SingleDeleteCF(uint32_t cf, const rocksdb::Slice& key) override { return Record(cf, key); }
  rocksdb::Status DeleteRangeCF(uint32_t cf, const rocksdb::Slice& begin, const rocksdb::Slice&) override {
    return Record(cf, begin);  // ranges span one thread's keys
  }
  rocksdb::Status MergeCF(uint32_t cf, const rocksdb::Slice& key, const rocksdb::Slice&) override {
    return Record(cf, key);
  }

 private:
  rocksdb::Status Record(uint32_t cf, const rocksdb::Slice& key) {
    std::string_view rest = V(key);
    if (cf == checkpoints_id_) {
      if (rest.empty() || rest[0] != k::kCheckpointTag) return rocksdb::Status::OK();  // indexes, thread records
      rest.remove_prefix(1);
    }
    if (!k::ReadAsc(&rest, &thread_)) return rocksdb::Status::Corruption("agent batch: key without a thread");
    if (std::find(out_->begin(), out_->end(), thread_) == out_->end()) out_->push_back(thread_);
    return rocksdb::Status::OK();
  }
  uint32_t checkpoints_id_;
  std::vector<std::string>* out_;
  std::string thread_;
};
}  // namespace

Status AgentStore::Commit(rocksdb::WriteBatch* batch, Sync sync) {
  // Readers of the tuple cache miss while the threads' write is under way.
  std::vector<std::string> threads;
  if (tuples_.enabled()) {
    TupleThreads collect(checkpoints_->GetID(), &threads);
    if (auto s = batch->Iterate(&collect); !s.ok()) return FromRocks(s, "agent: batch");
  }
  tuples_.BeginWrite(threads);
  Status st = db_->Write(batch, sync);
  tuples_.EndWrite(threads);
  RecordCacheUpdate update(checkpoints_->GetID(), [&](std::string_view thread, const std::string& key,
                                                      std::optional<std::string> value) {
    if (st.ok()) {
      RememberThreadRecord(StripeOf(thread), key, std::move(value));
    } else {
      records_[StripeOf(thread)].erase(key);  // written or not: read it again
    }
  });
  batch->Iterate(&update).PermitUncheckedError();
  return st;
}

void AgentStore::ForgetThreadRecords() {
  for (size_t i = 0; i < kStripes; ++i) {
    std::lock_guard lock(locks_[i]);
    records_[i].clear();
  }
}

Result<std::unique_lock<std::mutex>> AgentStore::LockThread(std::string_view thread_id, AgentWriteGroup* group) {
  size_t stripe = StripeOf(thread_id);
  std::unique_lock lock(locks_[stripe], std::defer_lock);
  if (group) {
    if (group->Holds(stripe)) {
      // The call reads what the group wrote of its thread: written first.
      if (group->HasWritesOf(thread_id)) CKPTD_RETURN_IF_ERROR(group->Write(false));
      return lock;  // the group holds the stripe
    }
    if (lock.try_lock()) {
      group->locks_.emplace_back(stripe, std::move(lock));
      return std::unique_lock<std::mutex>();
    }
    // A group never waits holding locks: it writes and lets go first.
    CKPTD_RETURN_IF_ERROR(group->Flush());
  }
  if (!NonBlockingScope::Active()) {
    lock.lock();
  } else if (!lock.try_lock()) {
    return NonBlockingScope::Refuse(fmt::format("agent: thread {} is locked", thread_id));
  }
  if (!group) return lock;
  group->locks_.emplace_back(stripe, std::move(lock));
  return std::unique_lock<std::mutex>();
}

Status AgentStore::Apply(std::string_view thread_id, Sync sync, AgentWriteGroup* group,
                         const std::function<Status(rocksdb::WriteBatch*)>& fill) {
  if (group) return group->Add(thread_id, fill);
  rocksdb::WriteBatch batch;
  CKPTD_RETURN_IF_ERROR(fill(&batch));
  if (batch.Count() == 0) return Status::Ok();
  return Commit(&batch, sync);
}

Status AgentStore::Put(const AgentCheckpoint& c, const std::vector<AgentBlob>& blobs, Sync sync,
                       AgentWriteGroup* group) {
  CKPTD_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock, LockThread(c.thread_id, group));
  CKPTD_RETURN_IF_ERROR(RefuseLate(c.thread_id, {c.checkpoint_id, c.parent_checkpoint_id.value_or("")}));
  auto fill = [&](rocksdb::WriteBatch* batch) -> Status {
    std::set<std::string> seen;
    std::string existing;
    for (const auto& b : blobs) {
      std::string key = k::BlobKey(c.thread_id, c.checkpoint_ns, b.channel, b.version);
      if (!seen.insert(key).second) continue;  // the first of duplicates wins, as stored ones do
      auto s = db_->raw()->Get(ReadOptionsFor(), blobs_, S(key), &existing);
      if (s.ok()) continue;  // insert-if-absent: (channel, version) names immutable content
      if (!s.IsNotFound()) return FromRocks(s, "agent put: read blob");
      auto ps = batch->Put(blobs_, S(key), S(EncodeBlob(b)));
      if (!ps.ok()) return FromRocks(ps, "agent put: batch");
    }
    CKPTD_RETURN_IF_ERROR(PutCheckpoint(batch, checkpoints_, c));
    return TouchInto(c.thread_id, nullptr, batch);
  };
  return Apply(c.thread_id, sync, group, fill).WithContext("agent put " + c.thread_id + "/" + c.checkpoint_id);
}

Status AgentStore::PutWrites(std::string_view thread_id, std::string_view ns, std::string_view checkpoint_id,
                             const std::vector<AgentWrite>& writes, bool upsert, Sync sync, AgentWriteGroup* group) {
  if (writes.empty()) return Status::Ok();
  CKPTD_ASSIGN_OR_RETURN(std::unique_lock<std::mutex> lock, LockThread(thread_id, group));
  CKPTD_RETURN_IF_ERROR(RefuseLate(thread_id, {checkpoint_id}));
  auto fill = [&](rocksdb::WriteBatch* batch) -> Status {
    std::set<std::string> seen;
    std::string existing;
    uint32_t before = batch->Count();
    for (const auto& w : writes) {
      std::string key = k::WriteKey(thread_id, ns, checkpoint_id, w.task_id, w.idx);
      if (!upsert) {
        if (!seen.insert(key).second) continue;
        auto s = db_->raw()->Get(ReadOptionsFor(), writes_, S(key), &existing);
        if (s.ok()) continue;
        if (!s.IsNotFound()) return FromRocks(s, "agent put-writes: read");
      }
      // With upsert a later duplicate in the batch replaces an earlier one.
      auto ps = batch->Put(writes_, S(key), S(EncodeWrite(w)));
      if (!ps.ok()) return FromRocks(ps, "agent put-writes: batch");
    }
    if (batch->Count() == before) return Status::Ok();  // every write was there
    return TouchInto(thread_id, nullptr, batch);
  };
  return Apply(thread_id, sync, group, fill)
      .WithContext(fmt::format("agent put-writes {}/{}", thread_id, checkpoint_id));
}

AgentWriteGroup::~AgentWriteGroup() { Flush().IgnoreError(); }

bool AgentWriteGroup::Holds(size_t stripe) const {
  return std::any_of(locks_.begin(), locks_.end(), [&](const auto& held) { return held.first == stripe; });
}

bool AgentWriteGroup::HasWritesOf(std::string_view thread_id) const {
  return std::find(threads_.begin(), threads_.end(), thread_id) != threads_.end();
}

Status AgentWriteGroup::Add(std::string_view thread_id, const std::function<Status(rocksdb::WriteBatch*)>& fill) {
  batch_.SetSavePoint();
  uint32_t before = batch_.Count();
  if (Status st = fill(&batch_); !st.ok()) {
    batch_.RollbackToSavePoint().PermitUncheckedError();
    return st;
  }
  batch_.PopSavePoint().PermitUncheckedError();
  if (batch_.Count() != before && !HasWritesOf(thread_id)) threads_.emplace_back(thread_id);
  return Status::Ok();
}

Status AgentWriteGroup::Write(bool release) {
  Status st = batch_.Count() ? store_->Commit(&batch_, Sync::kDeferred) : Status::Ok();
  batch_.Clear();
  threads_.clear();
  if (release) locks_.clear();  // after Commit: the record cache is updated under the locks
  if (!st.ok() && first_error_.ok()) first_error_ = st;
  return st;
}

Result<std::vector<AgentCheckpoint>> AgentStore::List(const AgentListQuery& q) const {
  SnapshotHolder snap(db_->raw());
  return Scan(q, snap.get());
}

Result<std::vector<AgentTuple>> AgentStore::ListTuples(const AgentListQuery& q, bool values, bool writes) const {
  // A thread's whole tuples may come from the tuple cache, as of a ticket
  // taken before the snapshot.
  std::optional<AgentTupleCache::Ticket> ticket;
  if (q.thread_id && values && writes) ticket = tuples_.Take(*q.thread_id);
  SnapshotHolder snap(db_->raw());
  rocksdb::ReadOptions ro = ReadOptionsFor(snap.get());
  CKPTD_ASSIGN_OR_RETURN(std::vector<AgentCheckpoint> found, Scan(q, snap.get()));
  std::vector<AgentTuple> out(found.size()), todo;  // todo: those to read, in order
  std::vector<size_t> todo_at;
  for (size_t i = 0; i < found.size(); ++i) {
    std::optional<AgentTuple> held;
    if (ticket) held = tuples_.Find(*ticket, found[i].thread_id, found[i].checkpoint_ns, found[i].checkpoint_id);
    if (held) {
      out[i] = std::move(*held);
      continue;
    }
    todo.emplace_back().checkpoint = std::move(found[i]);
    todo_at.push_back(i);
  }
  CKPTD_RETURN_IF_ERROR(
      NonBlockingScope::Spend(todo.size() * (size_t{values} + size_t{writes}), "agent list: many items"));
  if (values) CKPTD_RETURN_IF_ERROR(ReadBlobs(ro, todo));
  if (writes) {
    // One iterator seeks to each item's writes (making one costs more than
    // a seek), oldest item first: the items come newest first, their writes
    // sort oldest first, and a seek forward within the block the iterator
    // is on skips the index.
    std::unique_ptr<rocksdb::Iterator> wit(db_->raw()->NewIterator(ro, writes_));
    for (size_t i = todo.size(); i-- > 0;)
      CKPTD_RETURN_IF_ERROR(ReadWrites(wit.get(), todo[i].checkpoint, &todo[i].pending_writes));
  }
  // The first item of an unfiltered page from the top of one namespace is
  // that namespace's newest.
  bool first_is_newest = q.checkpoint_ns && !q.before && !(q.filter && !q.filter->empty());
  for (size_t j = 0; j < todo.size(); ++j) {
    if (ticket) tuples_.Insert(*ticket, todo[j], first_is_newest && todo_at[j] == 0);
    out[todo_at[j]] = std::move(todo[j]);
  }
  return out;
}

Result<std::vector<AgentCheckpoint>> AgentStore::Scan(const AgentListQuery& q, const rocksdb::Snapshot* snapshot) const {
  std::vector<AgentCheckpoint> out;
  if (q.limit == 0) return out;
  rocksdb::DB* db = db_->raw();
  rocksdb::ReadOptions ro = ReadOptionsFor(snapshot);
  std::optional<MetadataFilter> filter;
  if (q.filter && !q.filter->empty()) filter.emplace(*q.filter);

  // Adds `record` when it passes the filter; false once the page is full.
  auto take = [&](std::string_view record) -> Result<bool> {
    if (filter) {
      CKPTD_ASSIGN_OR_RETURN(CheckpointView view, ViewCheckpoint(record));
      CKPTD_ASSIGN_OR_RETURN(bool match, filter->Matches(view.metadata_json, view.checkpoint_id));
      if (!match) return true;
    }
    CKPTD_ASSIGN_OR_RETURN(AgentCheckpoint c, DecodeCheckpoint(record));
    out.push_back(std::move(c));
    return out.size() < q.limit;
  };

  std::string prefix(1, q.thread_id ? (q.checkpoint_ns ? k::kCheckpointTag : k::kThreadIndexTag) : k::kGlobalIndexTag);
  if (q.thread_id) k::AppendAsc(&prefix, *q.thread_id);
  bool direct = q.thread_id && q.checkpoint_ns;
  if (direct) k::AppendAsc(&prefix, *q.checkpoint_ns);
  std::string start = q.before ? SeekPastId(prefix, *q.before) : prefix;

  PrefixScan scan(db, checkpoints_, snapshot, prefix, start);
  std::string record, id, thread, ns;
  for (; scan.it->Valid(); scan.it->Next()) {
    CKPTD_RETURN_IF_ERROR(NonBlockingScope::Spend(1, "agent list: a long scan"));
    if (direct) {
      CKPTD_ASSIGN_OR_RETURN(bool more, take(V(scan.it->value())));
      if (!more) break;
      continue;
    }
    std::string_view rest = V(scan.it->key()).substr(prefix.size());
    if (!k::ReadDesc(&rest, &id)) return Corruption("agent index key: bad checkpoint id");
    if (q.thread_id) {
      thread = *q.thread_id;
    } else if (!k::ReadAsc(&rest, &thread)) {
      return Corruption("agent index key: bad thread id");
    }
    if (!k::ReadAsc(&rest, &ns)) return Corruption("agent index key: bad namespace");
    if (q.checkpoint_ns && ns != *q.checkpoint_ns) continue;
    auto s = db->Get(ro, checkpoints_, S(k::CheckpointKey(thread, ns, id)), &record);
    if (s.IsNotFound()) continue;  // index without record: cannot happen in one batch; be lenient
    if (!s.ok()) return FromRocks(s, "agent list: read checkpoint");
    CKPTD_ASSIGN_OR_RETURN(bool more, take(record));
    if (!more) break;
  }
  if (!scan.it->status().ok()) return FromRocks(scan.it->status(), "agent list: scan");
  return out;
}

Result<std::optional<AgentTuple>> AgentStore::GetTuple(std::string_view thread_id, std::string_view ns,
                                                       const std::optional<std::string>& checkpoint_id) const {
  AgentTupleCache::Ticket ticket = tuples_.Take(thread_id);  // before the snapshot: a write between voids it
  if (auto held = tuples_.Find(ticket, thread_id, ns, checkpoint_id)) return held;
  rocksdb::DB* db = db_->raw();
  SnapshotHolder snap(db);
  rocksdb::ReadOptions ro = ReadOptionsFor(snap.get());

  std::string record;
  if (checkpoint_id) {
    auto s = db->Get(ro, checkpoints_, S(k::CheckpointKey(thread_id, ns, *checkpoint_id)), &record);
    if (s.IsNotFound()) return std::optional<AgentTuple>();
    if (!s.ok()) return FromRocks(s, "agent get-tuple: read checkpoint");
  } else {
    std::string prefix = k::ThreadPrefix(k::kCheckpointTag, thread_id);
    k::AppendAsc(&prefix, ns);
    PrefixScan scan(db, checkpoints_, snap.get(), prefix, prefix);
    if (!scan.it->Valid()) {
      if (!scan.it->status().ok()) return FromRocks(scan.it->status(), "agent get-tuple: scan");
      return std::optional<AgentTuple>();
    }
    record = scan.it->value().ToString();
  }
  AgentTuple t;
  CKPTD_ASSIGN_OR_RETURN(t.checkpoint, DecodeCheckpoint(record));
  CKPTD_RETURN_IF_ERROR(ReadBlobs(ro, std::span<AgentTuple>(&t, 1)));
  std::unique_ptr<rocksdb::Iterator> wit(db->NewIterator(ro, writes_));
  CKPTD_RETURN_IF_ERROR(ReadWrites(wit.get(), t.checkpoint, &t.pending_writes));
  tuples_.Insert(ticket, t, !checkpoint_id);
  return std::optional<AgentTuple>(std::move(t));
}

// Blobs named by channel_versions: a channel unchanged since an older
// checkpoint keeps its version, so its blob carries over.
Status AgentStore::ReadBlobs(const rocksdb::ReadOptions& ro, std::span<AgentTuple> tuples) const {
  std::vector<std::string> keys;
  std::vector<AgentBlob> wanted;
  std::vector<size_t> owner;  // the tuple each key is for
  for (size_t i = 0; i < tuples.size(); ++i) {
    CKPTD_RETURN_IF_ERROR(NamedBlobs(tuples[i].checkpoint, &wanted, &keys));
    owner.resize(keys.size(), i);
  }
  if (keys.empty()) return Status::Ok();
  std::vector<rocksdb::Slice> slices;
  for (const auto& key : keys) slices.emplace_back(key);
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db_->raw()->MultiGet(ro, blobs_, slices.size(), slices.data(), values.data(), statuses.data());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    if (!statuses[i].ok()) return FromRocks(statuses[i], "agent: read blob");
    CKPTD_RETURN_IF_ERROR(DecodeBlob(V(values[i]), &wanted[i]));
    tuples[owner[i]].blobs.push_back(std::move(wanted[i]));
  }
  return Status::Ok();
}

// The checkpoint's pending writes, by (task_id, idx).
Status AgentStore::ReadWrites(rocksdb::Iterator* it, const AgentCheckpoint& c, std::vector<AgentWrite>* out) const {
  std::string wprefix;
  k::AppendAsc(&wprefix, c.thread_id);
  k::AppendAsc(&wprefix, c.checkpoint_ns);
  k::AppendAsc(&wprefix, c.checkpoint_id);
  for (it->Seek(S(wprefix)); it->Valid() && V(it->key()).starts_with(wprefix); it->Next()) {
    std::string_view rest = V(it->key()).substr(wprefix.size());
    AgentWrite w;
    if (!k::ReadAsc(&rest, &w.task_id) || !k::ReadInt(&rest, &w.idx)) return Corruption("agent write key: malformed");
    CKPTD_RETURN_IF_ERROR(DecodeWrite(V(it->value()), &w));
    out->push_back(std::move(w));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "agent: scan writes");
  return Status::Ok();
}

Status AgentStore::RefuseLate(std::string_view thread_id, std::initializer_list<std::string_view> ids) const {
  CKPTD_ASSIGN_OR_RETURN(std::optional<std::string> tombstone, ReadThreadRecord(thread_id, k::TombstoneKey(thread_id)));
  if (!tombstone) return Status::Ok();
  const std::string& newest = *tombstone;
  for (std::string_view id : ids) {
    if (!id.empty() && id <= newest) {
      return Conflict(fmt::format(
          "thread {} was deleted: checkpoint {} belongs to its deleted history (ids up to {}); a new history needs "
          "newer checkpoint ids",
          thread_id, id, newest));
    }
  }
  return Status::Ok();
}

Status AgentStore::DeleteThread(std::string_view thread_id) {
  std::lock_guard lock(LockFor(thread_id));
  rocksdb::WriteBatch batch;
  CKPTD_RETURN_IF_ERROR(DeleteThreadInto(thread_id, &batch, nullptr));
  return Commit(&batch).WithContext(fmt::format("agent delete-thread {}", thread_id));
}

Result<uint64_t> AgentStore::CopyThread(std::string_view source, std::string_view target) {
  if (source == target) return Conflict(fmt::format("copy-thread: source and target are both {}", source));
  // Both threads' locks, in address order (they may share a stripe).
  std::mutex* first = &LockFor(source);
  std::mutex* second = &LockFor(target);
  if (second < first) std::swap(first, second);
  std::lock_guard lock_first(*first);
  std::unique_lock<std::mutex> lock_second;
  if (second != first) lock_second = std::unique_lock(*second);
  CKPTD_ASSIGN_OR_RETURN(bool taken, ThreadExists(target));
  if (taken) return Conflict(fmt::format("copy-thread: thread {} already has checkpoints", target));

  rocksdb::DB* db = db_->raw();
  SnapshotHolder snap(db);
  rocksdb::WriteBatch batch;
  uint64_t copied = 0;
  std::string cprefix = k::ThreadPrefix(k::kCheckpointTag, source);
  PrefixScan scan(db, checkpoints_, snap.get(), cprefix, cprefix);
  for (; scan.it->Valid(); scan.it->Next()) {
    CKPTD_ASSIGN_OR_RETURN(AgentCheckpoint c, DecodeCheckpoint(V(scan.it->value())));
    c.thread_id = std::string(target);
    CKPTD_RETURN_IF_ERROR(PutCheckpoint(&batch, checkpoints_, c));
    ++copied;
  }
  if (!scan.it->status().ok()) return FromRocks(scan.it->status(), "agent copy-thread: scan");
  if (copied == 0) return NotFound(fmt::format("copy-thread: thread {} has no checkpoint", source));
  // Blob and write keys start with Asc(thread): the rest is kept as it is.
  std::string from, to;
  k::AppendAsc(&from, source);
  k::AppendAsc(&to, target);
  for (auto* cfh : {blobs_, writes_}) {
    PrefixScan items(db, cfh, snap.get(), from, from);
    for (; items.it->Valid(); items.it->Next()) {
      std::string key = to + std::string(V(items.it->key()).substr(from.size()));
      if (auto s = batch.Put(cfh, S(key), items.it->value()); !s.ok()) return FromRocks(s, "agent copy-thread: batch");
    }
    if (!items.it->status().ok()) return FromRocks(items.it->status(), "agent copy-thread: scan");
  }
  if (auto s = batch.Delete(checkpoints_, S(k::TombstoneKey(target))); !s.ok())
    return FromRocks(s, "agent copy-thread: batch");
  // The copy keeps the source's own retention; its clock starts now.
  CKPTD_ASSIGN_OR_RETURN(AgentRetentionState source_retention, ReadRetention(source, snap.get()));
  CKPTD_RETURN_IF_ERROR(TouchInto(target, &source_retention.own, &batch));
  CKPTD_RETURN_IF_ERROR(Commit(&batch).WithContext(fmt::format("agent copy-thread {} -> {}", source, target)));
  return copied;
}

Result<bool> AgentStore::ThreadExists(std::string_view thread_id) const {
  std::string prefix = k::ThreadPrefix(k::kThreadIndexTag, thread_id);
  PrefixScan scan(db_->raw(), checkpoints_, nullptr, prefix, prefix);
  if (!scan.it->status().ok()) return FromRocks(scan.it->status(), "agent thread lookup");
  return scan.it->Valid();
}

}  // namespace ckptd

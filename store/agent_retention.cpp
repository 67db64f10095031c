// AgentStore's removals: delete-thread, prune, and retention (TTL records,
// the due index and the sweep). Key layout in store/agent_keys.h.
#include <algorithm>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "store/agent_keys.h"
#include "store/agent_store.h"
#include "store/agent_store_internal.h"

namespace ckptd {

namespace k = agent_keys;
using namespace agent_internal;  // NOLINT(google-build-using-namespace): the store's own internals

namespace {

constexpr char kMetaVersion = 1;
constexpr size_t kSweepPage = 256;     // due threads read at once
constexpr size_t kRebuildBatch = 512;  // retention records per batch when the default changes
constexpr int64_t kMaxHintSlackMs = 3600 * 1000;

// The value of a thread's 'u' key.
struct ThreadMeta {
  int64_t last_write_ms = 0;
  int64_t hint_ms = -1;  // the time of its 'e' key; -1: none
  AgentThreadRetention own;
};

std::string EncodeMeta(const ThreadMeta& m) {
  std::string v(1, kMetaVersion);
  k::AppendInt(&v, m.last_write_ms);
  k::AppendInt(&v, m.hint_ms);
  k::AppendInt(&v, m.own.ttl_s.value_or(-1));
  char strategy = 0;
  if (m.own.strategy) strategy = *m.own.strategy == AgentPruneStrategy::kDelete ? 1 : 2;
  v.push_back(strategy);
  return v;
}

Result<ThreadMeta> DecodeMeta(std::string_view v) {
  ThreadMeta m;
  int64_t ttl = -1;
  if (v.empty() || v[0] != kMetaVersion) return Corruption("agent retention record: bad header");
  v.remove_prefix(1);
  if (!k::ReadInt(&v, &m.last_write_ms) || !k::ReadInt(&v, &m.hint_ms) || !k::ReadInt(&v, &ttl) || v.size() != 1 ||
      v[0] < 0 || v[0] > 2) {
    return Corruption("agent retention record: malformed");
  }
  if (ttl >= 0) m.own.ttl_s = ttl;
  if (v[0] != 0) m.own.strategy = v[0] == 1 ? AgentPruneStrategy::kDelete : AgentPruneStrategy::kKeepLatest;
  return m;
}

AgentRetention Effective(const AgentThreadRetention& own, const AgentRetention& def) {
  return {own.ttl_s.value_or(def.ttl_s), own.strategy.value_or(def.strategy)};
}

// When the thread expires; nullopt: never.
std::optional<int64_t> DueMs(const ThreadMeta& m, const AgentRetention& def) {
  int64_t ttl = Effective(m.own, def).ttl_s;
  if (ttl <= 0) return std::nullopt;
  return m.last_write_ms + ttl * 1000;
}

AgentRetentionState StateOf(const ThreadMeta& m, const AgentRetention& def) {
  AgentRetentionState state;
  state.own = m.own;
  state.effective = Effective(m.own, def);
  state.last_write_ms = m.last_write_ms;
  state.expires_at_ms = DueMs(m, def);
  return state;
}

// Points the thread's hint at `due` (removes it when nullopt).
Status MoveHint(rocksdb::WriteBatch* batch, rocksdb::ColumnFamilyHandle* cf, std::string_view thread, ThreadMeta* m,
                std::optional<int64_t> due) {
  int64_t want = due.value_or(-1);
  if (m->hint_ms == want) return Status::Ok();
  if (m->hint_ms >= 0) {
    if (auto s = batch->Delete(cf, S(k::DueKey(m->hint_ms, thread))); !s.ok()) return FromRocks(s, "agent: batch");
  }
  if (want >= 0) {
    if (auto s = batch->Put(cf, S(k::DueKey(want, thread)), ""); !s.ok()) return FromRocks(s, "agent: batch");
  }
  m->hint_ms = want;
  return Status::Ok();
}

Status PutMeta(rocksdb::WriteBatch* batch, rocksdb::ColumnFamilyHandle* cf, std::string_view thread,
               const ThreadMeta& m) {
  if (auto s = batch->Put(cf, S(k::ThreadMetaKey(thread)), S(EncodeMeta(m))); !s.ok())
    return FromRocks(s, "agent: batch");
  return Status::Ok();
}

Result<std::optional<ThreadMeta>> ReadMeta(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, std::string_view thread,
                                           const rocksdb::Snapshot* snapshot) {
  rocksdb::ReadOptions ro = ReadOptionsFor(snapshot);
  std::string value;
  auto s = db->Get(ro, cf, S(k::ThreadMetaKey(thread)), &value);
  if (s.IsNotFound()) return std::optional<ThreadMeta>();
  if (!s.ok()) return FromRocks(s, "agent: read retention record");
  CKPTD_ASSIGN_OR_RETURN(ThreadMeta m, DecodeMeta(value));
  return std::optional<ThreadMeta>(std::move(m));
}

// How many keys of `cf` start with `prefix`.
Result<uint64_t> CountPrefix(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const std::string& prefix) {
  uint64_t n = 0;
  PrefixScan scan(db, cf, nullptr, prefix, prefix);
  for (; scan.it->Valid(); scan.it->Next()) ++n;
  if (!scan.it->status().ok()) return FromRocks(scan.it->status(), "agent: count");
  return n;
}

}  // namespace

AgentRetention AgentStore::DefaultRetention() const {
  std::lock_guard lock(default_mu_);
  return default_retention_;
}

Status AgentStore::SetDefaultRetention(const AgentRetention& retention) {
  {
    std::lock_guard lock(default_mu_);
    default_retention_ = retention;
  }
  rocksdb::DB* db = db_->raw();
  std::string stored;
  auto s = db->Get(ReadOptionsFor(), checkpoints_, S(k::kRetentionDefaultKey), &stored);
  if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "agent: read default retention");
  std::string want;
  k::AppendInt(&want, retention.ttl_s);
  if (s.ok() && stored == want) return Status::Ok();
  // The hints were computed with another default TTL: recompute each one.
  // The default's key goes last, so an interrupted pass is redone. The
  // pass rewrites retention records past the record cache: forget it.
  struct Forget {
    AgentStore* store;
    ~Forget() { store->ForgetThreadRecords(); }
  } forget{this};
  std::string prefix(1, k::kThreadMetaTag);
  PrefixScan scan(db, checkpoints_, nullptr, prefix, prefix);
  rocksdb::WriteBatch batch;
  std::string thread;
  for (; scan.it->Valid(); scan.it->Next()) {
    std::string_view rest = V(scan.it->key()).substr(1);
    if (!k::ReadAsc(&rest, &thread)) return Corruption("agent retention key: malformed");
    CKPTD_ASSIGN_OR_RETURN(ThreadMeta m, DecodeMeta(V(scan.it->value())));
    CKPTD_RETURN_IF_ERROR(MoveHint(&batch, checkpoints_, thread, &m, DueMs(m, retention)));
    CKPTD_RETURN_IF_ERROR(PutMeta(&batch, checkpoints_, thread, m));
    if (batch.Count() >= kRebuildBatch) {
      CKPTD_RETURN_IF_ERROR(db_->Write(&batch).WithContext("agent: rebuild retention index"));
      batch.Clear();
    }
  }
  if (!scan.it->status().ok()) return FromRocks(scan.it->status(), "agent: scan retention records");
  if (auto ps = batch.Put(checkpoints_, S(k::kRetentionDefaultKey), S(want)); !ps.ok())
    return FromRocks(ps, "agent: batch");
  return db_->Write(&batch).WithContext("agent: rebuild retention index");
}

Result<AgentRetentionState> AgentStore::ReadRetention(std::string_view thread_id,
                                                      const rocksdb::Snapshot* snapshot) const {
  CKPTD_ASSIGN_OR_RETURN(std::optional<ThreadMeta> m, ReadMeta(db_->raw(), checkpoints_, thread_id, snapshot));
  AgentRetentionState state = StateOf(m.value_or(ThreadMeta{}), DefaultRetention());
  if (!m) state.expires_at_ms.reset();  // never written: no clock runs
  return state;
}

Status AgentStore::TouchInto(std::string_view thread_id, const AgentThreadRetention* own, rocksdb::WriteBatch* batch,
                             AgentRetentionState* state) {
  CKPTD_ASSIGN_OR_RETURN(std::optional<std::string> stored, ReadThreadRecord(thread_id, k::ThreadMetaKey(thread_id)));
  ThreadMeta m;
  if (stored) {
    CKPTD_ASSIGN_OR_RETURN(m, DecodeMeta(*stored));
  }
  m.last_write_ms = clock_->NowMillis();
  if (own) m.own = *own;
  AgentRetention def = DefaultRetention();
  std::optional<int64_t> due = DueMs(m, def);
  // A hint may be early (the sweep moves it on): an existing hint slightly
  // before the new due time stays, so that a busy thread does not rewrite
  // its index entry on every write.
  int64_t slack = due ? std::min(Effective(m.own, def).ttl_s * 1000 / 8, kMaxHintSlackMs) : 0;
  bool keep = due && m.hint_ms >= 0 && m.hint_ms <= *due && *due - m.hint_ms <= slack;
  if (!keep) CKPTD_RETURN_IF_ERROR(MoveHint(batch, checkpoints_, thread_id, &m, due));
  CKPTD_RETURN_IF_ERROR(PutMeta(batch, checkpoints_, thread_id, m));
  if (state) *state = StateOf(m, def);
  return Status::Ok();
}

Result<AgentRetentionState> AgentStore::SetThreadRetention(std::string_view thread_id,
                                                           const AgentThreadRetention& own) {
  std::lock_guard lock(LockFor(thread_id));
  rocksdb::WriteBatch batch;
  AgentRetentionState state;
  CKPTD_RETURN_IF_ERROR(TouchInto(thread_id, &own, &batch, &state));
  CKPTD_RETURN_IF_ERROR(Commit(&batch).WithContext(fmt::format("agent retention {}", thread_id)));
  return state;
}

Result<AgentSweepResult> AgentStore::Sweep() {
  AgentSweepResult result;
  int64_t now = clock_->NowMillis();
  std::string prefix(1, k::kDueTag);
  std::string upper(1, k::kDueTag);
  k::AppendInt(&upper, now + 1);  // every hint at or before now sorts below
  for (;;) {
    std::vector<std::pair<int64_t, std::string>> due;
    {
      PrefixScan scan(db_->raw(), checkpoints_, nullptr, prefix, prefix);
      for (; scan.it->Valid() && due.size() < kSweepPage; scan.it->Next()) {
        if (V(scan.it->key()) >= V(upper)) break;
        std::string_view rest = V(scan.it->key()).substr(1);
        std::pair<int64_t, std::string> item;
        if (!k::ReadInt(&rest, &item.first) || !k::ReadAsc(&rest, &item.second))
          return Corruption("agent due key: malformed");
        due.push_back(std::move(item));
      }
      if (!scan.it->status().ok()) return FromRocks(scan.it->status(), "agent sweep: scan");
    }
    for (const auto& [hint, thread] : due) CKPTD_RETURN_IF_ERROR(SweepThread(thread, hint, &result));
    if (due.size() < kSweepPage) return result;
  }
}

// Every hint SweepThread() sees is at or before now; each leaves it removed
// or moved past now, so the sweep ends.
Status AgentStore::SweepThread(const std::string& thread_id, int64_t hint_ms, AgentSweepResult* result) {
  std::lock_guard lock(LockFor(thread_id));
  rocksdb::WriteBatch batch;
  CKPTD_ASSIGN_OR_RETURN(std::optional<ThreadMeta> found, ReadMeta(db_->raw(), checkpoints_, thread_id, nullptr));
  if (!found || found->hint_ms != hint_ms) {
    // Not the thread's hint (it moved after the scan, or is stray): drop it.
    if (auto s = batch.Delete(checkpoints_, S(k::DueKey(hint_ms, thread_id))); !s.ok())
      return FromRocks(s, "agent sweep: batch");
    return Commit(&batch).WithContext(fmt::format("agent sweep {}", thread_id));
  }
  ThreadMeta m = *found;
  AgentRetention def = DefaultRetention();
  std::optional<int64_t> due = DueMs(m, def);
  if (due && *due > clock_->NowMillis()) {
    CKPTD_RETURN_IF_ERROR(MoveHint(&batch, checkpoints_, thread_id, &m, due));
    CKPTD_RETURN_IF_ERROR(PutMeta(&batch, checkpoints_, thread_id, m));
  } else if (due && Effective(m.own, def).strategy == AgentPruneStrategy::kDelete) {
    CKPTD_RETURN_IF_ERROR(DeleteThreadInto(thread_id, &batch, &result->removed));
    ++result->threads;
  } else {
    // keep_latest, or no TTL any more: not due again until the next write.
    if (due) {
      CKPTD_RETURN_IF_ERROR(PruneInto(thread_id, true, std::nullopt, &batch, &result->removed));
      ++result->threads;
    }
    CKPTD_RETURN_IF_ERROR(MoveHint(&batch, checkpoints_, thread_id, &m, std::nullopt));
    CKPTD_RETURN_IF_ERROR(PutMeta(&batch, checkpoints_, thread_id, m));
  }
  return Commit(&batch).WithContext(fmt::format("agent sweep {}", thread_id));
}

Status AgentStore::DeleteThreadInto(std::string_view thread_id, rocksdb::WriteBatch* batch, AgentPruneResult* removed) {
  rocksdb::DB* db = db_->raw();
  std::string cprefix = k::ThreadPrefix(k::kCheckpointTag, thread_id);
  std::string newest;
  auto ts = db->Get(ReadOptionsFor(), checkpoints_, S(k::TombstoneKey(thread_id)), &newest);
  if (!ts.ok() && !ts.IsNotFound()) return FromRocks(ts, "agent delete-thread: read tombstone");
  {
    // The global index is ordered by id first, so its entries are found
    // through the thread's records; the rest goes by range.
    PrefixScan scan(db, checkpoints_, nullptr, cprefix, cprefix);
    std::string ns, id;
    for (; scan.it->Valid(); scan.it->Next()) {
      std::string_view rest = V(scan.it->key()).substr(cprefix.size());
      if (!k::ReadAsc(&rest, &ns) || !k::ReadDesc(&rest, &id)) return Corruption("agent checkpoint key: malformed");
      CKPTD_RETURN_IF_ERROR(DeleteCheckpoint(batch, checkpoints_, thread_id, ns, id));
      newest = std::max(newest, id);
      if (removed) ++removed->checkpoints;
    }
    if (!scan.it->status().ok()) return FromRocks(scan.it->status(), "agent delete-thread: scan");
  }
  if (!newest.empty()) {
    auto s = batch->Put(checkpoints_, S(k::TombstoneKey(thread_id)), S(newest));
    if (!s.ok()) return FromRocks(s, "agent delete-thread: batch");
  }
  CKPTD_ASSIGN_OR_RETURN(std::optional<ThreadMeta> meta, ReadMeta(db, checkpoints_, thread_id, nullptr));
  if (meta) {
    CKPTD_RETURN_IF_ERROR(MoveHint(batch, checkpoints_, thread_id, &*meta, std::nullopt));
    if (auto s = batch->Delete(checkpoints_, S(k::ThreadMetaKey(thread_id))); !s.ok())
      return FromRocks(s, "agent delete-thread: batch");
  }
  std::string tprefix;
  k::AppendAsc(&tprefix, thread_id);
  std::string tend = k::PrefixEnd(tprefix);
  if (removed) {  // counting reads every key that DeleteRange drops unread
    CKPTD_ASSIGN_OR_RETURN(uint64_t blobs, CountPrefix(db, blobs_, tprefix));
    CKPTD_ASSIGN_OR_RETURN(uint64_t writes, CountPrefix(db, writes_, tprefix));
    removed->blobs += blobs;
    removed->writes += writes;
  }
  for (auto* cfh : {blobs_, writes_}) {
    auto s = batch->DeleteRange(cfh, S(tprefix), S(tend));
    if (!s.ok()) return FromRocks(s, "agent delete-thread: batch");
  }
  return Status::Ok();
}

Result<AgentPruneResult> AgentStore::Prune(const std::vector<std::string>& thread_ids, AgentPruneStrategy strategy,
                                           const std::optional<std::string>& before) {
  AgentPruneResult removed;
  for (const auto& thread : thread_ids) {
    std::lock_guard lock(LockFor(thread));
    rocksdb::WriteBatch batch;
    if (strategy == AgentPruneStrategy::kDelete && !before) {
      CKPTD_RETURN_IF_ERROR(DeleteThreadInto(thread, &batch, &removed));
    } else {
      CKPTD_RETURN_IF_ERROR(PruneInto(thread, strategy == AgentPruneStrategy::kKeepLatest, before, &batch, &removed));
    }
    if (batch.Count() == 0) continue;
    CKPTD_RETURN_IF_ERROR(Commit(&batch).WithContext(fmt::format("agent prune {}", thread)));
  }
  return removed;
}

// A namespace's newest checkpoint is the first of its 'c' keys (ids descend).
Status AgentStore::PruneInto(std::string_view thread_id, bool keep_latest, const std::optional<std::string>& before,
                             rocksdb::WriteBatch* batch, AgentPruneResult* removed) {
  rocksdb::DB* db = db_->raw();
  std::set<std::pair<std::string, std::string>> kept;  // (ns, id)
  std::set<std::string> named_blobs;
  std::string cprefix = k::ThreadPrefix(k::kCheckpointTag, thread_id);
  PrefixScan scan(db, checkpoints_, nullptr, cprefix, cprefix);
  std::string ns, id;
  std::optional<std::string> last_ns;
  for (; scan.it->Valid(); scan.it->Next()) {
    std::string_view rest = V(scan.it->key()).substr(cprefix.size());
    if (!k::ReadAsc(&rest, &ns) || !k::ReadDesc(&rest, &id)) return Corruption("agent checkpoint key: malformed");
    bool newest_of_ns = last_ns != ns;
    last_ns = ns;
    if ((keep_latest && newest_of_ns) || (before && id >= *before)) {
      CKPTD_ASSIGN_OR_RETURN(AgentCheckpoint c, DecodeCheckpoint(V(scan.it->value())));
      std::vector<AgentBlob> unused;
      std::vector<std::string> keys;
      CKPTD_RETURN_IF_ERROR(NamedBlobs(c, &unused, &keys));
      named_blobs.insert(keys.begin(), keys.end());
      kept.emplace(ns, id);
      continue;
    }
    CKPTD_RETURN_IF_ERROR(DeleteCheckpoint(batch, checkpoints_, thread_id, ns, id));
    ++removed->checkpoints;
  }
  if (!scan.it->status().ok()) return FromRocks(scan.it->status(), "agent prune: scan");

  std::string tprefix;
  k::AppendAsc(&tprefix, thread_id);
  PrefixScan writes(db, writes_, nullptr, tprefix, tprefix);
  for (; writes.it->Valid(); writes.it->Next()) {
    std::string_view rest = V(writes.it->key()).substr(tprefix.size());
    if (!k::ReadAsc(&rest, &ns) || !k::ReadAsc(&rest, &id)) return Corruption("agent write key: malformed");
    if (kept.count({ns, id})) continue;
    if (auto s = batch->Delete(writes_, writes.it->key()); !s.ok()) return FromRocks(s, "agent prune: batch");
    ++removed->writes;
  }
  if (!writes.it->status().ok()) return FromRocks(writes.it->status(), "agent prune: scan writes");
  PrefixScan blobs(db, blobs_, nullptr, tprefix, tprefix);
  for (; blobs.it->Valid(); blobs.it->Next()) {
    if (named_blobs.count(blobs.it->key().ToString())) continue;
    if (auto s = batch->Delete(blobs_, blobs.it->key()); !s.ok()) return FromRocks(s, "agent prune: batch");
    ++removed->blobs;
  }
  if (!blobs.it->status().ok()) return FromRocks(blobs.it->status(), "agent prune: scan blobs");
  return Status::Ok();
}

}  // namespace ckptd

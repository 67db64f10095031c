#include "store/catalog.h"

#include <algorithm>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace ckptd {

namespace json = boost::json;

namespace {

uint64_t DecodeBigEndian(std::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

Result<CheckpointRecord> Decode(const std::string& bytes) {
  json::error_code ec;
  auto v = json::parse(bytes, ec);
  if (ec) return Corruption("checkpoint record is not JSON: " + ec.message());
  return CheckpointRecord::FromJson(v);
}

}  // namespace

Catalog::Catalog(Db* db, const Clock* clock) : db_(db), clock_(clock) {}

std::string Catalog::IndexKey(uint64_t seq, std::string_view id) {
  std::string key(8, '\0');
  for (int i = 7; i >= 0; --i) {
    key[i] = static_cast<char>(seq & 0xff);
    seq >>= 8;
  }
  key.append(id);
  return key;
}

Status Catalog::Init() {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->raw()->NewIterator(rocksdb::ReadOptions(), db_->Handle(cf::kCheckpointsByCreated)));
  it->SeekToLast();
  if (it->Valid()) next_seq_ = DecodeBigEndian(it->key().ToStringView()) + 1;
  return FromRocks(it->status(), "catalog init");
}

std::mutex& Catalog::LockFor(std::string_view id) { return locks_[std::hash<std::string_view>{}(id) % locks_.size()]; }

Status Catalog::Commit(const CheckpointRecord* before, const CheckpointRecord* after, const BatchExtra& extra,
                       Sync sync) {
  rocksdb::WriteBatch batch;
  rocksdb::Status s;
  if (after) {
    s = batch.Put(db_->Handle(cf::kCheckpoints), after->id, json::serialize(after->ToJson()));
    if (s.ok() && !before) s = batch.Put(db_->Handle(cf::kCheckpointsByCreated), IndexKey(after->seq, after->id), "");
  } else {
    s = batch.Delete(db_->Handle(cf::kCheckpoints), before->id);
    if (s.ok()) s = batch.Delete(db_->Handle(cf::kCheckpointsByCreated), IndexKey(before->seq, before->id));
  }
  CKPTD_RETURN_IF_ERROR(FromRocks(s, "batch"));
  if (extra && after) CKPTD_RETURN_IF_ERROR(extra(*after, &batch));
  for (auto* o : observers_) CKPTD_RETURN_IF_ERROR(o->OnWrite(before, after, &batch));
  CKPTD_RETURN_IF_ERROR(db_->Write(&batch, sync));
  for (auto* o : observers_) o->AfterWrite(before, after);
  return Status::Ok();
}

Result<CheckpointRecord> Catalog::Create(std::optional<std::string> name, const BatchExtra& extra, Sync sync) {
  CheckpointRecord r;
  r.id = NewUuid();
  r.name = std::move(name);
  r.status = CheckpointStatus::kInitializing;
  r.created_at_ms = r.updated_at_ms = clock_->NowMillis();
  r.seq = next_seq_.fetch_add(1);
  std::lock_guard lock(LockFor(r.id));
  CKPTD_RETURN_IF_ERROR(Commit(nullptr, &r, extra, sync).WithContext("create checkpoint"));
  return r;
}

Result<CheckpointRecord> Catalog::Get(std::string_view id) const {
  auto bytes = db_->Get(cf::kCheckpoints, id);
  if (!bytes.ok()) {
    if (bytes.status().code() == Code::kNotFound) return NotFound(fmt::format("checkpoint {} not found", id));
    return bytes.status();
  }
  return Decode(*bytes);
}

Result<std::vector<CheckpointRecord>> Catalog::GetMany(const std::vector<std::string>& ids) const {
  std::vector<CheckpointRecord> out;
  std::vector<std::string_view> seen;
  for (const auto& id : ids) {
    if (std::find(seen.begin(), seen.end(), id) != seen.end()) continue;
    seen.push_back(id);
    auto r = Get(id);
    if (r.ok()) {
      out.push_back(std::move(r).value());
    } else if (r.status().code() != Code::kNotFound) {
      return r.status();
    }
  }
  return out;
}

Result<CheckpointRecord> Catalog::Update(std::string_view id, const Mutator& fn, const BatchExtra& extra, Sync sync) {
  std::lock_guard lock(LockFor(id));
  CKPTD_ASSIGN_OR_RETURN(CheckpointRecord before, Get(id));
  CheckpointRecord r = before;
  CKPTD_RETURN_IF_ERROR(fn(r));
  r.updated_at_ms = clock_->NowMillis();
  CKPTD_RETURN_IF_ERROR(Commit(&before, &r, extra, sync).WithContext(fmt::format("update checkpoint {}", id)));
  return r;
}

Result<CheckpointRecord> Catalog::SetInfo(std::string_view id, std::string gpu, std::string platform, json::value info,
                                          Sync sync) {
  auto set = [&](CheckpointRecord& r) -> Status {
    if (r.status == CheckpointStatus::kInitializing) {
      CKPTD_RETURN_IF_ERROR(r.TransitionTo(CheckpointStatus::kUpdatedInfo, clock_->NowMillis()));
    } else if (r.status != CheckpointStatus::kUpdatedInfo) {
      return Conflict(fmt::format("checkpoint {} is {}: its info can no longer change", r.id, StatusName(r.status)));
    }
    r.gpu = std::move(gpu);
    r.platform = std::move(platform);
    r.info = std::move(info);
    return Status::Ok();
  };
  return Update(id, set, {}, sync);
}

Result<CheckpointRecord> Catalog::MarkPossiblyUploaded(std::string_view id) {
  return Update(id, [&](CheckpointRecord& r) {
    return r.TransitionTo(CheckpointStatus::kPossiblyUploaded, clock_->NowMillis());
  });
}

Result<CheckpointRecord> Catalog::MarkReady(std::string_view id, std::optional<std::string> restore_path,
                                            std::optional<std::string> checksum, const BatchExtra& extra, Sync sync) {
  return Update(
      id,
      [&](CheckpointRecord& r) -> Status {
        int64_t now = clock_->NowMillis();
        if (r.status == CheckpointStatus::kUpdatedInfo) {
          CKPTD_RETURN_IF_ERROR(r.TransitionTo(CheckpointStatus::kPossiblyUploaded, now));
        }
        CKPTD_RETURN_IF_ERROR(r.TransitionTo(CheckpointStatus::kReady, now));
        if (restore_path) r.restore_path = std::move(restore_path);
        if (checksum) r.checksum = std::move(checksum);
        return Status::Ok();
      },
      extra, sync);
}

Result<CheckpointRecord> Catalog::Deprecate(std::string_view id, std::optional<std::string> error,
                                            const BatchExtra& extra) {
  return Update(
      id,
      [&](CheckpointRecord& r) -> Status {
        if (r.status != CheckpointStatus::kDeprecated) {
          CKPTD_RETURN_IF_ERROR(r.TransitionTo(CheckpointStatus::kDeprecated, clock_->NowMillis()));
        }
        if (error) {
          if (!r.info.is_object()) r.info = json::object{};
          r.info.as_object()["error"] = *error;
        }
        return Status::Ok();
      },
      extra);
}

Result<Catalog::Page> Catalog::List(const std::optional<std::string>& cursor, size_t limit) const {
  uint64_t start_seq = 0;
  if (cursor) {
    if (cursor->empty() || cursor->size() > 20 || cursor->find_first_not_of("0123456789") != std::string::npos) {
      return InvalidArgument(fmt::format("malformed cursor '{}'", *cursor));
    }
    start_seq = std::stoull(*cursor) + 1;
  }
  Page page;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->raw()->NewIterator(rocksdb::ReadOptions(), db_->Handle(cf::kCheckpointsByCreated)));
  for (it->Seek(IndexKey(start_seq, "")); it->Valid(); it->Next()) {
    auto key = it->key().ToStringView();
    if (page.items.size() == limit) {
      page.next_cursor = std::to_string(page.items.back().seq);
      break;
    }
    auto r = Get(key.substr(8));
    if (!r.ok()) {
      if (r.status().code() == Code::kNotFound) continue;  // removed meanwhile
      return r.status();
    }
    page.items.push_back(std::move(r).value());
  }
  CKPTD_RETURN_IF_ERROR(FromRocks(it->status(), "list checkpoints"));
  return page;
}

Status Catalog::ForEach(const std::function<bool(const CheckpointRecord&)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->raw()->NewIterator(rocksdb::ReadOptions(), db_->Handle(cf::kCheckpointsByCreated)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto r = Get(it->key().ToStringView().substr(8));
    if (!r.ok()) {
      if (r.status().code() == Code::kNotFound) continue;
      return r.status();
    }
    if (!fn(*r)) break;
  }
  return FromRocks(it->status(), "scan checkpoints");
}

Status Catalog::Remove(std::string_view id) {
  std::lock_guard lock(LockFor(id));
  CKPTD_ASSIGN_OR_RETURN(CheckpointRecord r, Get(id));
  return Commit(&r, nullptr).WithContext(fmt::format("remove checkpoint {}", id));
}

}  // namespace ckptd

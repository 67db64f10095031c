#include "store/job_store.h"

#include <memory>

#include <fmt/format.h>
#include <rocksdb/iterator.h>
#include <boost/json.hpp>

namespace ckptd {

namespace json = boost::json;

Status JobStore::Put(std::string_view id, const json::value& record) {
  rocksdb::WriteBatch batch;
  CKPTD_RETURN_IF_ERROR(AddTo(&batch, id, record));
  return db_->Write(&batch).WithContext(fmt::format("job {}", id));
}

Status JobStore::AddTo(rocksdb::WriteBatch* batch, std::string_view id, const json::value& record) const {
  return FromRocks(batch->Put(db_->Handle(cf::kJobs), id, json::serialize(record)), "job record");
}

Result<json::value> JobStore::Get(std::string_view id) const {
  auto raw = db_->Get(cf::kJobs, id);
  if (!raw.ok()) {
    if (raw.status().code() == Code::kNotFound) return NotFound(fmt::format("job '{}' not found", id));
    return raw.status();
  }
  json::error_code ec;
  json::value v = json::parse(*raw, ec);
  if (ec) return Corruption(fmt::format("job {}: record is not JSON: {}", id, ec.message()));
  return v;
}

Status JobStore::ForEach(const std::function<bool(std::string_view, const json::value&)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->raw()->NewIterator(rocksdb::ReadOptions(), db_->Handle(cf::kJobs)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    json::error_code ec;
    json::value v = json::parse(it->value().ToStringView(), ec);
    if (ec) v = nullptr;
    if (!fn(it->key().ToStringView(), v)) break;
  }
  return FromRocks(it->status(), "scanning jobs");
}

Result<size_t> JobStore::DeleteIf(const std::function<bool(const json::value&)>& expired) {
  rocksdb::WriteBatch batch;
  size_t n = 0;
  Status st = ForEach([&](std::string_view id, const json::value& v) {
    if (!v.is_null() && expired(v)) {
      batch.Delete(db_->Handle(cf::kJobs), id).PermitUncheckedError();
      ++n;
    }
    return true;
  });
  CKPTD_RETURN_IF_ERROR(st);
  if (n > 0) CKPTD_RETURN_IF_ERROR(db_->Write(&batch).WithContext("pruning job records"));
  return n;
}

}  // namespace ckptd

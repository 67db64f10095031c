#include "store/checkpoint_record.h"

#include <boost/json.hpp>
#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <fmt/format.h>

namespace ckptd {

namespace json = boost::json;

std::string_view StatusName(CheckpointStatus s) {
  switch (s) {
    case CheckpointStatus::kInitializing: return "initializing";
    case CheckpointStatus::kUpdatedInfo: return "updated_info";
    case CheckpointStatus::kPossiblyUploaded: return "possibly_uploaded";
    case CheckpointStatus::kReady: return "ready";
    case CheckpointStatus::kDeprecated: return "deprecated";
  }
  return "unknown";
}

std::optional<CheckpointStatus> ParseCheckpointStatus(std::string_view name) {
  for (auto s : kAllStatuses) {
    if (StatusName(s) == name) return s;
  }
  return std::nullopt;
}

bool TransitionAllowed(CheckpointStatus from, CheckpointStatus to) {
  using S = CheckpointStatus;
  switch (from) {
    case S::kInitializing: return to == S::kUpdatedInfo || to == S::kDeprecated;
    case S::kUpdatedInfo: return to == S::kPossiblyUploaded || to == S::kDeprecated;
    case S::kPossiblyUploaded: return to == S::kReady || to == S::kDeprecated;
    case S::kReady: return to == S::kDeprecated;
    case S::kDeprecated: return false;
  }
  return false;
}

Status CheckpointRecord::TransitionTo(CheckpointStatus to, int64_t now_ms) {
  if (!TransitionAllowed(status, to)) {
    return Conflict(fmt::format("checkpoint {} is {}: it cannot become {}", id, StatusName(status),
                                StatusName(to)));
  }
  history.push_back({status, to, now_ms});
  status = to;
  updated_at_ms = now_ms;
  return Status::Ok();
}

namespace {

json::value OptString(const std::optional<std::string>& s) {
  return s ? json::value(*s) : json::value(nullptr);
}

Result<std::optional<std::string>> ReadOptString(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return std::optional<std::string>();
  if (!it->value().is_string()) return Corruption(fmt::format("field {} is not a string", key));
  return std::optional<std::string>(std::string(it->value().as_string()));
}

}  // namespace

json::value CheckpointRecord::ToJson() const {
  json::array hist;
  for (const auto& t : history) {
    hist.push_back(json::object{{"from", StatusName(t.from)}, {"to", StatusName(t.to)}, {"at", t.at_ms}});
  }
  json::value out = json::object{
      {"id", id},
      {"name", OptString(name)},
      {"status", StatusName(status)},
      {"gpu", gpu},
      {"platform", platform},
      {"info", info},
      {"checksum", OptString(checksum)},
      {"restore_path", OptString(restore_path)},
      {"created_at", created_at_ms},
      {"updated_at", updated_at_ms},
      {"seq", seq},
      {"cleaned_at", cleaned_at_ms ? json::value(*cleaned_at_ms) : json::value(nullptr)},
      {"history", std::move(hist)},
  };
  // Only when set, so records written without federation read the same to
  // older binaries.
  if (upstream_id) out.as_object()["upstream_id"] = *upstream_id;
  return out;
}

Result<CheckpointRecord> CheckpointRecord::FromJson(const json::value& v) {
  if (!v.is_object()) return Corruption("checkpoint record is not an object");
  const auto& o = v.as_object();
  CheckpointRecord r;
  try {
    r.id = std::string(o.at("id").as_string());
    auto st = ParseCheckpointStatus(o.at("status").as_string());
    if (!st) return Corruption("unknown status in record " + r.id);
    r.status = *st;
    r.gpu = std::string(o.at("gpu").as_string());
    r.platform = std::string(o.at("platform").as_string());
    if (auto it = o.find("info"); it != o.end()) r.info = it->value();
    r.created_at_ms = o.at("created_at").to_number<int64_t>();
    r.updated_at_ms = o.at("updated_at").to_number<int64_t>();
    r.seq = o.at("seq").to_number<uint64_t>();
    if (auto it = o.find("cleaned_at"); it != o.end() && !it->value().is_null())
      r.cleaned_at_ms = it->value().to_number<int64_t>();
    for (const auto& h : o.at("history").as_array()) {
      const auto& ho = h.as_object();
      auto from = ParseCheckpointStatus(ho.at("from").as_string());
      auto to = ParseCheckpointStatus(ho.at("to").as_string());
      if (!from || !to) return Corruption("unknown status in history of " + r.id);
      r.history.push_back({*from, *to, ho.at("at").to_number<int64_t>()});
    }
  } catch (const std::exception& e) {
    return Corruption(fmt::format("malformed checkpoint record: {}", e.what()));
  }
  CKPTD_ASSIGN_OR_RETURN(r.name, ReadOptString(o, "name"));
  CKPTD_ASSIGN_OR_RETURN(r.checksum, ReadOptString(o, "checksum"));
  CKPTD_ASSIGN_OR_RETURN(r.restore_path, ReadOptString(o, "restore_path"));
  CKPTD_ASSIGN_OR_RETURN(r.upstream_id, ReadOptString(o, "upstream_id"));
  return r;
}

std::string NewUuid() {
  // boost's random_generator draws from the OS entropy source and sets the
  // version (4) and variant bits.
  thread_local boost::uuids::random_generator gen;
  return boost::uuids::to_string(gen());
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

}  // namespace ckptd

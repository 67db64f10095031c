#include "store/checkpoint_record.h"

#include <fmt/format.h>
#include <boost/json.hpp>
#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include "common/json_reader.h"

namespace ckptd {

namespace json = boost::json;

std::string_view StatusName(CheckpointStatus s) {
  switch (s) {
    case CheckpointStatus::kInitializing:
      return "initializing";
    case CheckpointStatus::kUpdatedInfo:
      return "updated_info";
    case CheckpointStatus::kPossiblyUploaded:
      return "possibly_uploaded";
    case CheckpointStatus::kReady:
      return "ready";
    case CheckpointStatus::kDeprecated:
      return "deprecated";
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
    case S::kInitializing:
      return to == S::kUpdatedInfo || to == S::kDeprecated;
    case S::kUpdatedInfo:
      return to == S::kPossiblyUploaded || to == S::kDeprecated;
    case S::kPossiblyUploaded:
      return to == S::kReady || to == S::kDeprecated;
    case S::kReady:
      return to == S::kDeprecated;
    case S::kDeprecated:
      return false;
  }
  return false;
}

Status CheckpointRecord::TransitionTo(CheckpointStatus to, int64_t now_ms) {
  if (!TransitionAllowed(status, to)) {
    return Conflict(fmt::format("checkpoint {} is {}: it cannot become {}", id, StatusName(status), StatusName(to)));
  }
  history.push_back({status, to, now_ms});
  status = to;
  updated_at_ms = now_ms;
  return Status::Ok();
}

namespace {

json::value OptString(const std::optional<std::string>& s) { return s ? json::value(*s) : json::value(nullptr); }

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
  JsonReader r(v, "checkpoint record");
  CheckpointRecord rec;
  rec.id = r.String("id");
  auto status = ParseCheckpointStatus(r.String("status"));
  rec.gpu = r.String("gpu");
  rec.platform = r.String("platform");
  if (const auto* info = r.Find("info")) rec.info = *info;
  rec.created_at_ms = r.Int("created_at");
  rec.updated_at_ms = r.Int("updated_at");
  rec.seq = r.Uint("seq");
  rec.cleaned_at_ms = r.OptInt("cleaned_at");
  rec.name = r.OptString("name");
  rec.checksum = r.OptString("checksum");
  rec.restore_path = r.OptString("restore_path");
  rec.upstream_id = r.OptString("upstream_id");
  for (const auto& h : r.Array("history")) {
    JsonReader hr(h, "history of checkpoint " + rec.id);
    auto from = ParseCheckpointStatus(hr.String("from"));
    auto to = ParseCheckpointStatus(hr.String("to"));
    int64_t at = hr.Int("at");
    CKPTD_RETURN_IF_ERROR(hr.status());
    if (!from || !to) return Corruption("unknown status in history of " + rec.id);
    rec.history.push_back({*from, *to, at});
  }
  CKPTD_RETURN_IF_ERROR(r.status());
  if (!status) return Corruption("unknown status in record " + rec.id);
  rec.status = *status;
  return rec;
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

// A checkpoint's catalog record and its lifecycle state machine: the one
// place that says which status may follow which.
//
//   initializing -> updated_info -> possibly_uploaded -> ready
//         \______________\__________________\____________\____> deprecated
//
// deprecated is terminal. Thread safety: plain value types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "common/status.h"

namespace ckptd {

enum class CheckpointStatus {
  kInitializing,
  kUpdatedInfo,
  kPossiblyUploaded,
  kReady,
  kDeprecated,
};

inline constexpr CheckpointStatus kAllStatuses[] = {
    CheckpointStatus::kInitializing, CheckpointStatus::kUpdatedInfo, CheckpointStatus::kPossiblyUploaded,
    CheckpointStatus::kReady,        CheckpointStatus::kDeprecated,
};

std::string_view StatusName(CheckpointStatus s);
std::optional<CheckpointStatus> ParseCheckpointStatus(std::string_view name);
// The table of allowed transitions (from != to).
bool TransitionAllowed(CheckpointStatus from, CheckpointStatus to);

struct TransitionEntry {
  CheckpointStatus from;
  CheckpointStatus to;
  int64_t at_ms;
};

// The longest checkpoint name the API takes (Cedana create, checkpoint jobs).
inline constexpr size_t kMaxNameBytes = 256;

struct CheckpointRecord {
  std::string id;  // UUID v4, lower case
  std::optional<std::string> name;
  CheckpointStatus status = CheckpointStatus::kInitializing;
  std::string gpu;
  std::string platform;
  boost::json::value info;  // any JSON; null until set
  std::optional<std::string> checksum;
  std::optional<std::string> restore_path;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  uint64_t seq = 0;                      // creation order, unique per database
  std::optional<int64_t> cleaned_at_ms;  // storage removed by cleanup
  // The id of this checkpoint on the upstream /v2/checkpoints service it is
  // mirrored to (federation/upstream_mirror.h); absent until the upstream
  // created it, and when federation is off.
  std::optional<std::string> upstream_id;
  std::vector<TransitionEntry> history;

  // Moves to `to` if the table allows it, appending to history; otherwise
  // Conflict("checkpoint <id> is <from>: cannot become <to>").
  Status TransitionTo(CheckpointStatus to, int64_t now_ms);

  boost::json::value ToJson() const;
  static Result<CheckpointRecord> FromJson(const boost::json::value& v);
};

// A new random (version 4) UUID in canonical lower-case form.
std::string NewUuid();
// True for the canonical 8-4-4-4-12 hex form (any case).
bool IsUuid(std::string_view s);

}  // namespace ckptd

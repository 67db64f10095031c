// A job's record: what was asked (the request), where it stands (state and
// phase, enums here, words in JSON), what it produced (result or error) and
// its step journal (jobs/journal.h). Stored as JSON in the job table
// (store/job_store.h); the same JSON is what GET /v2/jobs/{id} answers.
// Thread safety: value types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "api/job_service.h"
#include "common/status.h"
#include "jobs/journal.h"

namespace ckptd {

enum class JobKind { kCheckpoint, kRestore };
enum class JobState { kQueued, kRunning, kSucceeded, kFailed };
// Where a job is (or was when it failed). A checkpoint goes info -> dump ->
// upload -> manifest -> ready -> done, a restore manifest -> download ->
// restore -> done; recovery is a job found unfinished at start-up.
enum class JobPhase { kQueued, kInfo, kDump, kUpload, kManifest, kReady, kDownload, kRestore, kRecovery, kDone };

std::string_view KindName(JobKind k);
std::string_view StateName(JobState s);
std::string_view PhaseName(JobPhase p);
bool Finished(JobState s);

// The dump options as stored in info.options, the manifest and job records.
boost::json::object CheckpointOptionsToJson(const api::CheckpointJobRequest& r);
// The "container" of stored options (a job's, a checkpoint's info): its id,
// runtime_root and bundle; nullopt when there is none.
std::optional<api::ContainerTarget> ContainerFromJson(const boost::json::object& options);
// A device map as the restore request writes it, [{"from":..,"to":..}], and
// back (entries that are not such objects are skipped; not an array: none).
boost::json::array DeviceMapToJson(const std::vector<std::pair<std::string, std::string>>& map);
std::vector<std::pair<std::string, std::string>> DeviceMapFromJson(const boost::json::value& v);
api::CheckpointJobRequest CheckpointOptionsFromJson(const boost::json::object& o);

struct Job {
  std::string id;
  JobKind kind = JobKind::kCheckpoint;
  std::string checkpoint_id;
  int pid = 0;  // checkpoint: the target; restore: the restored root
  JobState state = JobState::kQueued;
  JobPhase phase = JobPhase::kQueued;
  uint64_t bytes_written = 0;
  int64_t created_ms = 0, started_ms = 0, finished_ms = 0;
  std::string error;
  boost::json::object result;
  api::CheckpointJobRequest ckpt;
  api::RestoreJobRequest rst;
  std::string restore_path;
  std::optional<std::string> expected_checksum;
  Journal journal;

  // "job <id> checkpoint <id|->", leads every log line about the job.
  std::string LogTag() const;
  boost::json::value ToJson(int64_t now_ms) const;
  static Result<Job> FromJson(const boost::json::value& v);
};

}  // namespace ckptd

// The logs of a job's tools (CRIU's dump.log / restore.log and their
// .stderr, runc's runc.log), kept past the job's staging directory so that
// a failed job can be explained: GET /v2/jobs/{id}/log.
//
// Contract
// - KeepJobLogs copies every regular file named *.log or *.log.stderr in
//   `staging` and its subdirectories `work` and `rollback-work` (the images
//   are never read; symlinks are never followed) to <root>/<job id>/ under
//   the same relative names, each cut to its last kMaxKeptLogBytes. Returns
//   how many were kept; an error only when nothing could be written.
// - KeptLogPaths rewrites `message` so that paths of kept files under
//   `staging` name the kept copies instead (the staging directory is
//   deleted next); other paths under it keep only their name inside it
//   ("images"): the message names nothing that is gone.
// - ReadJobLogs concatenates the kept files in name order, each after a
//   "==> <name> <==" line; kNotFound when the job kept none. A file that
//   cannot be read (or became a symlink) is there as a one-line note of why.
// - PruneJobLogs removes the directories under `root` whose job `keep`
//   says no to (its record is gone), so logs live as long as their record.
// - KeepLogsOf is what a pipeline calls (below).
// - Job ids name directories: anything but [0-9A-Za-z-] is kInvalidArgument.
// Thread safety: stateless; one job's directory is written by its worker.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "common/status.h"

namespace ckptd {

inline constexpr uint64_t kMaxKeptLogBytes = 4ull << 20;

Result<int> KeepJobLogs(const std::filesystem::path& staging, const std::filesystem::path& root,
                        const std::string& job_id);
std::string KeptLogPaths(std::string message, const std::filesystem::path& staging,
                         const std::filesystem::path& root, const std::string& job_id);
Result<std::string> ReadJobLogs(const std::filesystem::path& root, const std::string& job_id);
void PruneJobLogs(const std::filesystem::path& root, const std::function<bool(const std::string& job_id)>& keep);

// What a pipeline calls before it deletes its staging directory: keeps the
// logs when the job failed (`outcome`) or `keep_always`, and returns the
// outcome with its log paths rewritten to the kept copies. `root` empty:
// nothing is kept.
Status KeepLogsOf(const Status& outcome, bool keep_always, const std::filesystem::path& staging,
                  const std::filesystem::path& root, const std::string& job_id);

}  // namespace ckptd

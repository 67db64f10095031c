// The CRIU requests of the job pipelines, built from what a job records:
// the dump options from a checkpoint request, the restore options from the
// dump options a checkpoint stored (its manifest's or journal's "options"),
// so that every restore, a rollback included, mirrors its dump.
// Thread safety: free functions.
#pragma once

#include <filesystem>

#include <boost/json/value.hpp>

#include "api/job_service.h"
#include "criu/options.h"

namespace ckptd {

// Dump of the tree rooted at req.pid into `images_dir` (logs in
// `work_dir`); auto_ext_mounts when the target has a mount namespace of its
// own (a non-empty restore_root). InvalidArgument for an unknown cgroup mode
// or network lock name.
Result<criu::DumpOptions> DumpOptionsFor(const api::CheckpointJobRequest& req, const std::filesystem::path& images_dir,
                                 const std::filesystem::path& work_dir, bool auto_ext_mounts);

// Restore from `images_dir` with the stored dump `options`. Corruption when
// they ask for a restore_root other than "/" (the only one ever written, by
// criu::RestoreRootFor; a manifest asking for another directory is not ours
// to trust) or an unknown cgroup mode or network lock. `request`, when
// given, is the restore job's: its cgroup mode and network lock replace the
// stored ones, and its LSM profile and external entries are added.
Result<criu::RestoreOptions> RestoreOptionsFor(const boost::json::value& options,
                                               const std::filesystem::path& images_dir,
                                               const std::filesystem::path& work_dir,
                                               const api::RestoreJobRequest* request = nullptr);

}  // namespace ckptd

// The files a restore hands to CRIU (its inherit_fd entries) and the
// terminal CRIU hands back (orphan_pts_master, sent on to console_socket).
//
// Contract
// - Paths come from requests: each must lie under one of `roots` (the
//   daemon's file_roots) and is resolved beneath that root with no symlink
//   followed (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS):
//   kInvalidArgument when it lies elsewhere or a symlink is on the way,
//   kNotFound when it is missing.
// - OpenInheritFds opens every entry ("r", "w" or "rw"; O_CLOEXEC, FIFOs
//   without blocking) and returns them in order; all or none.
// - SendConsole connects to the unix socket at `path` (resolved as above,
//   then connected through an O_PATH fd of it: nothing is looked up twice)
//   and sends `fd` with one SCM_RIGHTS message whose data is
//   "orphan-pts-master" (runc's console-socket protocol carries a name the
//   same way). It never waits: a listener whose queue is full fails it.
// Thread safety: stateless.
#pragma once

#include <string>
#include <vector>

#include "api/job_service.h"
#include "common/fd.h"
#include "common/status.h"

namespace ckptd {

// Ok when `path` lies lexically under one of `roots` (no ".." escapes).
Status CheckUnderRoots(const std::string& path, const std::vector<std::string>& roots, std::string_view what);

Result<std::vector<UniqueFd>> OpenInheritFds(const std::vector<api::RestoreJobRequest::InheritFd>& fds,
                                            const std::vector<std::string>& roots);

Status SendConsole(const std::string& path, const std::vector<std::string>& roots, int fd);

}  // namespace ckptd

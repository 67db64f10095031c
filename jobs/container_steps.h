// The container parts of the checkpoint and restore pipelines: a container
// run by runc (runc/runc_driver.h) is checkpointed with `runc checkpoint`
// into the same staging images dir the image streamer ships, and restored
// with `runc restore --detach` under a new id.
//
// What a container checkpoint stores besides CRIU's images (as files of
// the images dir, so they travel and are verified like the images):
//   ckptd-container.json      {"id", "runtime_root", "bundle", "rootfs",
//                              "runtime": "runc", "runtime_version",
//                              "config": <the bundle's config.json>}
//   ckptd-rootfs-diff.tar     when the rootfs is an overlay mount: its upper
//                             directory (the files written since the
//                             container started; whiteouts as 0:0 devices)
// A restore puts the diff back into the new bundle's rootfs (a whiteout
// removes its path), writes the saved config.json into the bundle when it
// has none (root.path "rootfs"), and gives the container pipes for its
// stdio (a container whose stdio is a host file cannot be checkpointed
// again): stdin reads end-of-file; stdout and stderr go, through a relay
// process that outlives the daemon, to <log_dir>/<container id>.log.
// Thread safety: free functions, no shared state.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include <boost/json/value.hpp>

#include "api/job_service.h"
#include "common/status.h"
#include "common/subprocess.h"
#include "runc/runc_driver.h"

namespace ckptd {

inline constexpr const char* kContainerFile = "ckptd-container.json";
inline constexpr const char* kRootfsDiffFile = "ckptd-rootfs-diff.tar";

// The running container's init pid. Unavailable when there is no runc (or
// it is too old), NotFound for an unknown container, Conflict when it is not
// running.
Result<runc::ContainerState> RunningContainer(const runc::RuncApi* runc, const api::ContainerTarget& t);

// The info a checkpoint records of the container ("container" in info).
boost::json::object ContainerInfo(const runc::ContainerState& s, const api::ContainerTarget& t,
                                  const std::string& runtime_version);

// Writes kContainerFile (and kRootfsDiffFile for an overlay rootfs) into
// `images_dir`.
Status SaveContainerFiles(const runc::ContainerState& s, const boost::json::object& info,
                          const std::filesystem::path& images_dir, ProcessRunner* runner);

runc::CheckpointArgs CheckpointArgsFor(const api::CheckpointJobRequest& req, const std::filesystem::path& images_dir,
                                       const std::filesystem::path& work_dir);

// What can be checked of a container restore before it runs: runc usable
// (Unavailable), a valid id not taken yet (InvalidArgument, Conflict), an
// existing bundle directory (InvalidArgument).
Status CheckContainerRestore(const runc::RuncApi* runc, const api::ContainerTarget& t);

struct ContainerRestore {
  api::ContainerTarget target;  // the new id, runtime root and bundle
  std::filesystem::path images_dir, work_dir;
  std::filesystem::path log_dir;  // <log_dir>/<id>.log takes its stdout and stderr
  bool apply_rootfs_diff = true;  // false: the rootfs is the checkpointed one (a rollback)
  bool tcp_established = false, file_locks = false, ext_unix_sk = false;
  std::function<void(int pid)> on_started;  // runc's pid
};

// Bundle prepared (config, rootfs diff), then `runc restore --detach`.
// Conflict when the id is taken. On failure nothing of the new container
// is left running.
Result<runc::ContainerState> RestoreContainer(const runc::RuncApi* runc, const ContainerRestore& r,
                                              ProcessRunner* runner);

}  // namespace ckptd

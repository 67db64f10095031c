// The job interface the API declares and the daemon implements: checkpoint
// and restore jobs run by the daemon's bounded executor (jobs/job_manager.h).
// api/ calls only this; it never drives CRIU or the GPU itself.
//
// Errors (mapped to HTTP by api::Error): InvalidArgument (400) for bad
// input (pid <= 0, pid 1, the daemon's own pid, unknown codec, malformed
// restore_path); NotFound (404) for an unknown pid, job or checkpoint;
// Conflict (409) for a pid already being checkpointed, a container that is
// not running (or a restore's container id already taken) or a checkpoint
// that is not ready; ResourceExhausted (429, with Retry-After) when the job queue is
// full; Unavailable (503) when CRIU (or, for a container, runc) is not usable
// or the daemon is shutting down.
// Thread safety: every method may be called from many threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/value.hpp>

#include "common/status.h"

namespace ckptd::api {

// A container run by runc: its id under a runtime root (containerd's shim:
// /run/containerd/runc/<namespace>; Docker: /run/docker/runtime-runc/moby).
// A restore also names the new container's bundle directory.
struct ContainerTarget {
  std::string id;
  std::string runtime_root = "/run/runc";
  std::string bundle;  // restore only
};

struct CheckpointJobRequest {
  int pid = 0;  // 0 with a container: its init, read from runc at submit
  std::optional<ContainerTarget> container;
  std::optional<std::string> name;
  bool leave_running = false;
  bool tcp_established = false;
  bool shell_job = false;
  bool ext_unix_sk = false;
  bool file_locks = false;
  bool link_remap = false;
  // CRIU's cgroup handling: "ignore" (restore into the daemon's cgroups),
  // "soft", "full" or "strict"; the API's manage_cgroups=true is "soft".
  std::string manage_cgroups_mode = "ignore";
  std::string network_lock = "nftables";  // nftables | iptables | skip
  // Processes only (runc has no such options):
  bool tcp_close = false;       // dump established TCP connections; restore them closed
  bool skip_in_flight = false;  // ignore connections still being set up (SYN sent/received)
  uint32_t ghost_limit = 0;     // largest unlinked-but-open file dumped into the images; 0: CRIU's 1 MiB
  bool evasive_devices = false;        // a device opened by a path that is gone: record another path to it
  // A terminal of the tree whose master is outside it (CRIU
  // --orphan-pts-master); its restore then needs a console_socket.
  bool orphan_pts_master = false;
  std::vector<std::string> enable_fs;  // filesystem types CRIU may dump as "auto" mounts
  int64_t timeout_s = 300;  // CRIU dump deadline
  int log_level = 4;        // CRIU log level 0..4
  std::vector<std::string> external;
  std::string compression = "zstd";  // zstd | lz4 | none
  std::string gpu = "auto";          // auto | on | off (GPU processes of the tree)
};

struct RestoreJobRequest {
  std::optional<std::string> checkpoint_id;  // a ready checkpoint
  std::optional<std::string> restore_path;   // or any file:// (s3://) image location
  int64_t timeout_s = 300;
  // GPU UUID pairs ("GPU-..." from -> to) for the GPU restore; empty: same GPUs.
  std::vector<std::pair<std::string, std::string>> device_map;
  // Restore as this new container (runc restore --detach) instead of as
  // bare processes; the checkpoint must be of a container.
  std::optional<ContainerTarget> container;
  // Processes only. Unset: the checkpoint's own.
  std::optional<std::string> manage_cgroups_mode;
  std::optional<std::string> network_lock;
  std::string lsm_profile;            // "apparmor:<profile>" | "selinux:<context>"; empty: the dumped label
  std::vector<std::string> external;  // CRIU --external entries of the restore side ("mnt[key]:/path", ...)
  // CRIU --inherit-fd: the resource `key` of the images ("file[mnt:ino]",
  // "pipe:[ino]", ...) is served by the file at `path` (under file_roots),
  // opened by the daemon for "r", "w" or "rw".
  struct InheritFd {
    std::string key, path, mode = "rw";
  };
  std::vector<InheritFd> inherit_fd;
  // A checkpoint taken with orphan_pts_master: CRIU gives the tree's
  // terminal a new pty, whose master is sent (SCM_RIGHTS) to the unix
  // socket at this path (under file_roots), as runc does. Required then.
  std::string console_socket;
};

struct JobSubmitted {
  std::string job_id;
  std::string checkpoint_id;  // empty for a restore from a bare restore_path
};

class JobService {
 public:
  virtual ~JobService() = default;
  virtual Result<JobSubmitted> SubmitCheckpoint(const CheckpointJobRequest& req) = 0;
  virtual Result<JobSubmitted> SubmitRestore(const RestoreJobRequest& req) = 0;
  // The job's JSON (see openapi.json "Job"); NotFound for an unknown id.
  virtual Result<boost::json::value> GetJob(std::string_view id) const = 0;
  // Waits until the job has finished (or `timeout` passed) and returns its JSON.
  virtual Result<boost::json::value> WaitJob(std::string_view id, std::chrono::milliseconds timeout) = 0;
  // Calls `done` once with the job's JSON when it has finished (at once,
  // on the caller's thread, when it has already; else on the thread that
  // finishes it). NotFound for an unknown id.
  using JobDone = std::function<void(Result<boost::json::value>)>;
  virtual void OnFinished(std::string_view id, JobDone done) = 0;
  // Most recent jobs first, at most `limit`.
  virtual Result<boost::json::array> ListJobs(size_t limit) const = 0;
  // The tools' logs the job kept (text; each file after a "==> name <=="
  // line): NotFound for an unknown job or one that kept none.
  virtual Result<std::string> JobLog(std::string_view id) const = 0;
};

}  // namespace ckptd::api

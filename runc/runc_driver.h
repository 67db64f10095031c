// Driving runc, the OCI runtime under containerd, Docker and Kubernetes: the
// container's state, `runc checkpoint` and `runc restore`, always with
// ckptd's own CRIU (`--criu`).
//
// Contract
// - Every call runs the configured runc binary once through the
//   ProcessRunner seam, with `--root <runtime root>` and `--criu <criu>`,
//   under RuncOptions::deadline (a checkpoint under its own, when given:
//   SIGTERM, then SIGKILL, to runc's process group, which holds the CRIU
//   runc started), and always reaps it.
// - Probe() answers whether runc can be used at all: kUnavailable when the
//   binary is missing or older than 1.0 (the message says which). A usable
//   version is kept for the driver's life (every job asks); a failure is
//   asked again next time, so installing runc needs no restart.
// - State(): kNotFound for a container the runtime root does not have;
//   kInvalidArgument for an id or root that runc would misread.
// - Checkpoint(): runc hands CRIU the container's freezer cgroup, so a CRIU
//   killed halfway (deadline, OOM, the daemon's own death) leaves the
//   container *paused*. Whatever the outcome, Checkpoint() ends by reading
//   the state and resuming a paused container (Thaw()); the error then says
//   so. Its deadline never stops runc and CRIU while CRIU has seized the
//   tree of init_pid: its parasite can then be inside the container's
//   processes, and a CRIU killed there leaves them broken (a splice into a
//   closed pipe: SIGPIPE). Nor once that tree has ended: CRIU ends it only
//   after a complete dump, which runc is about to report, and the images
//   are then the only copy. The signals wait for neither, at most
//   RuncOptions::unsafe_grace past the deadline; a runc that ends in the
//   meantime is reported as it ended.
//   Findings (runc 1.1.5, CRIU 4.2.1, kernel 6.18): CRIU locks a
//   container's network namespace with iptables-restore (the iptables
//   package); a container whose stdio is a host file (not a pipe) cannot be
//   dumped ("Can't lookup mount ... path=/dev/null"): containerd's shim gives
//   pipes, and runc records them in descriptors.json.
// - Pause(): `runc pause`. The jobs pause a container before they save its
//   rootfs diff and dump it paused (runc checkpoints a paused container;
//   CRIU leaves the freezer as it found it), then Thaw() it.
// - Restore(): `runc restore --detach`; runc gives the restored container its
//   own stdio for the pipes recorded at checkpoint, so RestoreArgs::stdio
//   (pipes the caller keeps or hands on) become the container's stdin,
//   stdout and stderr; runc's own messages go to <work>/runc.log. Returns the
//   restored container's state (its init pid).
// - Failures are kIOError (kDeadlineExceeded past the deadline) with runc's
//   last lines and the last "Error" lines of CRIU's log in the work dir.
// - Ownership: directories and fds in the arguments stay the caller's.
// Thread safety: const methods, safe from many threads (one runc per call).
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "common/subprocess.h"

namespace ckptd::runc {

struct RuncOptions {
  std::string binary = "runc";  // a path, or a name looked up in PATH
  std::string criu_binary;      // passed as --criu; empty: runc's own choice
  std::chrono::milliseconds deadline{std::chrono::minutes(10)};
  // How long past the deadline a checkpoint's runc is left to run while its
  // CRIU holds the container's tree (CheckpointArgs::init_pid).
  std::chrono::milliseconds unsafe_grace{std::chrono::seconds(60)};
};

struct RuncVersion {
  int major = 0, minor = 0, patch = 0;
  std::string text;  // "1.1.5+ds1"
};

// What `runc state` says of a container.
struct ContainerState {
  std::string id;
  int pid = 0;
  std::string status;  // created, running, pausing, paused, stopped
  std::string bundle;
  std::string rootfs;
};

struct CheckpointArgs {
  std::string root, id;  // runtime root and container id
  std::string image_path, work_path;
  bool leave_running = false;
  bool tcp_established = false;
  bool file_locks = false;
  bool ext_unix_sk = false;
  std::vector<std::string> extra_args;      // appended before the id (tests inject faults)
  std::function<void(int pid)> on_started;  // runc's pid (its process group)
  int init_pid = 0;                         // the container's init (runc state); 0: no hold (see above)
  std::chrono::milliseconds deadline{0};    // this checkpoint's; 0: RuncOptions::deadline
};

struct RestoreArgs {
  std::string root, id, bundle;
  std::string image_path, work_path;
  bool tcp_established = false;
  bool file_locks = false;
  bool ext_unix_sk = false;
  std::array<int, 3> stdio{-1, -1, -1};  // the container's stdin/stdout/stderr
  std::function<void(int pid)> on_started;
};

// The seam the jobs use.
class RuncApi {
 public:
  virtual ~RuncApi() = default;
  virtual Result<RuncVersion> Probe() const = 0;
  virtual Result<ContainerState> State(const std::string& root, const std::string& id) const = 0;
  virtual Status Checkpoint(const CheckpointArgs& a) const = 0;
  virtual Result<ContainerState> Restore(const RestoreArgs& a) const = 0;
  // A running container paused (its cgroup frozen: `runc pause`).
  virtual Status Pause(const std::string& root, const std::string& id) const = 0;
  // A paused container resumed; a running one left alone.
  virtual Status Thaw(const std::string& root, const std::string& id) const = 0;
  // The container killed (SIGKILL) and deleted, with what a runc killed
  // mid-restore leaves under <root>/<id> (its criu-root bind mount, a state
  // dir without state.json); an unknown container is fine.
  virtual Status Remove(const std::string& root, const std::string& id) const = 0;
};

class RuncDriver final : public RuncApi {
 public:
  // `runner` must outlive the driver; nullptr means the system runner.
  explicit RuncDriver(RuncOptions opts, ProcessRunner* runner = nullptr);

  Result<RuncVersion> Probe() const override;
  Result<ContainerState> State(const std::string& root, const std::string& id) const override;
  Status Checkpoint(const CheckpointArgs& a) const override;
  Result<ContainerState> Restore(const RestoreArgs& a) const override;
  Status Pause(const std::string& root, const std::string& id) const override;
  Status Thaw(const std::string& root, const std::string& id) const override;
  Status Remove(const std::string& root, const std::string& id) const override;

  const RuncOptions& options() const { return opts_; }

 private:
  std::vector<std::string> Base(const std::string& root) const;
  // Runs argv under `deadline` (0: RuncOptions::deadline).
  Result<RunResult> Exec(std::vector<std::string> argv, RunOptions ro,
                         std::chrono::milliseconds deadline = std::chrono::milliseconds(0)) const;

  RuncOptions opts_;
  ProcessRunner* runner_;
  mutable Mutex probe_mu_;
  mutable std::optional<RuncVersion> probed_ GUARDED_BY(probe_mu_);
};

// "1.1.5+ds1" -> {1, 1, 5}; from `runc --version`'s first line.
Result<RuncVersion> ParseRuncVersion(const std::string& version_output);
// Container ids runc accepts: [A-Za-z0-9_+.-], 1..1024 characters, not "."
// or "..", and (ours) not starting with '-'. Runtime roots: absolute paths.
Status ValidateContainerId(const std::string& id);

}  // namespace ckptd::runc

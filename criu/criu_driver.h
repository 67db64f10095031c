// Driving CRIU over its RPC protocol: one `criu swrk <fd>` per operation,
// spoken to over a SOCK_SEQPACKET socketpair (one protobuf message a packet).
//
// Contract
// - Every operation spawns its own CRIU, always reaps it and enforces the
//   operation's deadline (SIGALRM, CRIU's own interrupt, then SIGKILL to
//   CRIU's process group after DriverConfig::kill_grace). A dump or pre-dump
//   whose CRIU was interrupted, killed or failed never leaves the target
//   frozen: after CRIU is gone the driver walks the target tree and sends
//   SIGCONT to any task left in state 'T'.
//   Findings (CRIU 4.2.1, kernel 6.18, see tests/criu): CRIU installs no
//   SIGTERM handler and dies at once; the kernel then detaches the tasks it
//   had seized (PTRACE_SEIZE + INTERRUPT, not SIGSTOP) and they run on, but
//   a CRIU killed while its parasite is in the target (pages being drained)
//   left that parasite to answer a closed socket, and the target died of
//   SIGPIPE (about 1 run in 20 of DeadlineMidPageDumpLeavesTargetRunning).
//   Interrupted there by SIGALRM (CRIU's timeout handler: the system call in
//   progress fails with EINTR and CRIU unwinds as after any error), CRIU
//   closes the page pipe while the parasite still splices into it, and the
//   target dies of that SIGPIPE once the parasite is cured (1 run in 40).
//   So a dump's deadline that passes between the pre-dump and the
//   post-dump notifications (the parasite's span) is held back until
//   post-dump, where CRIU is answered "stop" and unwinds with the parasite
//   gone; it is enforced inside only DriverConfig::unsafe_grace after the
//   deadline. Elsewhere CRIU gets SIGALRM at the deadline. No task was ever
//   found in 'T', so the SIGCONT pass is a safety net (trees with a
//   group-stop pending, freezer-based freezing). An interrupted dump leaves
//   its images incomplete: callers must treat that images dir as garbage.
//   A dump CRIU completes in spite of the interrupt (it came after the last
//   step that could fail) succeeds: its images are whole and, without
//   leave_running, the tree is gone.
// - CRIU never loads plugins from a directory the daemon does not control:
//   CRIU_LIBS_DIR is always exported to it, pointing at
//   DriverConfig::plugin_dir or, when that is empty, at a private empty
//   directory the driver creates (and removes on destruction). The daemon
//   handles CUDA itself; CRIU's cuda plugin must not interfere.
//   CRIU_CONFIG_FILE is removed from CRIU's environment.
// - Restore is detached: CRIU forks the tree and exits, the tree is
//   re-parented to the nearest child subreaper or init, never to the caller
//   (rst_sibling is not used). RestoreResult::pid is the restored root in the
//   caller's pid namespace. Restoring to the dumped PIDs needs them free: the
//   original must be dead and reaped. A tree whose root was the init of its
//   own pid namespace is restored into a fresh pid namespace, so it can be
//   restored while the original still runs. A tree with its own mount
//   namespace (e.g. `unshare --pid --fork --mount-proc`) has that namespace
//   in its images (mountpoints-<id>.img). Dump it with auto_ext_mounts: the
//   mounts it shares with the daemon become external (without it CRIU tars
//   every tmpfs, all of /dev/shm, and fails when files change meanwhile:
//   "Can't dump tmpfs content"). Restore it with auto_ext_mounts too
//   ("Mount N is autodetected external mount. Try --ext-mount-map auto")
//   and with RestoreOptions::root, the directory that becomes the
//   namespace's root mount (see RestoreRootFor). Without a root CRIU 4.2.1,
//   in its default mount-v2 mode, crashes with "mnt: BUG at
//   criu/mount.c:48": cleaning the mounts copied into the new namespace it
//   asks service_mountpoint() for a plain_mountpoint that only mounts read
//   from images have (in --mntns-compat-mode it says "The --root option is
//   required to restore a mount namespace"); so Restore refuses such images
//   without a root (kInvalidArgument) before CRIU runs.
//   CRIU restores PR_SET_PDEATHSIG, so a root that had one
//   (e.g. started by `unshare --kill-child`) is killed as soon as CRIU exits.
//   Where PID 1 does not reap orphans, the dumped tree's killed children stay
//   zombies and keep their pids ("Can't fork for N: File exists" on restore):
//   the daemon should be a child subreaper (PR_SET_CHILD_SUBREAPER) and reap.
// - Errors: kInvalidArgument for bad options; kUnavailable when the binary is
//   missing or cannot run, or a needed kernel feature is absent (pre-dump or
//   track_mem without soft-dirty tracking: checked with FEATURE_CHECK
//   first, because CRIU itself hits a BUG() mid-dump there);
//   kDeadlineExceeded when the deadline passed; kNotFound when the dump
//   target does not exist; kIOError for anything else CRIU reports as
//   failed. Messages carry cr_errno and the last "Error" lines of CRIU's log
//   (at most 10; CRIU's cr_errmsg only when the log has none), e.g.
//   "criu dump of pid 42: failed (errno 3: No such process): log
//   /w/dump.log: Error (...): ...". A notify callback's error keeps its code,
//   with context "criu dump of pid 42: notify post-dump: <its message>".
// - Ownership: the driver owns nothing but its config and its private empty
//   plugin dir; images/work dirs belong to the caller and must outlive the
//   call. Fds in RestoreOptions::inherit_fds stay the caller's.
// Thread safety: all methods are const and may run concurrently from many
//   threads (each spawns its own CRIU). Notify callbacks run on the calling
//   thread.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "common/status.h"
#include "criu/options.h"

namespace ckptd::criu {

// The seam the daemon's jobs use; tests of the daemon may fake it.
class CriuApi {
 public:
  virtual ~CriuApi() = default;
  virtual Result<CriuVersion> Version() const = 0;
  // CRIU's own "criu check" through RPC: OK when CRIU is usable here.
  virtual Status Check() const = 0;
  virtual Result<CriuFeatures> FeatureCheck() const = 0;
  // Never fails: for /healthz and start-up logs.
  virtual ProbeResult Probe() const = 0;
  virtual Result<DumpResult> Dump(const DumpOptions& opts) const = 0;
  // Memory-only iteration; the tree keeps running. Later (pre-)dumps name
  // this one's images dir in parent_img. Needs soft-dirty tracking.
  virtual Result<DumpResult> PreDump(const DumpOptions& opts) const = 0;
  virtual Result<RestoreResult> Restore(const RestoreOptions& opts) const = 0;
};

struct DriverConfig {
  std::string criu_path = CKPTD_CRIU_DEFAULT;
  // CRIU_LIBS_DIR for CRIU; empty: a private empty directory (no plugins).
  std::filesystem::path plugin_dir;
  // Minimum version Probe() accepts.
  int min_major = 4;
  int min_minor = 2;
  // Deadline of VERSION / CHECK / FEATURE_CHECK requests.
  std::chrono::milliseconds probe_deadline{std::chrono::seconds(30)};
  // Time between SIGALRM and SIGKILL when a deadline passes.
  std::chrono::milliseconds kill_grace{std::chrono::seconds(2)};
  // How long past its deadline a dump may run while CRIU's parasite may be
  // in the target (between the pre-dump and post-dump notifications)
  // before CRIU is interrupted there anyway.
  std::chrono::milliseconds unsafe_grace{std::chrono::seconds(60)};
};

class CriuDriver final : public CriuApi {
 public:
  // Fails only when the private plugin dir cannot be created.
  static Result<std::unique_ptr<CriuDriver>> Create(DriverConfig config);
  ~CriuDriver() override;
  CriuDriver(const CriuDriver&) = delete;
  CriuDriver& operator=(const CriuDriver&) = delete;

  Result<CriuVersion> Version() const override;
  Status Check() const override;
  Result<CriuFeatures> FeatureCheck() const override;
  ProbeResult Probe() const override;
  Result<DumpResult> Dump(const DumpOptions& opts) const override;
  Result<DumpResult> PreDump(const DumpOptions& opts) const override;
  Result<RestoreResult> Restore(const RestoreOptions& opts) const override;

  const DriverConfig& config() const { return config_; }
  // The CRIU_LIBS_DIR CRIU gets.
  const std::filesystem::path& plugin_dir() const { return plugin_dir_; }

 private:
  CriuDriver(DriverConfig config, std::filesystem::path plugin_dir, bool owns_plugin_dir);
  Result<DumpResult> DumpImpl(const DumpOptions& opts, bool pre_dump) const;

  DriverConfig config_;
  std::filesystem::path plugin_dir_;
  bool owns_plugin_dir_;
};

// Makes `dir` (created 0700 when absent) an empty directory of our own, fit
// to be DriverConfig::plugin_dir when no plugin may load. Unlike the
// driver's private directory it outlives a killed daemon and is reused, so
// crashes leave nothing behind. Refuses (InvalidArgument) a symlink, a
// non-directory, another owner, write access for group or others, and any
// entry in it: it never deletes what it finds.
Status PrepareEmptyPluginDir(const std::filesystem::path& dir);

// The RestoreOptions::root a restore of the tree rooted at `pid` will need,
// judged from the caller's namespaces (which CRIU inherits): "" when `pid`
// shares the caller's mount namespace (CRIU then does not dump mounts), "/"
// when it has a mount namespace of its own whose root directory is the
// caller's (`unshare --mount[-proc]`: CRIU rebuilds the other mounts on top
// of that root, e.g. the private /proc, or with auto_ext_mounts binds them
// from the caller's namespace). Callers record
// it with the checkpoint so any restore passes it. kInvalidArgument when the
// namespace has another root (a container's rootfs: CRIU would need that
// rootfs prepared at restore, which this driver cannot know), kNotFound when
// `pid` is gone, kIOError when /proc cannot be read.
Result<std::string> RestoreRootFor(int pid);

// Sends SIGCONT to every task of the tree rooted at `root_pid` that is in
// state 'T' (stopped); returns how many. Used after a failed or killed dump.
int ResumeStoppedTree(int root_pid);

}  // namespace ckptd::criu

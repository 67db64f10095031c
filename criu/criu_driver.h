// Driving CRIU over its RPC protocol: one `criu swrk <fd>` per operation,
// spoken to over a SOCK_SEQPACKET socketpair (one protobuf message a packet).
//
// Contract
// - Every operation spawns its own CRIU, always reaps it and enforces the
//   operation's deadline (SIGTERM, then SIGKILL to CRIU's process group after
//   DriverConfig::kill_grace). A dump or pre-dump whose CRIU was killed or
//   failed never leaves the target frozen: after CRIU is gone the driver
//   walks the target tree and sends SIGCONT to any task left in state 'T'.
//   (Findings on this machine: a SIGTERMed/SIGKILLed CRIU is detached by the
//   kernel and the tasks it had seized with PTRACE_SEIZE/INTERRUPT simply run
//   on; the SIGCONT pass is a safety net for trees that had a group-stop
//   pending. A dump killed after its images were written leaves them
//   incomplete: callers must treat the images dir as garbage.)
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
//   restored while the original still runs.
// - Errors: kInvalidArgument for bad options; kUnavailable when the binary is
//   missing or cannot run, or a needed kernel feature is absent (pre-dump
//   without soft-dirty tracking); kDeadlineExceeded when the deadline passed;
//   kNotFound when the dump target does not exist; kIOError for anything CRIU
//   reports as failed. Messages carry CRIU's cr_errmsg and the last "Error"
//   lines of its log (at most 10), e.g.
//   "criu dump of pid 42: failed (errno 3): log /w/dump.log: Error (...): ...".
//   A notify callback's error is returned with context
//   "criu dump: notify post-dump: <callback message>".
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
  // Time between SIGTERM and SIGKILL when a deadline passes.
  std::chrono::milliseconds kill_grace{std::chrono::seconds(2)};
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

// Sends SIGCONT to every task of the tree rooted at `root_pid` that is in
// state 'T' (stopped); returns how many. Used after a failed or killed dump.
int ResumeStoppedTree(int root_pid);

}  // namespace ckptd::criu

// Plain value types describing CRIU requests and answers (no protobuf here,
// so callers do not need the generated headers).
// Thread safety: value types.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/fd.h"
#include "common/status.h"

namespace ckptd::criu {

// CRIU's version as answered to a VERSION request ("4.2.1").
struct CriuVersion {
  int major = 0;
  int minor = 0;
  int sublevel = 0;
  std::string gitid;  // empty for release builds
  std::string name;   // release name, may be empty

  // "4.2.1", plus " (gitid)" when there is one.
  std::string ToString() const;
  // Compares (major, minor, sublevel) with the given triple.
  bool AtLeast(int want_major, int want_minor, int want_sublevel = 0) const;
};

// What FEATURE_CHECK reported.
struct CriuFeatures {
  bool mem_track = false;   // soft-dirty tracking: pre-dump / incremental dumps
  bool lazy_pages = false;  // userfaultfd lazy restore
  bool pidfd_store = false;
};

// Start-up probe result, shaped for /healthz.
struct ProbeResult {
  bool found = false;  // the binary exists and is executable
  std::string path;
  std::optional<CriuVersion> version;
  bool version_ok = false;    // version >= the driver's minimum (4.2)
  bool check_passed = false;  // CHECK request succeeded
  std::string error;          // empty when everything above is true
  bool ok() const { return found && version_ok && check_passed; }
};

// Called for every criu_notify CRIU sends (the "action script" points:
// "pre-dump", "network-lock", "post-dump", "network-unlock", "pre-restore",
// "setup-namespaces", "post-setup-namespaces", "post-restore", "pre-resume",
// "post-resume", "orphan-pts-master", ...). `pid` is CRIU's pid argument for
// the point (the root task where it applies, else 0). Runs on the calling
// thread of Dump/PreDump/Restore, while CRIU waits; returning an error makes
// the driver answer notify_success=false, which makes CRIU abort (a dump then
// resumes the tree) and the operation returns that error.
using NotifyCallback = std::function<Status(const std::string& script, int pid)>;

enum class NetworkLock {
  kCriuDefault,  // do not send the option (CRIU's default is iptables)
  kIptables,     // needs the iptables-restore binary on the host
  kNftables,     // CRIU must be built with libnftables (ours is)
  kSkip,         // caller guarantees the connections are quiet
};

// The most fds a restore hands CRIU (RestoreOptions::inherit_fds).
inline constexpr size_t kMaxInheritedFds = 16;

// What CRIU does with the tree's cgroups (its --manage-cgroups modes).
enum class CgroupMode {
  kIgnore,  // leave them alone: the tree is restored into the daemon's cgroups
  kSoft,    // restore into the dumped cgroup paths, creating missing ones
  kFull,    // kSoft, and restore the properties of every cgroup
  kStrict,  // kFull, failing where a property cannot be restored
};

// The modes above by the API's names ("ignore", "soft", "full", "strict";
// "iptables", "nftables", "skip"). InvalidArgument naming the choices for
// any other name.
Result<CgroupMode> ParseCgroupMode(std::string_view name);
Result<NetworkLock> ParseNetworkLock(std::string_view name);

// Options shared by dump, pre-dump and restore.
struct CommonOptions {
  // Directory holding the images; must exist. Opened by the driver and passed
  // to CRIU as images_dir_fd.
  std::filesystem::path images_dir;
  // Directory for CRIU's log (and its scratch files). Empty: images_dir.
  std::filesystem::path work_dir;
  // Log file name inside work_dir. Empty: "dump.log", "pre-dump.log" or
  // "restore.log".
  std::string log_file;
  int log_level = 4;  // 0..4; 4 keeps enough detail for the error excerpt

  bool tcp_established = false;
  bool shell_job = false;    // tree shares the caller's session/terminal
  bool ext_unix_sk = false;  // allow unix sockets connected outside the tree
  bool file_locks = false;
  CgroupMode cgroup_mode = CgroupMode::kIgnore;
  bool orphan_pts_master = false;
  // CRIU's --ext-mount-map auto, for a tree with a mount namespace of its
  // own: each of its mounts that is a bind of a mount of CRIU's (the
  // daemon's) namespace is recorded as external at dump and bind-mounted
  // back from there at restore, instead of being dumped (tmpfs contents:
  // all of /dev/shm) or recreated (a fresh devpts). The images then need it
  // at restore too. Without a mount namespace of its own: no effect.
  bool auto_ext_mounts = false;
  // External resources, CRIU's --external syntax ("mnt[path]:key",
  // "unix[ino]", "tty[rdev:dev]", "file[mnt_id:inode]", ...).
  std::vector<std::string> external;
  // Filesystem types CRIU may dump as "auto" mounts (re-mounted from the
  // same source at restore), beyond those it knows; CRIU's --enable-fs.
  std::vector<std::string> enable_fs;
  // How CRIU locks the network. A dump of a tree in CRIU's (the daemon's)
  // network namespace without tcp_established locks nothing (CRIU locks
  // only the connections it dumps established), so the driver tells CRIU
  // to skip then: otherwise each dump makes an empty nftables table, which
  // a killed CRIU leaves behind for every packet of the host to walk.
  NetworkLock network_lock = NetworkLock::kNftables;

  // Whole-operation deadline, from spawning `criu swrk` to reaping it. When
  // passed, the driver interrupts CRIU (SIGALRM, then SIGKILL after the
  // driver's kill grace) and, for dump/pre-dump, resumes any task of the
  // target tree left stopped (with tcp_established it stops the tree before
  // the interrupt, and releases the sockets and lock CRIU held first:
  // network_lock.h). The operation then fails with kDeadlineExceeded,
  // unless CRIU still answered success (criu_driver.h).
  std::chrono::milliseconds deadline{std::chrono::minutes(5)};
  NotifyCallback notify;  // optional
  // Optional: called on the calling thread right after `criu swrk` started,
  // with its pid. The pid stays CRIU's (not reaped) until the operation
  // returns; to signal it later from another thread, open a pidfd here.
  std::function<void(pid_t)> on_criu_started;
};

struct DumpOptions : CommonOptions {
  int pid = 0;  // root of the tree to dump; required (> 0)
  bool leave_running = false;
  bool link_remap = false;  // allow dumping open-but-unlinked/linked files
  bool tcp_close = false;   // restore TCP sockets as closed
  bool skip_in_flight = false;  // skip TCP connections not yet established (SYN_SENT/SYN_RECV)
  uint32_t ghost_limit = 0;     // max size of an unlinked open file dumped as a ghost; 0: CRIU's default (1 MiB)
  // A device file opened by a path that is gone is recorded by another path
  // to the same device (CRIU's --evasive-devices).
  bool evasive_devices = false;
  // Soft-dirty tracking: pre-dumps and dumps meant to be parents of later
  // ones. Checked with FEATURE_CHECK; kUnavailable when the kernel lacks it.
  bool track_mem = false;
  // Parent images, as a path relative to images_dir (e.g. "../pre-1").
  std::string parent_img;
  // Seconds CRIU allows itself to freeze the tree (its --timeout); 0: CRIU's
  // default (10 s).
  uint32_t freeze_timeout_s = 0;
  // A connected stream socket: CRIU sends the dumped pages over it (its
  // page-server protocol, served by criu::ServePages on the other end)
  // instead of writing pages and pagemap images into images_dir. -1: no.
  // Not with parent_img or a pre-dump (no parent images over it).
  int page_server_fd = -1;
};

struct RestoreOptions : CommonOptions {
  // At restore, resources with this key in the images (see `external`) are
  // served by this fd of the daemon (CRIU's --inherit-fd); at most
  // kMaxInheritedFds. The fds stay the caller's.
  std::vector<std::pair<std::string, int>> inherit_fds;
  bool tcp_close = false;
  // The LSM label the restored tasks get: "apparmor:<profile>" or
  // "selinux:<context>"; empty: the dumped one. CRIU fails when the host
  // has no such LSM.
  std::string lsm_profile;
  // CRIU's root: the directory that becomes the root mount of the restored
  // tree's own mount namespace. Required exactly when the images hold one
  // (the dumped root task had a mount namespace other than the daemon's);
  // RestoreRootFor() tells at dump time what it must be. Empty: none (the
  // tree is restored into the daemon's mount namespace).
  std::string root;
};

struct DumpResult {
  std::filesystem::path log_path;  // CRIU's log of this operation
  std::chrono::milliseconds elapsed{0};
  std::vector<std::string> notifications;  // script names, in order
};

struct RestoreResult {
  int pid = 0;  // the restored root, in the daemon's pid namespace
  // With orphan_pts_master: the master of the pty CRIU made for the tree's
  // terminal (its master was outside the tree); empty when it sent none.
  UniqueFd orphan_pts_master;
  std::filesystem::path log_path;
  std::chrono::milliseconds elapsed{0};
  std::vector<std::string> notifications;
};

}  // namespace ckptd::criu

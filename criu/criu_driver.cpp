#include "criu/criu_driver.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/fd.h"
#include "common/proc.h"
#include "criu/criu_log.h"
#include "criu/network_lock.h"
#include "criu/rpc.pb.h"
#include "criu/swrk.h"

namespace ckptd::criu {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------- versions

std::string CriuVersion::ToString() const {
  std::string s = fmt::format("{}.{}.{}", major, minor, sublevel);
  if (!gitid.empty()) s += fmt::format(" ({})", gitid);
  return s;
}

bool CriuVersion::AtLeast(int want_major, int want_minor, int want_sublevel) const {
  if (major != want_major) return major > want_major;
  if (minor != want_minor) return minor > want_minor;
  return sublevel >= want_sublevel;
}

namespace {

Result<int> OpenDir(const fs::path& dir, std::string_view what) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR)
      return InvalidArgument(fmt::format("{} {}: {}", what, dir.string(), std::strerror(err)));
    return ErrnoError(fmt::format("open {} {}", what, dir.string()), err);
  }
  return fd;
}

rpc::criu_network_lock_method LockMethod(NetworkLock lock) {
  switch (lock) {
    case NetworkLock::kIptables:
      return rpc::IPTABLES;
    case NetworkLock::kSkip:
      return rpc::SKIP;
    default:
      return rpc::NFTABLES;
  }
}

rpc::criu_cg_mode CgMode(CgroupMode mode) {
  switch (mode) {
    case CgroupMode::kSoft:
      return rpc::SOFT;
    case CgroupMode::kFull:
      return rpc::FULL;
    case CgroupMode::kStrict:
      return rpc::STRICT;
    default:
      return rpc::IGNORE;
  }
}

// Options every request kind shares.
void FillCommon(const CommonOptions& o, int images_fd, int work_fd, const std::string& log_file, rpc::criu_opts* out) {
  out->set_images_dir_fd(images_fd);
  out->set_work_dir_fd(work_fd);
  out->set_log_file(log_file);
  out->set_log_level(o.log_level);
  out->set_notify_scripts(true);  // every action-script point comes to us
  if (o.tcp_established) out->set_tcp_established(true);
  if (o.shell_job) out->set_shell_job(true);
  if (o.ext_unix_sk) out->set_ext_unix_sk(true);
  if (o.file_locks) out->set_file_locks(true);
  if (o.orphan_pts_master) out->set_orphan_pts_master(true);
  // Always explicit: CRIU's own default is to dump and restore cgroups.
  out->set_manage_cgroups(o.cgroup_mode != CgroupMode::kIgnore);
  out->set_manage_cgroups_mode(CgMode(o.cgroup_mode));
  for (const auto& fs_type : o.enable_fs) out->add_enable_fs(fs_type);
  if (o.auto_ext_mounts) out->set_auto_ext_mnt(true);
  for (const auto& e : o.external) out->add_external(e);
  if (o.network_lock != NetworkLock::kCriuDefault) out->set_network_lock(LockMethod(o.network_lock));
}

// The fd CRIU sent with the notification `script` (empty: none); the others
// close with the outcome.
UniqueFd TakeReceivedFd(SwrkOutcome* out, std::string_view script) {
  for (auto& [name, fd] : out->received_fds)
    if (name == script) return std::move(fd);
  return UniqueFd();
}

bool ProcessExists(int pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

// Everything needed to turn one swrk conversation into a Status.
struct OpContext {
  std::string what;  // "criu dump of pid 42"
  fs::path log_path;
  fs::path stderr_path;
  std::chrono::milliseconds deadline{0};
  rpc::criu_req_type expected = rpc::EMPTY;
  int target_pid = 0;  // dump target, for kNotFound
};

std::string WithLog(std::string msg, const OpContext& ctx) {
  std::string errors = ctx.log_path.empty() ? std::string() : CriuLogErrors(ctx.log_path);
  if (!errors.empty()) return fmt::format("{}: log {}: {}", msg, ctx.log_path.string(), errors);
  std::string err_tail = ctx.stderr_path.empty() ? std::string() : FileTail(ctx.stderr_path, 5);
  if (!err_tail.empty()) return fmt::format("{}: criu stderr: {}", msg, err_tail);
  if (!ctx.log_path.empty()) return fmt::format("{} (no error lines in {})", msg, ctx.log_path.string());
  return msg;
}

// OK when CRIU answered the expected request with success.
Status OutcomeStatus(const SwrkOutcome& out, const OpContext& ctx) {
  // An interrupted CRIU that still answered success had nothing left that
  // could fail: its work is whole (and a dump without leave_running has
  // ended the tree), so it counts.
  const bool succeeded = out.response && out.response->type() == ctx.expected && out.response->success();
  if (out.deadline_passed && !succeeded) {
    return DeadlineExceeded(
               WithLog(fmt::format("deadline of {} ms passed; criu (pid {}) stopped ({})", ctx.deadline.count(),
                                   out.criu_pid, DescribeWaitStatus(out.wait_status)),
                       ctx))
        .WithContext(ctx.what);
  }
  if (out.deadline_passed) spdlog::warn("{}: deadline passed, but criu completed it", ctx.what);
  if (!out.callback_status.ok()) {
    return out.callback_status.WithContext(fmt::format("{}: notify {}", ctx.what, out.callback_script));
  }
  if (!out.response) {
    std::string why = fmt::format("criu ended without an answer ({})", DescribeWaitStatus(out.wait_status));
    if (!out.protocol_error.empty()) why += ": " + out.protocol_error;
    return IOError(WithLog(why, ctx)).WithContext(ctx.what);
  }
  const rpc::criu_resp& r = *out.response;
  if (r.type() != ctx.expected) {
    // CRIU answers EMPTY to requests it does not know.
    return Internal(WithLog(fmt::format("criu answered request type {} to {}{}", static_cast<int>(r.type()),
                                        static_cast<int>(ctx.expected),
                                        r.has_cr_errmsg() ? ": " + r.cr_errmsg() : std::string()),
                            ctx))
        .WithContext(ctx.what);
  }
  if (r.success()) return Status::Ok();
  std::string msg = "failed";
  if (r.has_cr_errno() && r.cr_errno() != 0)
    msg += fmt::format(" (errno {}: {})", r.cr_errno(), std::strerror(r.cr_errno()));
  // cr_errmsg is CRIU's *first* error line, often a harmless one (e.g. its
  // RLIMIT_NOFILE complaint); the log excerpt has the real story, so the
  // message is only used when there is no log.
  std::string errors = ctx.log_path.empty() ? std::string() : CriuLogErrors(ctx.log_path);
  if (errors.empty() && r.has_cr_errmsg() && !r.cr_errmsg().empty()) {
    std::string em = r.cr_errmsg();
    while (!em.empty() && (em.back() == '\n' || em.back() == ' ')) em.pop_back();
    msg += ": " + em;
  }
  Code code = Code::kIOError;
  if (ctx.target_pid > 0 && !ProcessExists(ctx.target_pid)) code = Code::kNotFound;
  return Status(code, WithLog(msg, ctx)).WithContext(ctx.what);
}

}  // namespace

int ResumeStoppedTree(int root_pid) {
  int resumed = ContinueTree(root_pid);
  if (resumed > 0) spdlog::warn("criu: {} task(s) of pid {} were left stopped; sent SIGCONT", resumed, root_pid);
  return resumed;
}

namespace {

// stat() of a /proc path; NotFound when the process is gone.
Result<struct stat> StatProc(const std::string& path, int pid) {
  struct stat st {};
  if (stat(path.c_str(), &st) == 0) return st;
  int err = errno;
  if (err == ENOENT || err == ESRCH) return NotFound(fmt::format("process {} is gone", pid));
  return ErrnoError("stat " + path, err);
}

bool SameInode(const struct stat& a, const struct stat& b) { return a.st_dev == b.st_dev && a.st_ino == b.st_ino; }

// Whether `pid` is in the caller's namespace of `kind` ("mnt", "net"),
// compared as nsfs inodes.
Result<bool> SharesOurNamespace(std::string_view kind, pid_t pid) {
  CKPTD_ASSIGN_OR_RETURN(struct stat own, StatProc(fmt::format("/proc/self/ns/{}", kind), pid));
  CKPTD_ASSIGN_OR_RETURN(struct stat its, StatProc(fmt::format("/proc/{}/ns/{}", pid, kind), pid));
  return SameInode(own, its);
}

// SIGSTOP to every task of the tree: what a tracer's death would let run
// stays stopped (group-stop survives the detach) until ResumeStoppedTree.
void StopTree(pid_t root) {
  for (int p : TreePids(root)) kill(p, SIGSTOP);
}

// After a killed dump: what CRIU held of the tree's network (network_lock.h).
void ReleaseNetworkOf(pid_t pid, const std::string& what) {
  auto r = ReleaseNetworkAfterKill(pid);
  if (!r.ok()) {
    spdlog::error("{}: releasing the network the killed CRIU held: {}", what, r.status().ToString());
    return;
  }
  if (r->sockets > 0) spdlog::warn("{}: took {} socket(s) out of TCP repair mode after the kill", what, r->sockets);
  for (const auto& t : r->tables) spdlog::warn("{}: removed the network lock the killed CRIU left ({})", what, t);
}

}  // namespace

Result<std::string> RestoreRootFor(int pid) {
  if (pid <= 0) return InvalidArgument(fmt::format("restore root of pid {}: no such pid", pid));
  const std::string what = fmt::format("mount namespace of pid {}", pid);
  // CRIU dumps the mount namespace exactly when the root task's differs from
  // its own, i.e. from ours: compare the same way (nsfs inodes).
  CKPTD_ASSIGN_OR_RETURN(bool shared, SharesOurNamespace("mnt", pid));
  if (shared) return std::string();
  // Its root directory, seen through /proc, against ours.
  CKPTD_ASSIGN_OR_RETURN(struct stat own_root, StatProc("/proc/self/root", pid));
  CKPTD_ASSIGN_OR_RETURN(struct stat its_root, StatProc(fmt::format("/proc/{}/root", pid), pid));
  if (SameInode(own_root, its_root)) return std::string("/");
  return InvalidArgument(
      fmt::format("{}: a namespace of its own whose root is not the daemon's / (a container rootfs?); "
                  "CRIU could restore it only onto that rootfs prepared as its root, which is not supported",
                  what));
}

Status PrepareEmptyPluginDir(const fs::path& dir) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoError("create " + dir.string(), errno);
  UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOTDIR || errno == ELOOP)
      return InvalidArgument(fmt::format("{}: not a directory (a symlink?)", dir.string()));
    return ErrnoError("open " + dir.string(), errno);
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return ErrnoError("stat " + dir.string(), errno);
  if (st.st_uid != geteuid() || (st.st_mode & 022) != 0)
    return InvalidArgument(fmt::format("{}: owned by uid {} with mode {:o}; it must be ours and not group- or "
                                          "world-writable",
                                          dir.string(), st.st_uid, st.st_mode & 07777));
  DIR* d = fdopendir(dup(fd.get()));
  if (d == nullptr) return ErrnoError("list " + dir.string(), errno);
  std::string found;
  while (dirent* e = readdir(d)) {
    std::string_view name = e->d_name;
    if (name != "." && name != "..") {
      found = name;
      break;
    }
  }
  closedir(d);
  if (!found.empty())
    return InvalidArgument(
        fmt::format("{} must be empty (ckptd loads no CRIU plugins) but holds '{}'", dir.string(), found));
  return Status::Ok();
}

// ---------------------------------------------------------------- driver

Result<std::unique_ptr<CriuDriver>> CriuDriver::Create(DriverConfig config) {
  fs::path plugin_dir = config.plugin_dir;
  bool owns = false;
  if (plugin_dir.empty()) {
    std::error_code ec;
    fs::path base = fs::temp_directory_path(ec);
    if (ec) base = "/tmp";
    std::string tmpl = (base / "ckptd-criu-noplugins.XXXXXX").string();
    if (!mkdtemp(tmpl.data())) return ErrnoError("create empty criu plugin dir", errno);
    plugin_dir = tmpl;
    owns = true;
  }
  return std::unique_ptr<CriuDriver>(new CriuDriver(std::move(config), std::move(plugin_dir), owns));
}

CriuDriver::CriuDriver(DriverConfig config, fs::path plugin_dir, bool owns_plugin_dir)
    : config_(std::move(config)), plugin_dir_(std::move(plugin_dir)), owns_plugin_dir_(owns_plugin_dir) {}

CriuDriver::~CriuDriver() {
  if (owns_plugin_dir_) {
    std::error_code ec;
    fs::remove(plugin_dir_, ec);  // only if still empty: never deletes others' files
  }
}

namespace {

SwrkConfig MakeSwrkConfig(const DriverConfig& c, const fs::path& plugin_dir, fs::path stderr_path) {
  SwrkConfig s;
  s.criu_path = c.criu_path;
  s.plugin_dir = plugin_dir.string();
  s.stderr_path = std::move(stderr_path);
  s.kill_grace = c.kill_grace;
  return s;
}

}  // namespace

Result<CriuVersion> CriuDriver::Version() const {
  rpc::criu_req req;
  req.set_type(rpc::VERSION);
  OpContext ctx{"criu version", {}, {}, config_.probe_deadline, rpc::VERSION, 0};
  CKPTD_ASSIGN_OR_RETURN(SwrkOutcome out, RunSwrk(MakeSwrkConfig(config_, plugin_dir_, {}), req,
                                                  Clock::now() + config_.probe_deadline, nullptr));
  CKPTD_RETURN_IF_ERROR(OutcomeStatus(out, ctx));
  if (!out.response->has_version()) return Internal("criu version: answer without version");
  const auto& v = out.response->version();
  CriuVersion version;
  version.major = v.major_number();
  version.minor = v.minor_number();
  version.sublevel = v.has_sublevel() ? v.sublevel() : 0;
  version.gitid = v.gitid();
  version.name = v.name();
  return version;
}

Status CriuDriver::Check() const {
  rpc::criu_req req;
  req.set_type(rpc::CHECK);
  OpContext ctx{"criu check", {}, {}, config_.probe_deadline, rpc::CHECK, 0};
  CKPTD_ASSIGN_OR_RETURN(SwrkOutcome out, RunSwrk(MakeSwrkConfig(config_, plugin_dir_, {}), req,
                                                  Clock::now() + config_.probe_deadline, nullptr));
  return OutcomeStatus(out, ctx);
}

Result<CriuFeatures> CriuDriver::FeatureCheck() const {
  rpc::criu_req req;
  req.set_type(rpc::FEATURE_CHECK);
  // Ask about every feature we know; CRIU answers each with true/false.
  req.mutable_features()->set_mem_track(true);
  req.mutable_features()->set_lazy_pages(true);
  req.mutable_features()->set_pidfd_store(true);
  OpContext ctx{"criu feature check", {}, {}, config_.probe_deadline, rpc::FEATURE_CHECK, 0};
  CKPTD_ASSIGN_OR_RETURN(SwrkOutcome out, RunSwrk(MakeSwrkConfig(config_, plugin_dir_, {}), req,
                                                  Clock::now() + config_.probe_deadline, nullptr));
  // CRIU reports unsupported features with success=false but still fills
  // `features`, so read them whenever they are there.
  if (out.response && out.response->type() == rpc::FEATURE_CHECK && out.response->has_features()) {
    const auto& f = out.response->features();
    return CriuFeatures{f.mem_track(), f.lazy_pages(), f.pidfd_store()};
  }
  CKPTD_RETURN_IF_ERROR(OutcomeStatus(out, ctx));
  return Internal("criu feature check: answer without features");
}

ProbeResult CriuDriver::Probe() const {
  ProbeResult p;
  p.path = config_.criu_path;
  p.found = access(config_.criu_path.c_str(), X_OK) == 0;
  if (!p.found) {
    p.error = fmt::format("criu not found or not executable at {}: {}", config_.criu_path, std::strerror(errno));
    return p;
  }
  auto version = Version();
  if (!version.ok()) {
    p.error = version.status().ToString();
    return p;
  }
  p.version = *version;
  p.version_ok = version->AtLeast(config_.min_major, config_.min_minor);
  if (!p.version_ok) {
    p.error = fmt::format("criu {} is older than the required {}.{}", version->ToString(), config_.min_major,
                          config_.min_minor);
  }
  Status check = Check();
  p.check_passed = check.ok();
  if (!check.ok() && p.error.empty()) p.error = check.ToString();
  return p;
}

Result<DumpResult> CriuDriver::Dump(const DumpOptions& opts) const { return DumpImpl(opts, false); }

Result<DumpResult> CriuDriver::PreDump(const DumpOptions& opts) const { return DumpImpl(opts, true); }

Result<DumpResult> CriuDriver::DumpImpl(const DumpOptions& opts, bool pre_dump) const {
  const std::string op = pre_dump ? "pre-dump" : "dump";
  const std::string what = fmt::format("criu {} of pid {}", op, opts.pid);
  if (opts.pid <= 0) return InvalidArgument(fmt::format("{}: no pid", what));
  if (opts.images_dir.empty()) return InvalidArgument(fmt::format("{}: no images dir", what));
  if (opts.deadline.count() <= 0) return InvalidArgument(fmt::format("{}: no deadline", what));
  if (pre_dump || opts.track_mem) {
    // Without soft-dirty tracking CRIU hits a BUG() half-way through, with the
    // parasite possibly still inside the target: never let it get there.
    auto features = FeatureCheck();
    if (!features.ok()) return features.status().WithContext(what);
    if (!features->mem_track) {
      return Unavailable(
          fmt::format("{}: the kernel has no memory dirty tracking (soft-dirty); "
                      "pre-dumps and track_mem are not possible, use a full dump",
                      what));
    }
  }
  CKPTD_ASSIGN_OR_RETURN(int images_fd_raw, OpenDir(opts.images_dir, "images dir"));
  UniqueFd images_fd(images_fd_raw);
  const fs::path work_dir = opts.work_dir.empty() ? opts.images_dir : opts.work_dir;
  CKPTD_ASSIGN_OR_RETURN(int work_fd_raw, OpenDir(work_dir, "work dir"));
  UniqueFd work_fd(work_fd_raw);
  const std::string log_file = opts.log_file.empty() ? op + ".log" : opts.log_file;
  if (log_file.find('/') != std::string::npos) return InvalidArgument(what + ": log_file must be a bare name");

  rpc::criu_req req;
  req.set_type(pre_dump ? rpc::PRE_DUMP : rpc::DUMP);
  rpc::criu_opts* o = req.mutable_opts();
  FillCommon(opts, images_fd.get(), work_fd.get(), log_file, o);
  o->set_pid(opts.pid);
  // Nothing to lock (options.h). A pid that is gone is CRIU's to report.
  Result<bool> shares_netns = SharesOurNamespace("net", opts.pid);
  if (!opts.tcp_established && shares_netns.ok() && *shares_netns) o->set_network_lock(rpc::SKIP);
  // CRIU always resumes after a pre-dump; say so for clarity.
  if (opts.leave_running || pre_dump) o->set_leave_running(true);
  if (opts.link_remap) o->set_link_remap(true);
  if (opts.tcp_close) o->set_tcp_close(true);
  if (opts.skip_in_flight) o->set_tcp_skip_in_flight(true);
  if (opts.ghost_limit > 0) o->set_ghost_limit(opts.ghost_limit);
  if (opts.evasive_devices) o->set_evasive_devices(true);
  if (opts.track_mem || pre_dump) o->set_track_mem(true);
  if (!opts.parent_img.empty()) o->set_parent_img(opts.parent_img);
  if (opts.freeze_timeout_s > 0) o->set_timeout(opts.freeze_timeout_s);
  if (opts.page_server_fd >= 0) {
    if (pre_dump || !opts.parent_img.empty())
      return InvalidArgument(what + ": pages over a page-server socket cannot refer to parent images");
    o->mutable_ps()->set_fd(kCriuPageServerFd);
  }

  OpContext ctx{what, work_dir / log_file, work_dir / (log_file + ".stderr"), opts.deadline, req.type(), opts.pid};
  const auto start = Clock::now();
  spdlog::info("{}: images {}, log {}", what, opts.images_dir.string(), ctx.log_path.string());
  SwrkConfig swrk = MakeSwrkConfig(config_, plugin_dir_, ctx.stderr_path);
  swrk.on_spawned = opts.on_criu_started;
  swrk.page_server_fd = opts.page_server_fd;
  // Sockets CRIU put in repair mode fail every call on them until the kill
  // is cleaned up (ReleaseNetworkOf): the tree waits stopped until then.
  if (opts.tcp_established) swrk.before_kill = [pid = opts.pid] { StopTree(pid); };
  // A pre-dump sends no notifications: it has no window, and is interrupted
  // at its deadline wherever it is.
  if (!pre_dump) {
    swrk.unsafe_from = "pre-dump";
    swrk.unsafe_until = "post-dump";
    swrk.unsafe_grace = config_.unsafe_grace;
  }
  CKPTD_ASSIGN_OR_RETURN(SwrkOutcome out, RunSwrk(swrk, req, start + opts.deadline, opts.notify));
  Status st = OutcomeStatus(out, ctx);
  if (!st.ok()) {
    // CRIU resumes the tree and releases its network itself when it fails,
    // but not when it is killed.
    if (WIFSIGNALED(out.wait_status)) ReleaseNetworkOf(opts.pid, what);
    int resumed = ResumeStoppedTree(opts.pid);
    if (resumed > 0) spdlog::warn("{}: resumed {} stopped task(s) after failure", what, resumed);
    return st;
  }
  DumpResult result;
  result.log_path = ctx.log_path;
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  result.notifications = std::move(out.notifications);
  return result;
}

Result<RestoreResult> CriuDriver::Restore(const RestoreOptions& opts) const {
  const std::string what = fmt::format("criu restore from {}", opts.images_dir.string());
  if (opts.images_dir.empty()) return InvalidArgument("criu restore: no images dir");
  if (opts.deadline.count() <= 0) return InvalidArgument(what + ": no deadline");
  CKPTD_ASSIGN_OR_RETURN(int images_fd_raw, OpenDir(opts.images_dir, "images dir"));
  UniqueFd images_fd(images_fd_raw);
  const fs::path work_dir = opts.work_dir.empty() ? opts.images_dir : opts.work_dir;
  CKPTD_ASSIGN_OR_RETURN(int work_fd_raw, OpenDir(work_dir, "work dir"));
  UniqueFd work_fd(work_fd_raw);
  const std::string log_file = opts.log_file.empty() ? "restore.log" : opts.log_file;
  if (log_file.find('/') != std::string::npos) return InvalidArgument(what + ": log_file must be a bare name");

  if (opts.root.empty()) {
    // Without a root CRIU 4.2.1 segfaults on these (see the header).
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(opts.images_dir, ec)) {
      if (e.path().filename().string().starts_with("mountpoints-")) {
        return InvalidArgument(
            fmt::format("{}: the images hold a mount namespace of their own ({}); CRIU needs "
                        "a root to restore it and none was given",
                        what, e.path().filename().string()));
      }
    }
  }

  rpc::criu_req req;
  req.set_type(rpc::RESTORE);
  rpc::criu_opts* o = req.mutable_opts();
  FillCommon(opts, images_fd.get(), work_fd.get(), log_file, o);
  std::vector<int> inherited;
  for (const auto& [key, fd] : opts.inherit_fds) {
    rpc::inherit_fd* f = o->add_inherit_fd();
    f->set_key(key);
    f->set_fd(kCriuFirstInheritedFd + static_cast<int>(inherited.size()));
    inherited.push_back(fd);
  }
  if (opts.tcp_close) o->set_tcp_close(true);
  if (!opts.lsm_profile.empty()) o->set_lsm_profile(opts.lsm_profile);
  if (!opts.root.empty()) o->set_root(opts.root);

  OpContext ctx{what, work_dir / log_file, work_dir / (log_file + ".stderr"), opts.deadline, rpc::RESTORE, 0};
  const auto start = Clock::now();
  spdlog::info("{}: log {}", what, ctx.log_path.string());
  SwrkConfig swrk = MakeSwrkConfig(config_, plugin_dir_, ctx.stderr_path);
  swrk.on_spawned = opts.on_criu_started;
  swrk.inherited_fds = std::move(inherited);
  CKPTD_ASSIGN_OR_RETURN(SwrkOutcome out, RunSwrk(swrk, req, start + opts.deadline, opts.notify));
  CKPTD_RETURN_IF_ERROR(OutcomeStatus(out, ctx));
  if (!out.response->has_restore() || out.response->restore().pid() <= 0) {
    return Internal(what + ": success without a restored pid");
  }
  RestoreResult result;
  result.pid = out.response->restore().pid();
  if (opts.orphan_pts_master) result.orphan_pts_master = TakeReceivedFd(&out, "orphan-pts-master");
  result.log_path = ctx.log_path;
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  result.notifications = std::move(out.notifications);
  return result;
}

}  // namespace ckptd::criu

#include "jobs/container_steps.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include <boost/json.hpp>
#include "common/mounts.h"

namespace ckptd {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

constexpr size_t kMaxConfigBytes = 4 << 20;
constexpr auto kTarDeadline = std::chrono::minutes(30);

Result<std::string> ReadSmallFile(const fs::path& p, size_t max) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return NotFound(fmt::format("cannot read {}", p.string()));
  std::string s(max + 1, '\0');
  in.read(s.data(), static_cast<std::streamsize>(s.size()));
  s.resize(static_cast<size_t>(in.gcount()));
  if (s.size() > max) return TooLarge(fmt::format("{} is over {} bytes", p.string(), max));
  return s;
}

Status WriteFile(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
  out.close();
  if (!out) return IOError(fmt::format("cannot write {}", p.string()));
  return Status::Ok();
}

// The upper directory of the overlay mounted at `mount_point` ("" when it is
// not an overlay mount). The last mount at that point is the visible one.
std::string OverlayUpper(const fs::path& mount_point) {
  std::string upper;
  for (const auto& m : ReadMounts()) {
    if (m.mount_point != mount_point.string()) continue;
    upper.clear();
    if (m.fstype != "overlay") continue;
    std::istringstream os(m.super_options);
    for (std::string o; std::getline(os, o, ',');)
      if (o.rfind("upperdir=", 0) == 0) upper = o.substr(9);
  }
  return upper;
}

Status RunTool(ProcessRunner* runner, const std::vector<std::string>& argv, std::string* out = nullptr) {
  RunOptions ro;
  ro.deadline = kTarDeadline;
  ro.max_output = 64 << 20;
  CKPTD_ASSIGN_OR_RETURN(RunResult r, runner->Run(argv, ro));
  if (!r.ok()) return IOError(fmt::format("{}: {}", fmt::join(argv, " "), r.Describe()));
  if (out) *out = std::move(r.out);
  return Status::Ok();
}

// The bundle's rootfs: config.json's root.path, relative to the bundle.
Result<fs::path> BundleRootfs(const fs::path& bundle) {
  CKPTD_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(bundle / "config.json", kMaxConfigBytes));
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  const json::value* path = nullptr;
  if (!ec && v.is_object())
    if (auto* root = v.as_object().if_contains("root"); root && root->is_object())
      path = root->as_object().if_contains("path");
  if (!path || !path->is_string())
    return InvalidArgument(fmt::format("{}/config.json has no root.path", bundle.string()));
  fs::path p(std::string(path->as_string()));
  return p.is_absolute() ? p : bundle / p;
}

// Removes `rel` (a file, or an empty directory) under `root_fd`, resolving
// it inside root (no symlink leads out); a missing one is fine.
Status RemoveInRoot(int root_fd, const fs::path& rel) {
  if (rel.empty() || rel == "." || rel.is_absolute() || *rel.begin() == "..") return Status::Ok();
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string parent = rel.has_parent_path() ? rel.parent_path().string() : ".";
  int dir = static_cast<int>(syscall(SYS_openat2, root_fd, parent.c_str(), &how, sizeof how));
  if (dir < 0) return Status::Ok();  // its directory is gone: nothing to remove
  std::string base = rel.filename().string();
  int rc = unlinkat(dir, base.c_str(), 0);
  if (rc != 0 && errno == EISDIR) rc = unlinkat(dir, base.c_str(), AT_REMOVEDIR);
  int err = errno;
  close(dir);
  if (rc != 0 && err != ENOENT) return ErrnoError("remove " + rel.string(), err);
  return Status::Ok();
}

// The diff is unpacked into `scratch` first: an overlay refuses the 0:0
// devices that mark deletions (whiteouts) in its upper directory, so they
// are taken out there, the rest is copied into the rootfs (cp -a keeps
// owners, modes, times and xattrs), and each whiteout removes its path.
Status ApplyRootfsDiff(const fs::path& tar, const fs::path& rootfs, const fs::path& scratch, ProcessRunner* runner) {
  if (!fs::is_directory(rootfs)) return InvalidArgument(fmt::format("rootfs {} is not a directory", rootfs.string()));
  std::error_code ec;
  fs::remove_all(scratch, ec);
  fs::create_directories(scratch, ec);
  if (ec) return IOError(fmt::format("create {}: {}", scratch.string(), ec.message()));
  CKPTD_RETURN_IF_ERROR(RunTool(runner, {"tar", "--extract", "--file", tar.string(), "--directory", scratch.string(),
                                         "--numeric-owner", "--xattrs", "--xattrs-include=*"}));
  std::vector<fs::path> whiteouts;
  for (auto it = fs::recursive_directory_iterator(scratch, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    struct stat st {};
    if (lstat(it->path().c_str(), &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == 0)
      whiteouts.push_back(it->path().lexically_relative(scratch));
  }
  if (ec) return IOError(fmt::format("walk {}: {}", scratch.string(), ec.message()));
  for (const auto& w : whiteouts) fs::remove(scratch / w, ec);
  CKPTD_RETURN_IF_ERROR(RunTool(runner, {"cp", "-a", (scratch / ".").string(), rootfs.string()}));
  int root_fd = open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) return ErrnoError("open " + rootfs.string(), errno);
  Status st;
  for (size_t i = 0; st.ok() && i < whiteouts.size(); ++i) st = RemoveInRoot(root_fd, whiteouts[i]);
  close(root_fd);
  fs::remove_all(scratch, ec);
  return st;
}

// The saved config.json, root.path "rootfs", when the bundle has none.
Status WriteBundleConfig(const json::object& saved, const fs::path& bundle) {
  if (fs::exists(bundle / "config.json")) return Status::Ok();
  auto* cfg = saved.if_contains("config");
  if (!cfg || !cfg->is_object()) return Corruption(fmt::format("{} has no config", kContainerFile));
  json::value config = *cfg;
  json::object& root = config.as_object()["root"].emplace_object();
  root["path"] = "rootfs";
  if (auto* r = cfg->as_object().if_contains("root"); r && r->is_object())
    if (auto* ro = r->as_object().if_contains("readonly"); ro && ro->is_bool()) root["readonly"] = ro->as_bool();
  std::error_code ec;
  fs::create_directories(bundle / "rootfs", ec);
  return WriteFile(bundle / "config.json", json::serialize(config));
}

// A detached `cat >> log` reading `fd`: the container's output outlives the
// daemon (ckptd.service stops with KillMode=process). The daemon's reaper
// reaps it when the container is gone.
Status StartLogRelay(int fd, const fs::path& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  std::string path = log.string();
  const char* argv[] = {"/bin/sh", "-c", "exec cat >> \"$1\"", "ckptd-log-relay", path.c_str(), nullptr};
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &fa, &attr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return ErrnoError("start the container's log relay", rc);
  return Status::Ok();
}

}  // namespace

Result<runc::ContainerState> RunningContainer(const runc::RuncApi* runc, const api::ContainerTarget& t) {
  if (!runc) return Unavailable("containers need runc, and this daemon has none (runc_path)");
  CKPTD_RETURN_IF_ERROR(runc::ValidateContainerId(t.id));
  CKPTD_RETURN_IF_ERROR(runc->Probe().status());
  CKPTD_ASSIGN_OR_RETURN(runc::ContainerState s, runc->State(t.runtime_root, t.id));
  if (s.status != "running")
    return Conflict(fmt::format("container '{}' is {}, not running", t.id, s.status.empty() ? "?" : s.status));
  if (s.pid <= 0) return Conflict(fmt::format("container '{}' has no init process", t.id));
  return s;
}

json::object ContainerInfo(const runc::ContainerState& s, const api::ContainerTarget& t,
                           const std::string& runtime_version) {
  return json::object{
      {"id", t.id},        {"runtime_root", t.runtime_root},     {"bundle", s.bundle}, {"rootfs", s.rootfs},
      {"runtime", "runc"}, {"runtime_version", runtime_version}, {"init_pid", s.pid}};
}

Status SaveContainerFiles(const runc::ContainerState& s, const json::object& info, const fs::path& images_dir,
                          ProcessRunner* runner) {
  CKPTD_ASSIGN_OR_RETURN(std::string config, ReadSmallFile(fs::path(s.bundle) / "config.json", kMaxConfigBytes));
  boost::system::error_code ec;
  json::value cfg = json::parse(config, ec);
  if (ec || !cfg.is_object()) return InvalidArgument(fmt::format("{}/config.json is not a JSON object", s.bundle));
  json::object saved = info;
  saved["config"] = std::move(cfg);
  std::string upper = OverlayUpper(s.rootfs);
  saved["rootfs_diff"] = !upper.empty();
  CKPTD_RETURN_IF_ERROR(WriteFile(images_dir / kContainerFile, json::serialize(saved)));
  if (upper.empty()) return Status::Ok();
  return RunTool(runner, {"tar", "--create", "--file", (images_dir / kRootfsDiffFile).string(), "--directory", upper,
                          "--numeric-owner", "--xattrs", "--xattrs-include=*", "."});
}

runc::CheckpointArgs CheckpointArgsFor(const api::CheckpointJobRequest& req, const fs::path& images_dir,
                                       const fs::path& work_dir) {
  runc::CheckpointArgs a;
  a.root = req.container->runtime_root;
  a.id = req.container->id;
  a.image_path = images_dir.string();
  a.work_path = work_dir.string();
  a.leave_running = req.leave_running;
  a.tcp_established = req.tcp_established;
  a.file_locks = req.file_locks;
  a.ext_unix_sk = req.ext_unix_sk;
  a.deadline = std::chrono::seconds(req.timeout_s);
  return a;
}

Status CheckContainerRestore(const runc::RuncApi* runc, const api::ContainerTarget& t) {
  if (!runc) return Unavailable("containers need runc, and this daemon has none (runc_path)");
  CKPTD_RETURN_IF_ERROR(runc::ValidateContainerId(t.id));
  CKPTD_RETURN_IF_ERROR(runc->Probe().status());
  if (!fs::is_directory(t.bundle)) return InvalidArgument(fmt::format("bundle {} is not a directory", t.bundle));
  auto s = runc->State(t.runtime_root, t.id);
  if (s.ok()) return Conflict(fmt::format("a container '{}' exists under {} already", t.id, t.runtime_root));
  if (s.status().code() != Code::kNotFound) return s.status();
  return Status::Ok();
}

Result<runc::ContainerState> RestoreContainer(const runc::RuncApi* runc, const ContainerRestore& r,
                                              ProcessRunner* runner) {
  const api::ContainerTarget& t = r.target;
  CKPTD_RETURN_IF_ERROR(CheckContainerRestore(runc, t));
  auto text = ReadSmallFile(r.images_dir / kContainerFile, kMaxConfigBytes);
  if (!text.ok()) return InvalidArgument("the checkpoint is not of a container: restore it without 'container'");
  boost::system::error_code ec;
  json::value saved = json::parse(*text, ec);
  if (ec || !saved.is_object()) return Corruption(fmt::format("{} is not a JSON object", kContainerFile));
  CKPTD_RETURN_IF_ERROR(WriteBundleConfig(saved.as_object(), t.bundle));
  if (r.apply_rootfs_diff && fs::exists(r.images_dir / kRootfsDiffFile)) {
    CKPTD_ASSIGN_OR_RETURN(fs::path rootfs, BundleRootfs(t.bundle));
    CKPTD_RETURN_IF_ERROR(ApplyRootfsDiff(r.images_dir / kRootfsDiffFile, rootfs, r.work_dir / "rootfs-diff", runner)
                              .WithContext("rootfs diff"));
  }
  std::error_code dir_ec;
  fs::create_directories(r.log_dir, dir_ec);
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return ErrnoError("pipe", errno);
  }
  close(in[1]);  // the container's stdin reads end-of-file
  Status relay = StartLogRelay(out[0], r.log_dir / (t.id + ".log"));
  close(out[0]);
  runc::RestoreArgs a;
  a.root = t.runtime_root;
  a.id = t.id;
  a.bundle = t.bundle;
  a.image_path = r.images_dir.string();
  a.work_path = r.work_dir.string();
  a.tcp_established = r.tcp_established;
  a.file_locks = r.file_locks;
  a.ext_unix_sk = r.ext_unix_sk;
  a.stdio = {in[0], out[1], out[1]};
  a.on_started = r.on_started;
  auto s = relay.ok() ? runc->Restore(a) : Result<runc::ContainerState>(relay);
  close(in[0]);
  close(out[1]);
  if (!s.ok()) runc->Remove(t.runtime_root, t.id).IgnoreError();  // nothing half-restored
  return s;
}

}  // namespace ckptd

#include "runc/runc_driver.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>
#include <boost/json/parse.hpp>

#include "common/json_reader.h"
#include "common/mounts.h"
#include "common/proc.h"
#include "criu/criu_log.h"

namespace ckptd::runc {

namespace fs = std::filesystem;

namespace {

// "runc 1.1.5: exit 1: <runc's last lines>; criu log <path>: <Error lines>"
Status Failure(std::string_view what, const RunResult& r, const std::string& criu_log = {}) {
  std::string msg = fmt::format("{}: {}", what, r.Describe());
  if (!criu_log.empty()) {
    std::string errors = criu::CriuLogErrors(criu_log, 5);
    if (!errors.empty()) msg += fmt::format("; criu log {}: {}", criu_log, errors);
  }
  return IOError(std::move(msg));
}

bool SaysNotExist(const RunResult& r) {
  return r.err.find("does not exist") != std::string::npos || r.err.find("not exist") != std::string::npos;
}

Status ValidateRoot(const std::string& root) {
  if (root.empty() || root[0] != '/') return InvalidArgument(fmt::format("runtime root '{}' is not absolute", root));
  return Status::Ok();
}

void AddCriuFlags(std::vector<std::string>* argv, bool tcp, bool locks, bool unix_sk) {
  if (tcp) argv->push_back("--tcp-established");
  if (locks) argv->push_back("--file-locks");
  if (unix_sk) argv->push_back("--ext-unix-sk");
}

}  // namespace

Result<RuncVersion> ParseRuncVersion(const std::string& out) {
  // "runc version 1.1.5+ds1\ncommit: ..."
  const std::string kPrefix = "runc version ";
  size_t at = out.find(kPrefix);
  if (at == std::string::npos)
    return Unavailable(fmt::format("unexpected `runc --version` output: {}", TailLines(out, 2)));
  std::string text = out.substr(at + kPrefix.size());
  text = text.substr(0, text.find_first_of(" \n"));
  RuncVersion v;
  v.text = text;
  if (std::sscanf(text.c_str(), "%d.%d.%d", &v.major, &v.minor, &v.patch) < 2)
    return Unavailable(fmt::format("cannot read runc's version '{}'", text));
  return v;
}

Status ValidateContainerId(const std::string& id) {
  auto ok_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '+' || c == '-' || c == '.';
  };
  // A leading '-' would reach runc as an option.
  if (id.empty() || id.size() > 1024 || id == "." || id == ".." || id[0] == '-' ||
      !std::all_of(id.begin(), id.end(), ok_char))
    return InvalidArgument(
        fmt::format("'{}' is not a container id (letters, digits, _ + - ., not starting with -; at most 1024)", id));
  return Status::Ok();
}

RuncDriver::RuncDriver(RuncOptions opts, ProcessRunner* runner)
    : opts_(std::move(opts)), runner_(runner ? runner : SystemProcessRunner::Default()) {}

std::vector<std::string> RuncDriver::Base(const std::string& root) const {
  std::vector<std::string> argv{opts_.binary};
  if (!opts_.criu_binary.empty()) argv.insert(argv.end(), {"--criu", opts_.criu_binary});
  argv.insert(argv.end(), {"--root", root});
  return argv;
}

Result<RunResult> RuncDriver::Exec(std::vector<std::string> argv, RunOptions ro,
                                   std::chrono::milliseconds deadline) const {
  ro.deadline = deadline.count() > 0 ? deadline : opts_.deadline;
  auto r = runner_->Run(argv, ro);
  if (!r.ok() && r.status().code() == Code::kIOError)
    return Unavailable(fmt::format("runc ({}) cannot run: {}", opts_.binary, r.status().message()));
  return r;
}

Result<RuncVersion> RuncDriver::Probe() const {
  MutexLock lock(probe_mu_);
  if (probed_) return *probed_;
  CKPTD_ASSIGN_OR_RETURN(RunResult r, Exec({opts_.binary, "--version"}, {}));
  if (!r.ok()) return Unavailable(fmt::format("`{} --version`: {}", opts_.binary, r.Describe()));
  CKPTD_ASSIGN_OR_RETURN(RuncVersion v, ParseRuncVersion(r.out));
  if (v.major < 1) return Unavailable(fmt::format("runc {} is too old: checkpointing needs runc 1.0 or later", v.text));
  probed_ = v;
  return v;
}

Result<ContainerState> RuncDriver::State(const std::string& root, const std::string& id) const {
  CKPTD_RETURN_IF_ERROR(ValidateRoot(root));
  CKPTD_RETURN_IF_ERROR(ValidateContainerId(id));
  std::vector<std::string> argv = Base(root);
  argv.insert(argv.end(), {"state", id});
  CKPTD_ASSIGN_OR_RETURN(RunResult r, Exec(std::move(argv), {}));
  if (!r.ok() && SaysNotExist(r)) return NotFound(fmt::format("no container '{}' under runtime root {}", id, root));
  if (!r.ok()) return Failure(fmt::format("runc state {}", id), r);
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(r.out, ec);
  if (ec) return IOError(fmt::format("runc state {}: unreadable output: {}", id, TailLines(r.out, 2)));
  JsonReader jr(v, "runc state");
  ContainerState s;
  s.id = std::string(jr.String("id"));
  s.pid = static_cast<int>(jr.Int("pid"));
  s.status = std::string(jr.String("status"));
  s.bundle = std::string(jr.String("bundle"));
  s.rootfs = std::string(jr.String("rootfs"));
  CKPTD_RETURN_IF_ERROR(jr.status());
  return s;
}

Status RuncDriver::Checkpoint(const CheckpointArgs& a) const {
  CKPTD_RETURN_IF_ERROR(ValidateRoot(a.root));
  CKPTD_RETURN_IF_ERROR(ValidateContainerId(a.id));
  std::vector<std::string> argv = Base(a.root);
  argv.insert(argv.end(), {"checkpoint", "--image-path", a.image_path, "--work-path", a.work_path});
  if (a.leave_running) argv.push_back("--leave-running");
  AddCriuFlags(&argv, a.tcp_established, a.file_locks, a.ext_unix_sk);
  argv.insert(argv.end(), a.extra_args.begin(), a.extra_args.end());
  argv.push_back(a.id);
  RunOptions ro;
  ro.on_started = a.on_started;
  // See the header: signals only while the tree is there and not seized.
  std::optional<ProcRef> init = a.init_pid > 0 ? Identify(a.init_pid) : std::nullopt;
  if (init) {
    ro.interruptible = [init = *init] { return IsAlive(init) && !TreeTraced(init.pid); };
    ro.hold_limit = opts_.unsafe_grace;
  }
  auto r = Exec(std::move(argv), ro, a.deadline);
  Status st = r.ok() ? (r->ok() ? Status::Ok()
                                : Failure(fmt::format("runc checkpoint {}", a.id), *r,
                                          (fs::path(a.work_path) / "dump.log").string()))
                     : r.status();
  if (st.ok()) return st;
  // Never leave it frozen (see the header).
  Status thaw = Thaw(a.root, a.id);
  if (!thaw.ok()) return st.WithContext(fmt::format("and it could not be resumed ({})", thaw.message()));
  return st;
}

Result<ContainerState> RuncDriver::Restore(const RestoreArgs& a) const {
  CKPTD_RETURN_IF_ERROR(ValidateRoot(a.root));
  CKPTD_RETURN_IF_ERROR(ValidateContainerId(a.id));
  fs::path log = fs::path(a.work_path) / "runc.log";
  std::vector<std::string> argv{opts_.binary, "--log", log.string()};
  std::vector<std::string> base = Base(a.root);
  argv.insert(argv.end(), base.begin() + 1, base.end());
  argv.insert(argv.end(),
              {"restore", "--detach", "--image-path", a.image_path, "--work-path", a.work_path, "--bundle", a.bundle});
  AddCriuFlags(&argv, a.tcp_established, a.file_locks, a.ext_unix_sk);
  argv.push_back(a.id);
  RunOptions ro;
  ro.stdio = a.stdio;
  ro.on_started = a.on_started;
  std::error_code ec;
  fs::create_directories(a.work_path, ec);
  CKPTD_ASSIGN_OR_RETURN(RunResult r, Exec(std::move(argv), ro));
  if (!r.ok()) {
    r.err = criu::FileTail(log, 5);
    return Failure(fmt::format("runc restore {}", a.id), r, (fs::path(a.work_path) / "restore.log").string());
  }
  return State(a.root, a.id);
}

Status RuncDriver::Pause(const std::string& root, const std::string& id) const {
  CKPTD_RETURN_IF_ERROR(ValidateRoot(root));
  CKPTD_RETURN_IF_ERROR(ValidateContainerId(id));
  std::vector<std::string> argv = Base(root);
  argv.insert(argv.end(), {"pause", id});
  CKPTD_ASSIGN_OR_RETURN(RunResult r, Exec(std::move(argv), {}));
  if (!r.ok()) return Failure(fmt::format("runc pause {}", id), r);
  return Status::Ok();
}

Status RuncDriver::Thaw(const std::string& root, const std::string& id) const {
  auto s = State(root, id);
  if (!s.ok()) return s.status().code() == Code::kNotFound ? Status::Ok() : s.status();
  if (s->status != "paused" && s->status != "pausing") return Status::Ok();
  std::vector<std::string> argv = Base(root);
  argv.insert(argv.end(), {"resume", id});
  CKPTD_ASSIGN_OR_RETURN(RunResult r, Exec(std::move(argv), {}));
  if (!r.ok()) return Failure(fmt::format("runc resume {}", id), r);
  return Status::Ok();
}

Status RuncDriver::Remove(const std::string& root, const std::string& id) const {
  CKPTD_RETURN_IF_ERROR(ValidateRoot(root));
  CKPTD_RETURN_IF_ERROR(ValidateContainerId(id));
  std::vector<std::string> argv = Base(root);
  argv.insert(argv.end(), {"delete", "--force", id});
  CKPTD_ASSIGN_OR_RETURN(RunResult r, Exec(std::move(argv), {}));
  if (!r.ok() && !SaysNotExist(r)) return Failure(fmt::format("runc delete {}", id), r);
  // A runc killed mid-restore leaves its criu-root bind mount, and a state
  // dir without state.json that runc no longer knows but that blocks the id.
  fs::path dir = fs::path(root) / id;
  UnmountAllUnder(dir);
  std::error_code probe, ec;
  if (fs::is_directory(dir, probe) && !fs::exists(dir / "state.json", probe)) fs::remove_all(dir, ec);
  if (ec) return IOError(fmt::format("remove {}: {}", dir.string(), ec.message()));
  return Status::Ok();
}

}  // namespace ckptd::runc

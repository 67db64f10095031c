#include "api/job_handlers.h"

#include <algorithm>
#include <initializer_list>
#include <string_view>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "criu/options.h"
#include "store/checkpoint_record.h"

namespace ckptd::api {

namespace json = boost::json;

namespace {

// A body field of the wrong type is a 400 naming the field.
Status GetBool(const json::object& o, const char* key, bool* out) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) return Status::Ok();
  if (!v->is_bool()) return InvalidArgument(fmt::format("'{}' must be a boolean", key));
  *out = v->as_bool();
  return Status::Ok();
}

Status GetInt(const json::object& o, const char* key, int64_t lo, int64_t hi, int64_t* out) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) return Status::Ok();
  int64_t n = 0;
  if (v->is_int64())
    n = v->as_int64();
  else if (v->is_uint64() && v->as_uint64() <= INT64_MAX)
    n = static_cast<int64_t>(v->as_uint64());
  else
    return InvalidArgument(fmt::format("'{}' must be an integer", key));
  if (n < lo || n > hi) return InvalidArgument(fmt::format("'{}' must be in [{}, {}]", key, lo, hi));
  *out = n;
  return Status::Ok();
}

Status GetString(const json::object& o, const char* key, std::optional<std::string>* out) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) return Status::Ok();
  if (!v->is_string()) return InvalidArgument(fmt::format("'{}' must be a string", key));
  *out = std::string(v->as_string());
  return Status::Ok();
}

// A field ckptd does not know is refused, not ignored: a client asking for
// an option ckptd lacks must learn it. Names every unknown field.
Status RejectUnknown(const json::object& o, std::initializer_list<std::string_view> known, std::string_view what) {
  std::string unknown;
  for (const auto& [k, _] : o) {
    if (std::find(known.begin(), known.end(), std::string_view(k)) != known.end()) continue;
    unknown += fmt::format("{}'{}'", unknown.empty() ? "" : ", ", std::string_view(k));
  }
  if (unknown.empty()) return Status::Ok();
  std::string names;
  for (std::string_view k : known) names += fmt::format("{}{}", names.empty() ? "" : ", ", k);
  return InvalidArgument(fmt::format("{} has unknown fields {} (known: {})", what, unknown, names));
}

Result<json::object> BodyObject(const Request& req) {
  CKPTD_ASSIGN_OR_RETURN(json::value v, ParseJsonBody(req));
  if (!v.is_object()) return InvalidArgument("request body must be a JSON object");
  return std::move(v.as_object());
}

// "container": {"id", "runtime_root"?, "bundle" (restore: required)}.
// Paths must be absolute; the id is checked again by the runc driver.
Status ParseContainer(const json::object& o, bool restore, std::optional<ContainerTarget>* out) {
  auto* v = o.if_contains("container");
  if (!v || v->is_null()) return Status::Ok();
  const char* shape = restore ? "'container' must be an object {\"id\", \"bundle\", \"runtime_root\"?}"
                              : "'container' must be an object {\"id\", \"runtime_root\"?}";
  if (!v->is_object()) return InvalidArgument(shape);
  const json::object& c = v->as_object();
  CKPTD_RETURN_IF_ERROR(restore ? RejectUnknown(c, {"id", "runtime_root", "bundle"}, "'container'")
                                : RejectUnknown(c, {"id", "runtime_root"}, "'container'"));
  std::optional<std::string> id, root, bundle;
  CKPTD_RETURN_IF_ERROR(GetString(c, "id", &id));
  CKPTD_RETURN_IF_ERROR(GetString(c, "runtime_root", &root));
  CKPTD_RETURN_IF_ERROR(GetString(c, "bundle", &bundle));
  if (!id || id->empty()) return InvalidArgument("'container.id' is required");
  if (restore && !bundle) return InvalidArgument("'container.bundle' is required to restore a container");
  ContainerTarget t;
  t.id = *id;
  if (root) t.runtime_root = *root;
  if (bundle) t.bundle = *bundle;
  for (const auto* path : {&t.runtime_root, &t.bundle})
    if (!path->empty() && ((*path)[0] != '/' || path->size() > 4096))
      return InvalidArgument(fmt::format("'{}' is not an absolute path", *path));
  if (restore && t.bundle.empty()) return InvalidArgument("'container.bundle' must not be empty");
  *out = std::move(t);
  return Status::Ok();
}

// Text that goes into CRIU's options: at most 4096 bytes, no NUL or line
// break.
bool CriuText(std::string_view v) {
  return v.size() <= 4096 && v.find_first_of(std::string_view("\0\n\r", 3)) == std::string_view::npos;
}

// An array of at most `max` non-empty strings of at most 4096 bytes each,
// none holding a NUL or a line break (they go into CRIU's options).
Status GetStrings(const json::object& o, const char* key, size_t max, std::vector<std::string>* out) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) return Status::Ok();
  const std::string shape = fmt::format("'{}' must be an array of at most {} non-empty strings", key, max);
  if (!v->is_array() || v->as_array().size() > max) return InvalidArgument(shape);
  for (const auto& e : v->as_array()) {
    if (!e.is_string() || e.as_string().empty()) return InvalidArgument(shape);
    if (!CriuText(e.as_string()))
      return InvalidArgument(fmt::format("'{}' entries must be at most 4096 bytes without NUL or line breaks", key));
    out->emplace_back(e.as_string());
  }
  return Status::Ok();
}

// "manage_cgroups_mode" and the older boolean "manage_cgroups" (true is
// "soft"); both given must agree.
Status GetCgroupMode(const json::object& o, std::string* mode) {
  std::optional<std::string> named;
  CKPTD_RETURN_IF_ERROR(GetString(o, "manage_cgroups_mode", &named));
  if (named) CKPTD_RETURN_IF_ERROR(criu::ParseCgroupMode(*named).status());
  auto* b = o.if_contains("manage_cgroups");
  bool manage = false;
  CKPTD_RETURN_IF_ERROR(GetBool(o, "manage_cgroups", &manage));
  if (named && b && !b->is_null() && manage != (*named != "ignore"))
    return InvalidArgument(fmt::format("'manage_cgroups': {} contradicts 'manage_cgroups_mode': \"{}\"", manage, *named));
  if (named)
    *mode = *named;
  else if (manage)
    *mode = "soft";
  return Status::Ok();
}

Status GetNetworkLock(const json::object& o, std::optional<std::string>* lock) {
  CKPTD_RETURN_IF_ERROR(GetString(o, "network_lock", lock));
  if (*lock) CKPTD_RETURN_IF_ERROR(criu::ParseNetworkLock(**lock).status());
  return Status::Ok();
}

// The CRIU options of a checkpoint that runc cannot be given: refused for a
// container, not dropped.
Status ParseProcessOptions(const json::object& o, CheckpointJobRequest* r) {
  CKPTD_RETURN_IF_ERROR(GetCgroupMode(o, &r->manage_cgroups_mode));
  std::optional<std::string> lock;
  CKPTD_RETURN_IF_ERROR(GetNetworkLock(o, &lock));
  if (lock) r->network_lock = *lock;
  CKPTD_RETURN_IF_ERROR(GetBool(o, "tcp_close", &r->tcp_close));
  CKPTD_RETURN_IF_ERROR(GetBool(o, "skip_in_flight", &r->skip_in_flight));
  int64_t ghost = 0;
  CKPTD_RETURN_IF_ERROR(GetInt(o, "ghost_limit", 0, UINT32_MAX, &ghost));
  r->ghost_limit = static_cast<uint32_t>(ghost);
  CKPTD_RETURN_IF_ERROR(GetBool(o, "evasive_devices", &r->evasive_devices));
  CKPTD_RETURN_IF_ERROR(GetBool(o, "orphan_pts_master", &r->orphan_pts_master));
  CKPTD_RETURN_IF_ERROR(GetStrings(o, "external", 64, &r->external));
  CKPTD_RETURN_IF_ERROR(GetStrings(o, "enable_fs", 16, &r->enable_fs));
  for (const auto& f : r->enable_fs)
    if (f.size() > 64 || f.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789._-") != std::string::npos)
      return InvalidArgument(fmt::format("'enable_fs' entry \"{}\" is not a filesystem type name", f));
  if (!r->container) return Status::Ok();
  std::string given;
  auto note = [&](bool set, std::string_view name) {
    if (set) given += fmt::format("{}'{}'", given.empty() ? "" : ", ", name);
  };
  note(r->manage_cgroups_mode != "ignore" || o.contains("manage_cgroups_mode"), "manage_cgroups_mode");
  note(lock.has_value(), "network_lock");
  note(r->tcp_close, "tcp_close");
  note(r->skip_in_flight, "skip_in_flight");
  note(r->ghost_limit != 0, "ghost_limit");
  note(r->evasive_devices, "evasive_devices");
  note(r->orphan_pts_master, "orphan_pts_master");
  note(!r->external.empty(), "external");
  note(!r->enable_fs.empty(), "enable_fs");
  note(r->link_remap, "link_remap");
  note(r->shell_job, "shell_job");
  if (given.empty()) return Status::Ok();
  return InvalidArgument(fmt::format(
      "{} are for processes: a container's checkpoint gives runc only leave_running, tcp_established, "
      "file_locks and ext_unix_sk",
      given));
}

Result<CheckpointJobRequest> ParseCheckpoint(const json::object& o, bool* wait) {
  CKPTD_RETURN_IF_ERROR(RejectUnknown(o,
                                      {"pid", "container", "name", "leave_running", "tcp_established", "shell_job",
                                       "ext_unix_sk", "file_locks", "link_remap", "manage_cgroups", "wait", "timeout",
                                       "log_level", "compression", "gpu", "external", "tcp_close",
                                       "skip_in_flight", "ghost_limit", "manage_cgroups_mode", "network_lock",
                                       "evasive_devices", "enable_fs", "orphan_pts_master"},
                                      "the checkpoint request"));
  CheckpointJobRequest r;
  CKPTD_RETURN_IF_ERROR(ParseContainer(o, false, &r.container));
  auto* pid = o.if_contains("pid");
  const bool has_pid = pid && !pid->is_null();
  if (!has_pid && !r.container) return InvalidArgument("'pid' or 'container' is required");
  if (has_pid && r.container) return InvalidArgument("give either 'pid' or 'container', not both");
  int64_t p = 0;
  CKPTD_RETURN_IF_ERROR(GetInt(o, "pid", INT32_MIN, INT32_MAX, &p));
  r.pid = static_cast<int>(p);
  CKPTD_RETURN_IF_ERROR(GetString(o, "name", &r.name));
  if (r.name && r.name->size() > kMaxNameBytes)
    return InvalidArgument(fmt::format("'name' is {} bytes; at most {}", r.name->size(), kMaxNameBytes));
  CKPTD_RETURN_IF_ERROR(GetBool(o, "leave_running", &r.leave_running));
  CKPTD_RETURN_IF_ERROR(GetBool(o, "tcp_established", &r.tcp_established));
  CKPTD_RETURN_IF_ERROR(GetBool(o, "shell_job", &r.shell_job));
  CKPTD_RETURN_IF_ERROR(GetBool(o, "ext_unix_sk", &r.ext_unix_sk));
  CKPTD_RETURN_IF_ERROR(GetBool(o, "file_locks", &r.file_locks));
  CKPTD_RETURN_IF_ERROR(GetBool(o, "link_remap", &r.link_remap));
  CKPTD_RETURN_IF_ERROR(ParseProcessOptions(o, &r));
  CKPTD_RETURN_IF_ERROR(GetBool(o, "wait", wait));
  CKPTD_RETURN_IF_ERROR(GetInt(o, "timeout", 1, 86400, &r.timeout_s));
  int64_t level = r.log_level;
  CKPTD_RETURN_IF_ERROR(GetInt(o, "log_level", 0, 4, &level));
  r.log_level = static_cast<int>(level);
  std::optional<std::string> compression;
  CKPTD_RETURN_IF_ERROR(GetString(o, "compression", &compression));
  if (compression) r.compression = *compression;
  std::optional<std::string> gpu;
  CKPTD_RETURN_IF_ERROR(GetString(o, "gpu", &gpu));
  if (gpu) {
    if (*gpu != "auto" && *gpu != "on" && *gpu != "off")
      return InvalidArgument(fmt::format("'gpu' must be \"auto\", \"on\" or \"off\", not \"{}\"", *gpu));
    r.gpu = *gpu;
  }
  return r;
}

Status CheckAbsolutePath(std::string_view p, std::string_view what) {
  if (p.empty() || p[0] != '/' || p.size() > 4096 || p.find('\0') != std::string_view::npos)
    return InvalidArgument(fmt::format("'{}' must be an absolute path", what));
  return Status::Ok();
}

// "inherit_fd": [{"key", "path", "mode"?: "r" | "w" | "rw"}], at most
// criu::kMaxInheritedFds (CRIU gets them as fds of its own).
Status ParseInheritFds(const json::object& o, std::vector<RestoreJobRequest::InheritFd>* out) {
  auto* v = o.if_contains("inherit_fd");
  if (!v || v->is_null()) return Status::Ok();
  const std::string shape = fmt::format(
      "'inherit_fd' must be an array of at most {} {{\"key\": \"file[...]\", \"path\": \"/...\", \"mode\"?: "
      "\"r\"|\"w\"|\"rw\"}}",
      criu::kMaxInheritedFds);
  if (!v->is_array() || v->as_array().size() > criu::kMaxInheritedFds) return InvalidArgument(shape);
  for (const auto& e : v->as_array()) {
    if (!e.is_object()) return InvalidArgument(shape);
    const json::object& f = e.as_object();
    CKPTD_RETURN_IF_ERROR(RejectUnknown(f, {"key", "path", "mode"}, "an 'inherit_fd' entry"));
    std::optional<std::string> key, path, mode;
    CKPTD_RETURN_IF_ERROR(GetString(f, "key", &key));
    CKPTD_RETURN_IF_ERROR(GetString(f, "path", &path));
    CKPTD_RETURN_IF_ERROR(GetString(f, "mode", &mode));
    if (!key || key->empty() || key->size() > 256 || !CriuText(*key)) return InvalidArgument(shape);
    if (!path) return InvalidArgument(shape);
    CKPTD_RETURN_IF_ERROR(CheckAbsolutePath(*path, "inherit_fd.path"));
    if (mode && *mode != "r" && *mode != "w" && *mode != "rw") return InvalidArgument(shape);
    out->push_back({*key, *path, mode.value_or("rw")});
  }
  return Status::Ok();
}

// The restore's own CRIU options (processes only): a cgroup mode and a
// network lock that replace the checkpoint's, an LSM label, externals.
Status ParseRestoreCriuOptions(const json::object& o, RestoreJobRequest* r) {
  if (o.contains("manage_cgroups_mode")) {
    std::string mode;
    CKPTD_RETURN_IF_ERROR(GetCgroupMode(o, &mode));
    r->manage_cgroups_mode = mode;
  }
  CKPTD_RETURN_IF_ERROR(GetNetworkLock(o, &r->network_lock));
  std::optional<std::string> lsm;
  CKPTD_RETURN_IF_ERROR(GetString(o, "lsm_profile", &lsm));
  if (lsm) {
    std::string_view v = *lsm;
    const bool known = (v.starts_with("apparmor:") && v.size() > 9) || (v.starts_with("selinux:") && v.size() > 8);
    if (!known || !CriuText(v))
      return InvalidArgument("'lsm_profile' must be \"apparmor:<profile>\" or \"selinux:<context>\"");
    r->lsm_profile = *lsm;
  }
  CKPTD_RETURN_IF_ERROR(GetStrings(o, "external", 64, &r->external));
  CKPTD_RETURN_IF_ERROR(ParseInheritFds(o, &r->inherit_fd));
  std::optional<std::string> console;
  CKPTD_RETURN_IF_ERROR(GetString(o, "console_socket", &console));
  if (console) {
    CKPTD_RETURN_IF_ERROR(CheckAbsolutePath(*console, "console_socket"));
    r->console_socket = *console;
  }
  const bool any = r->manage_cgroups_mode || r->network_lock || lsm || !r->external.empty() ||
                   !r->inherit_fd.empty() || console;
  if (r->container && any)
    return InvalidArgument(
        "'manage_cgroups_mode', 'network_lock', 'lsm_profile', 'external', 'inherit_fd' and 'console_socket' are "
        "for processes: a container's restore gives runc none of them");
  return Status::Ok();
}

Result<RestoreJobRequest> ParseRestore(const json::object& o, bool* wait) {
  CKPTD_RETURN_IF_ERROR(RejectUnknown(
      o,
      {"checkpoint_id", "restore_path", "wait", "timeout", "container", "device_map", "manage_cgroups_mode",
       "network_lock", "lsm_profile", "external", "inherit_fd", "console_socket"},
      "the restore request"));
  RestoreJobRequest r;
  CKPTD_RETURN_IF_ERROR(GetString(o, "checkpoint_id", &r.checkpoint_id));
  CKPTD_RETURN_IF_ERROR(GetString(o, "restore_path", &r.restore_path));
  CKPTD_RETURN_IF_ERROR(GetBool(o, "wait", wait));
  CKPTD_RETURN_IF_ERROR(GetInt(o, "timeout", 1, 86400, &r.timeout_s));
  CKPTD_RETURN_IF_ERROR(ParseContainer(o, true, &r.container));
  if (auto* dm = o.if_contains("device_map"); dm && !dm->is_null()) {
    constexpr const char* kShape = "'device_map' must be an array of {\"from\": \"GPU-...\", \"to\": \"GPU-...\"}";
    if (!dm->is_array()) return InvalidArgument(kShape);
    for (const auto& e : dm->as_array()) {
      if (e.is_object()) CKPTD_RETURN_IF_ERROR(RejectUnknown(e.as_object(), {"from", "to"}, "a 'device_map' entry"));
      auto* from = e.is_object() ? e.as_object().if_contains("from") : nullptr;
      auto* to = e.is_object() ? e.as_object().if_contains("to") : nullptr;
      if (!from || !to || !from->is_string() || !to->is_string() || from->as_string().empty() ||
          to->as_string().empty())
        return InvalidArgument(kShape);
      r.device_map.emplace_back(std::string(from->as_string()), std::string(to->as_string()));
    }
  }
  if (r.checkpoint_id.has_value() == r.restore_path.has_value())
    return InvalidArgument("give exactly one of 'checkpoint_id' and 'restore_path'");
  CKPTD_RETURN_IF_ERROR(ParseRestoreCriuOptions(o, &r));
  return r;
}

// wait=true: the finished job (200), answered when it finishes without a
// handler thread waiting for it; otherwise 202 with the ids.
Response Answer(JobService* jobs, const JobSubmitted& sub, bool wait) {
  if (wait) {
    Response r;
    r.deferred = [jobs, id = sub.job_id](Response::Done done) {
      jobs->OnFinished(id, [done = std::move(done)](Result<json::value> job) {
        done(job.ok() ? Json(200, *job) : Error(job.status()));
      });
    };
    return r;
  }
  json::object o{{"job_id", sub.job_id}};
  if (!sub.checkpoint_id.empty()) o["checkpoint_id"] = sub.checkpoint_id;
  Response r = Json(202, o);
  r.headers.emplace_back("Location", "/v2/jobs/" + sub.job_id);
  return r;
}

}  // namespace

void RegisterJobRoutes(Router* router, JobService* jobs) {
  router->Add("POST", "/v2/jobs/checkpoint", [jobs](const Request& req) -> Response {
    auto body = BodyObject(req);
    if (!body.ok()) return Error(body.status());
    bool wait = false;
    auto parsed = ParseCheckpoint(*body, &wait);
    if (!parsed.ok()) return Error(parsed.status());
    auto sub = jobs->SubmitCheckpoint(*parsed);
    if (!sub.ok()) return Error(sub.status());
    return Answer(jobs, *sub, wait);
  });
  router->Add("POST", "/v2/jobs/restore", [jobs](const Request& req) -> Response {
    auto body = BodyObject(req);
    if (!body.ok()) return Error(body.status());
    bool wait = false;
    auto parsed = ParseRestore(*body, &wait);
    if (!parsed.ok()) return Error(parsed.status());
    auto sub = jobs->SubmitRestore(*parsed);
    if (!sub.ok()) return Error(sub.status());
    return Answer(jobs, *sub, wait);
  });
  router->Add("GET", "/v2/jobs/{id}", [jobs](const Request& req) -> Response {
    auto job = jobs->GetJob(req.params.at("id"));
    if (!job.ok()) return Error(job.status());
    return Json(200, *job);
  });
  router->Add("GET", "/v2/jobs/{id}/log", [jobs](const Request& req) -> Response {
    auto log = jobs->JobLog(req.params.at("id"));
    if (!log.ok()) return Error(log.status());
    return Text(200, std::move(*log));
  });
  router->Add("GET", "/v2/jobs", [jobs](const Request& req) -> Response {
    size_t limit = 100;
    if (auto l = req.Query("limit")) {
      if (l->empty() || l->size() > 4 || l->find_first_not_of("0123456789") != std::string::npos || std::stoi(*l) < 1 ||
          std::stoi(*l) > 1000)
        return Error(InvalidArgument("'limit' must be an integer in [1, 1000]"));
      limit = static_cast<size_t>(std::stoi(*l));
    }
    auto list = jobs->ListJobs(limit);
    if (!list.ok()) return Error(list.status());
    return Json(200, json::object{{"jobs", std::move(*list)}});
  });
}

}  // namespace ckptd::api

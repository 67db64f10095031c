#include "api/job_handlers.h"

#include <fmt/format.h>
#include <boost/json.hpp>

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
  for (const auto& [k, _] : c)
    if (k != "id" && k != "runtime_root" && !(restore && k == "bundle"))
      return InvalidArgument(fmt::format("'container' has an unknown field '{}'", std::string_view(k)));
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

Result<CheckpointJobRequest> ParseCheckpoint(const json::object& o, bool* wait) {
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
  CKPTD_RETURN_IF_ERROR(GetBool(o, "manage_cgroups", &r.manage_cgroups));
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
  if (auto* ext = o.if_contains("external"); ext && !ext->is_null()) {
    if (!ext->is_array()) return InvalidArgument("'external' must be an array of strings");
    for (const auto& e : ext->as_array()) {
      if (!e.is_string()) return InvalidArgument("'external' must be an array of strings");
      r.external.emplace_back(e.as_string());
    }
  }
  return r;
}

Result<RestoreJobRequest> ParseRestore(const json::object& o, bool* wait) {
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

#include "jobs/job.h"

#include <array>
#include <utility>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "common/clock.h"
#include "common/json_reader.h"

namespace ckptd {

namespace json = boost::json;

namespace {

constexpr std::array<std::pair<JobPhase, std::string_view>, 10> kPhases{{
    {JobPhase::kQueued, "queued"},
    {JobPhase::kInfo, "info"},
    {JobPhase::kDump, "dump"},
    {JobPhase::kUpload, "upload"},
    {JobPhase::kManifest, "manifest"},
    {JobPhase::kReady, "ready"},
    {JobPhase::kDownload, "download"},
    {JobPhase::kRestore, "restore"},
    {JobPhase::kRecovery, "recovery"},
    {JobPhase::kDone, "done"},
}};

constexpr std::array<std::pair<JobState, std::string_view>, 4> kStates{{
    {JobState::kQueued, "queued"},
    {JobState::kRunning, "running"},
    {JobState::kSucceeded, "succeeded"},
    {JobState::kFailed, "failed"},
}};

template <typename E, size_t N>
Result<E> Parse(const std::array<std::pair<E, std::string_view>, N>& table, std::string_view word, const char* what) {
  for (const auto& [e, name] : table)
    if (name == word) return e;
  return Corruption(fmt::format("job record: unknown {} '{}'", what, word));
}

json::value OptString(const std::string& s) { return s.empty() ? json::value(nullptr) : json::value(s); }

bool B(const json::object& o, const char* k) {
  auto* v = o.if_contains(k);
  return v && v->is_bool() && v->as_bool();
}

json::value ContainerToJson(const std::optional<api::ContainerTarget>& c) {
  if (!c) return nullptr;
  json::object o{{"id", c->id}, {"runtime_root", c->runtime_root}};
  if (!c->bundle.empty()) o["bundle"] = c->bundle;
  return o;
}

json::object RestoreOptionsToJson(const api::RestoreJobRequest& r) {
  json::object o{{"timeout", r.timeout_s}, {"device_map", DeviceMapToJson(r.device_map)}};
  if (r.container) o["container"] = ContainerToJson(r.container);
  if (r.manage_cgroups_mode) o["manage_cgroups_mode"] = *r.manage_cgroups_mode;
  if (r.network_lock) o["network_lock"] = *r.network_lock;
  if (!r.lsm_profile.empty()) o["lsm_profile"] = r.lsm_profile;
  if (!r.external.empty()) o["external"] = ToJsonArray(r.external);
  if (!r.inherit_fd.empty()) {
    json::array fds;
    for (const auto& f : r.inherit_fd) fds.push_back(json::object{{"key", f.key}, {"path", f.path}, {"mode", f.mode}});
    o["inherit_fd"] = std::move(fds);
  }
  if (!r.console_socket.empty()) o["console_socket"] = r.console_socket;
  return o;
}

api::RestoreJobRequest RestoreOptionsFromJson(const json::object& o) {
  api::RestoreJobRequest r;
  if (auto* t = o.if_contains("timeout"); t && t->is_int64()) r.timeout_s = t->as_int64();
  if (auto* m = o.if_contains("device_map")) r.device_map = DeviceMapFromJson(*m);
  r.container = ContainerFromJson(o);
  r.manage_cgroups_mode = StringMember(o, "manage_cgroups_mode");
  r.network_lock = StringMember(o, "network_lock");
  r.lsm_profile = StringMember(o, "lsm_profile").value_or("");
  r.external = StringElements(o, "external");
  if (auto* fds = o.if_contains("inherit_fd"); fds && fds->is_array()) {
    for (const auto& f : fds->as_array()) {
      if (!f.is_object()) continue;
      r.inherit_fd.push_back({StringMember(f, "key").value_or(""), StringMember(f, "path").value_or(""),
                              StringMember(f, "mode").value_or("rw")});
    }
  }
  r.console_socket = StringMember(o, "console_socket").value_or("");
  return r;
}

}  // namespace

json::array DeviceMapToJson(const std::vector<std::pair<std::string, std::string>>& map) {
  json::array out;
  for (const auto& [from, to] : map) out.push_back(json::object{{"from", from}, {"to", to}});
  return out;
}

std::vector<std::pair<std::string, std::string>> DeviceMapFromJson(const json::value& v) {
  std::vector<std::pair<std::string, std::string>> map;
  if (!v.is_array()) return map;
  for (const auto& e : v.as_array()) {
    JsonReader pair(e, "device_map entry");
    std::string from = pair.String("from"), to = pair.String("to");
    if (pair.ok()) map.emplace_back(std::move(from), std::move(to));
  }
  return map;
}

std::optional<api::ContainerTarget> ContainerFromJson(const json::object& o) {
  auto* v = o.if_contains("container");
  if (!v || !v->is_object()) return std::nullopt;
  const json::object& c = v->as_object();
  api::ContainerTarget t;
  auto str = [&](const char* k) -> std::string {
    auto* s = c.if_contains(k);
    return s && s->is_string() ? std::string(s->as_string()) : std::string();
  };
  t.id = str("id");
  t.runtime_root = str("runtime_root");
  t.bundle = str("bundle");
  return t;
}

std::string_view KindName(JobKind k) { return k == JobKind::kCheckpoint ? "checkpoint" : "restore"; }

std::string_view StateName(JobState s) {
  for (const auto& [e, name] : kStates)
    if (e == s) return name;
  return "?";
}

std::string_view PhaseName(JobPhase p) {
  for (const auto& [e, name] : kPhases)
    if (e == p) return name;
  return "?";
}

bool Finished(JobState s) { return s == JobState::kSucceeded || s == JobState::kFailed; }

json::object CheckpointOptionsToJson(const api::CheckpointJobRequest& r) {
  json::object o{{"leave_running", r.leave_running},
                 {"tcp_established", r.tcp_established},
                 {"shell_job", r.shell_job},
                 {"ext_unix_sk", r.ext_unix_sk},
                 {"file_locks", r.file_locks},
                 {"link_remap", r.link_remap},
                 {"manage_cgroups", r.manage_cgroups_mode != "ignore"},
                 {"manage_cgroups_mode", r.manage_cgroups_mode},
                 {"network_lock", r.network_lock},
                 {"timeout", r.timeout_s},
                 {"log_level", r.log_level},
                 {"external", ToJsonArray(r.external)},
                 {"compression", r.compression},
                 {"gpu", r.gpu}};
  if (r.container) o["container"] = ContainerToJson(r.container);
  // Recorded when asked for (a restore re-applies tcp_close, the cgroup
  // mode, the network lock, enable_fs and orphan_pts_master).
  if (r.tcp_close) o["tcp_close"] = true;
  if (r.skip_in_flight) o["skip_in_flight"] = true;
  if (r.ghost_limit) o["ghost_limit"] = r.ghost_limit;
  if (r.evasive_devices) o["evasive_devices"] = true;
  if (r.orphan_pts_master) o["orphan_pts_master"] = true;
  if (!r.enable_fs.empty()) o["enable_fs"] = ToJsonArray(r.enable_fs);
  return o;
}

api::CheckpointJobRequest CheckpointOptionsFromJson(const json::object& o) {
  api::CheckpointJobRequest r;
  r.leave_running = B(o, "leave_running");
  r.tcp_established = B(o, "tcp_established");
  r.shell_job = B(o, "shell_job");
  r.ext_unix_sk = B(o, "ext_unix_sk");
  r.file_locks = B(o, "file_locks");
  r.link_remap = B(o, "link_remap");
  // Records from before manage_cgroups_mode have only the boolean ("soft").
  r.manage_cgroups_mode = StringMember(o, "manage_cgroups_mode").value_or(B(o, "manage_cgroups") ? "soft" : "ignore");
  r.network_lock = StringMember(o, "network_lock").value_or("nftables");
  r.evasive_devices = B(o, "evasive_devices");
  r.orphan_pts_master = B(o, "orphan_pts_master");
  r.enable_fs = StringElements(o, "enable_fs");
  r.tcp_close = B(o, "tcp_close");
  r.skip_in_flight = B(o, "skip_in_flight");
  if (auto* v = o.if_contains("ghost_limit"); v && v->is_number()) r.ghost_limit = v->to_number<uint32_t>();
  if (auto* v = o.if_contains("timeout"); v && v->is_int64()) r.timeout_s = v->as_int64();
  if (auto* v = o.if_contains("log_level"); v && v->is_int64()) r.log_level = static_cast<int>(v->as_int64());
  if (auto* v = o.if_contains("compression"); v && v->is_string()) r.compression = std::string(v->as_string());
  if (auto* v = o.if_contains("gpu"); v && v->is_string()) r.gpu = std::string(v->as_string());
  if (auto* v = o.if_contains("name"); v && v->is_string()) r.name = std::string(v->as_string());
  r.external = StringElements(o, "external");
  r.container = ContainerFromJson(o);
  return r;
}

std::string Job::LogTag() const {
  return fmt::format("job {} checkpoint {}", id, checkpoint_id.empty() ? "-" : checkpoint_id);
}

json::value Job::ToJson(int64_t now_ms) const {
  int64_t elapsed = 0;
  if (started_ms) elapsed = (finished_ms ? finished_ms : now_ms) - started_ms;
  auto stamp = [](int64_t ms) { return ms ? json::value(FormatTimestamp(ms)) : json::value(nullptr); };
  json::object o{{"id", id},
                 {"kind", KindName(kind)},
                 {"state", StateName(state)},
                 {"phase", PhaseName(phase)},
                 {"checkpoint_id", OptString(checkpoint_id)},
                 {"pid", pid ? json::value(pid) : json::value(nullptr)},
                 {"bytes_written", bytes_written},
                 {"created_at", FormatTimestamp(created_ms)},
                 {"created_at_ms", created_ms},
                 {"started_at", stamp(started_ms)},
                 {"started_at_ms", started_ms},
                 {"finished_at", stamp(finished_ms)},
                 {"finished_at_ms", finished_ms},
                 {"elapsed_ms", elapsed},
                 {"result", result.empty() ? json::value(nullptr) : json::value(result)},
                 {"error", OptString(error)},
                 {"restore_path", OptString(restore_path)},
                 {"journal", journal.ToJson()}};
  if (kind == JobKind::kCheckpoint) {
    json::object opts = CheckpointOptionsToJson(ckpt);
    opts["name"] = ckpt.name ? json::value(*ckpt.name) : json::value(nullptr);
    o["options"] = std::move(opts);
  } else {
    o["options"] = RestoreOptionsToJson(rst);
  }
  if (expected_checksum) o["expected_checksum"] = *expected_checksum;
  return o;
}

Result<Job> Job::FromJson(const json::value& v) {
  JsonReader r(v, "job record");
  Job j;
  j.id = r.String("id");
  j.kind = r.String("kind") == "checkpoint" ? JobKind::kCheckpoint : JobKind::kRestore;
  std::string state = r.String("state"), phase = r.String("phase");
  j.checkpoint_id = r.OptString("checkpoint_id").value_or("");
  j.pid = static_cast<int>(r.OptInt("pid").value_or(0));
  j.bytes_written = r.Uint("bytes_written");
  j.created_ms = r.Int("created_at_ms");
  j.started_ms = r.Int("started_at_ms");
  j.finished_ms = r.Int("finished_at_ms");
  j.error = r.OptString("error").value_or("");
  j.restore_path = r.OptString("restore_path").value_or("");
  j.expected_checksum = r.OptString("expected_checksum");
  CKPTD_RETURN_IF_ERROR(r.status());
  CKPTD_ASSIGN_OR_RETURN(j.state, Parse(kStates, state, "state"));
  CKPTD_ASSIGN_OR_RETURN(j.phase, Parse(kPhases, phase, "phase"));
  if (const auto* res = r.Find("result"); res && res->is_object()) j.result = res->as_object();
  if (const auto* opts = r.Find("options"); opts && opts->is_object()) {
    if (j.kind == JobKind::kCheckpoint)
      j.ckpt = CheckpointOptionsFromJson(opts->as_object());
    else
      j.rst = RestoreOptionsFromJson(opts->as_object());
  }
  if (const auto* jr = r.Find("journal"); jr && jr->is_object()) {
    CKPTD_ASSIGN_OR_RETURN(j.journal, Journal::FromJson(*jr));
  }
  if (j.kind == JobKind::kCheckpoint) j.ckpt.pid = j.pid;
  if (j.kind == JobKind::kRestore && !j.checkpoint_id.empty()) j.rst.checkpoint_id = j.checkpoint_id;
  if (j.kind == JobKind::kRestore && j.checkpoint_id.empty()) j.rst.restore_path = j.restore_path;
  return j;
}

}  // namespace ckptd

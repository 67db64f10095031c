#include "jobs/criu_requests.h"

#include <fmt/format.h>
#include <boost/json.hpp>

namespace ckptd {

namespace json = boost::json;

namespace {

bool Opt(const json::value& o, const char* k) {
  if (!o.is_object()) return false;
  auto* v = o.as_object().if_contains(k);
  return v && v->is_bool() && v->as_bool();
}

}  // namespace

criu::DumpOptions DumpOptionsFor(const api::CheckpointJobRequest& req, const std::filesystem::path& images_dir,
                                 const std::filesystem::path& work_dir, bool auto_ext_mounts) {
  criu::DumpOptions d;
  d.pid = req.pid;
  d.images_dir = images_dir;
  d.work_dir = work_dir;
  d.log_level = req.log_level;
  d.leave_running = req.leave_running;
  d.tcp_established = req.tcp_established;
  d.shell_job = req.shell_job;
  d.ext_unix_sk = req.ext_unix_sk;
  d.file_locks = req.file_locks;
  d.link_remap = req.link_remap;
  d.manage_cgroups = req.manage_cgroups;
  d.external = req.external;
  d.auto_ext_mounts = auto_ext_mounts;
  d.deadline = std::chrono::seconds(req.timeout_s);
  return d;
}

Result<criu::RestoreOptions> RestoreOptionsFor(const json::value& options, const std::filesystem::path& images_dir,
                                               const std::filesystem::path& work_dir) {
  criu::RestoreOptions ro;
  ro.images_dir = images_dir;
  ro.work_dir = work_dir;
  ro.tcp_established = Opt(options, "tcp_established");
  ro.shell_job = Opt(options, "shell_job");
  ro.ext_unix_sk = Opt(options, "ext_unix_sk");
  ro.file_locks = Opt(options, "file_locks");
  ro.manage_cgroups = Opt(options, "manage_cgroups");
  if (auto* o = options.is_object() ? options.as_object().if_contains("restore_root") : nullptr) {
    if (!o->is_string() || o->as_string() != "/")
      return Corruption(fmt::format("restore_root {} is not supported (only \"/\")", json::serialize(*o)));
    ro.root = "/";
  }
  ro.auto_ext_mounts = Opt(options, "auto_ext_mounts");
  return ro;
}

}  // namespace ckptd

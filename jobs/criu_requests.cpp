#include "jobs/criu_requests.h"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "common/json_reader.h"

namespace ckptd {

namespace json = boost::json;

namespace {

bool Opt(const json::value& o, const char* k) {
  if (!o.is_object()) return false;
  auto* v = o.as_object().if_contains(k);
  return v && v->is_bool() && v->as_bool();
}

}  // namespace

Result<criu::DumpOptions> DumpOptionsFor(const api::CheckpointJobRequest& req,
                                         const std::filesystem::path& images_dir,
                                         const std::filesystem::path& work_dir, bool auto_ext_mounts) {
  criu::DumpOptions d;
  CKPTD_ASSIGN_OR_RETURN(d.cgroup_mode, criu::ParseCgroupMode(req.manage_cgroups_mode));
  CKPTD_ASSIGN_OR_RETURN(d.network_lock, criu::ParseNetworkLock(req.network_lock));
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
  d.tcp_close = req.tcp_close;
  d.skip_in_flight = req.skip_in_flight;
  d.ghost_limit = req.ghost_limit;
  d.evasive_devices = req.evasive_devices;
  d.orphan_pts_master = req.orphan_pts_master;
  d.external = req.external;
  d.enable_fs = req.enable_fs;
  d.auto_ext_mounts = auto_ext_mounts;
  d.deadline = std::chrono::seconds(req.timeout_s);
  return d;
}

Result<criu::RestoreOptions> RestoreOptionsFor(const json::value& options, const std::filesystem::path& images_dir,
                                               const std::filesystem::path& work_dir,
                                               const api::RestoreJobRequest* request) {
  criu::RestoreOptions ro;
  ro.images_dir = images_dir;
  ro.work_dir = work_dir;
  ro.tcp_established = Opt(options, "tcp_established");
  ro.shell_job = Opt(options, "shell_job");
  ro.ext_unix_sk = Opt(options, "ext_unix_sk");
  ro.file_locks = Opt(options, "file_locks");
  // Checkpoints from before manage_cgroups_mode have only the boolean.
  std::string mode = StringMember(options, "manage_cgroups_mode").value_or(Opt(options, "manage_cgroups") ? "soft" : "ignore");
  std::string lock = StringMember(options, "network_lock").value_or("nftables");
  if (request && request->manage_cgroups_mode) mode = *request->manage_cgroups_mode;
  if (request && request->network_lock) lock = *request->network_lock;
  auto cg = criu::ParseCgroupMode(mode);
  auto nl = criu::ParseNetworkLock(lock);
  if (!cg.ok() || !nl.ok()) return Corruption((cg.ok() ? nl.status() : cg.status()).message());
  ro.cgroup_mode = *cg;
  ro.network_lock = *nl;
  ro.enable_fs = StringElements(options, "enable_fs");
  ro.orphan_pts_master = Opt(options, "orphan_pts_master");
  if (request) {
    ro.lsm_profile = request->lsm_profile;
    ro.external = request->external;
  }
  ro.tcp_close = Opt(options, "tcp_close");
  if (auto* o = options.is_object() ? options.as_object().if_contains("restore_root") : nullptr) {
    if (!o->is_string() || o->as_string() != "/")
      return Corruption(fmt::format("restore_root {} is not supported (only \"/\")", json::serialize(*o)));
    ro.root = "/";
  }
  ro.auto_ext_mounts = Opt(options, "auto_ext_mounts");
  return ro;
}

}  // namespace ckptd

// What a job records of its CRIU options and the CRIU requests built from
// it: the dump's from the checkpoint request, the restore's from the stored
// options and the restore request (jobs/criu_requests.h, jobs/job.h).
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "jobs/criu_requests.h"
#include "jobs/job.h"

namespace ckptd {
namespace {

namespace json = boost::json;
using criu::CgroupMode;
using criu::NetworkLock;

api::CheckpointJobRequest Request() {
  api::CheckpointJobRequest r;
  r.pid = 42;
  r.manage_cgroups_mode = "full";
  r.network_lock = "iptables";
  r.evasive_devices = true;
  r.orphan_pts_master = true;
  r.enable_fs = {"fuse", "nfs4"};
  r.external = {"mnt[/data]:data"};
  return r;
}

TEST(CriuRequestsTest, CheckpointOptionsRoundTripThroughTheRecord) {
  json::object o = CheckpointOptionsToJson(Request());
  EXPECT_EQ(o.at("manage_cgroups_mode"), "full");
  EXPECT_EQ(o.at("manage_cgroups"), json::value(true));
  api::CheckpointJobRequest back = CheckpointOptionsFromJson(json::parse(json::serialize(o)).as_object());
  EXPECT_EQ(back.manage_cgroups_mode, "full");
  EXPECT_EQ(back.network_lock, "iptables");
  EXPECT_TRUE(back.evasive_devices);
  EXPECT_TRUE(back.orphan_pts_master);
  EXPECT_EQ(back.enable_fs, Request().enable_fs);
  EXPECT_EQ(back.external, Request().external);
  // A record from before manage_cgroups_mode: the boolean alone.
  api::CheckpointJobRequest old = CheckpointOptionsFromJson(json::object{{"manage_cgroups", true}});
  EXPECT_EQ(old.manage_cgroups_mode, "soft");
  EXPECT_EQ(old.network_lock, "nftables");
  EXPECT_EQ(CheckpointOptionsFromJson(json::object{}).manage_cgroups_mode, "ignore");
}

TEST(CriuRequestsTest, DumpGetsEveryOption) {
  auto d = DumpOptionsFor(Request(), "/i", "/w", false);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->cgroup_mode, CgroupMode::kFull);
  EXPECT_EQ(d->network_lock, NetworkLock::kIptables);
  EXPECT_TRUE(d->evasive_devices);
  EXPECT_TRUE(d->orphan_pts_master);
  EXPECT_EQ(d->enable_fs, Request().enable_fs);
  EXPECT_EQ(d->external, Request().external);
  api::CheckpointJobRequest bad = Request();
  bad.manage_cgroups_mode = "hard";
  EXPECT_EQ(DumpOptionsFor(bad, "/i", "/w", false).status().code(), Code::kInvalidArgument);
}

TEST(CriuRequestsTest, RestoreAppliesTheStoredOptionsAndTheRequestsOwn) {
  json::value stored = CheckpointOptionsToJson(Request());
  auto ro = RestoreOptionsFor(stored, "/i", "/w");
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  EXPECT_EQ(ro->cgroup_mode, CgroupMode::kFull);
  EXPECT_EQ(ro->network_lock, NetworkLock::kIptables);
  EXPECT_EQ(ro->enable_fs, Request().enable_fs);
  EXPECT_TRUE(ro->orphan_pts_master) << "the restore of a dumped orphan pty needs it too";
  EXPECT_TRUE(ro->external.empty()) << "the dump's externals are not the restore's";

  api::RestoreJobRequest req;
  req.manage_cgroups_mode = "ignore";
  req.network_lock = "skip";
  req.lsm_profile = "apparmor:p";
  req.external = {"mnt[data]:/srv/data"};
  ro = RestoreOptionsFor(stored, "/i", "/w", &req);
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  EXPECT_EQ(ro->cgroup_mode, CgroupMode::kIgnore);
  EXPECT_EQ(ro->network_lock, NetworkLock::kSkip);
  EXPECT_EQ(ro->lsm_profile, "apparmor:p");
  EXPECT_EQ(ro->external, req.external);

  // An older checkpoint: the boolean alone; a manifest naming a mode ckptd
  // does not know is not trusted.
  ro = RestoreOptionsFor(json::object{{"manage_cgroups", true}}, "/i", "/w");
  ASSERT_TRUE(ro.ok());
  EXPECT_EQ(ro->cgroup_mode, CgroupMode::kSoft);
  EXPECT_EQ(ro->network_lock, NetworkLock::kNftables);
  EXPECT_EQ(RestoreOptionsFor(json::object{{"network_lock", "pf"}}, "/i", "/w").status().code(), Code::kCorruption);
}

TEST(CriuRequestsTest, RestoreJobRecordKeepsItsCriuOptions) {
  Job j;
  j.id = "job-1";
  j.kind = JobKind::kRestore;
  j.checkpoint_id = "c";
  j.rst.manage_cgroups_mode = "soft";
  j.rst.network_lock = "skip";
  j.rst.lsm_profile = "selinux:system_u:system_r:container_t:s0";
  j.rst.external = {"mnt[k]:/k"};
  j.rst.inherit_fd = {{"file[1:2]", "/srv/f", "w"}};
  j.rst.console_socket = "/srv/console.sock";
  auto back = Job::FromJson(json::parse(json::serialize(j.ToJson(0))));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->rst.manage_cgroups_mode, std::optional<std::string>("soft"));
  EXPECT_EQ(back->rst.network_lock, std::optional<std::string>("skip"));
  EXPECT_EQ(back->rst.lsm_profile, j.rst.lsm_profile);
  EXPECT_EQ(back->rst.external, j.rst.external);
  ASSERT_EQ(back->rst.inherit_fd.size(), 1u);
  EXPECT_EQ(back->rst.inherit_fd[0].key, "file[1:2]");
  EXPECT_EQ(back->rst.inherit_fd[0].path, "/srv/f");
  EXPECT_EQ(back->rst.inherit_fd[0].mode, "w");
  EXPECT_EQ(back->rst.console_socket, j.rst.console_socket);
  Job plain = j;
  plain.rst = api::RestoreJobRequest{};
  back = Job::FromJson(json::parse(json::serialize(plain.ToJson(0))));
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->rst.manage_cgroups_mode.has_value());
  EXPECT_FALSE(back->rst.network_lock.has_value());
}

}  // namespace
}  // namespace ckptd

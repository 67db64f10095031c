#include "tests/testing/runc_fixture.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "common/subprocess.h"
#include "tests/testing/criu_test_util.h"
#include "tests/testing/test_util.h"

namespace ckptd::testing {

namespace fs = std::filesystem;
namespace json = boost::json;

std::string RuncPath() {
  const char* p = std::getenv("CKPTD_RUNC");
  return p && *p ? p : "runc";
}

void MakeRootfs(const fs::path& rootfs) {
  for (const char* d : {"bin", "proc", "sys", "dev", "tmp", "data", "etc"}) fs::create_directories(rootfs / d);
  fs::copy_file("/bin/busybox", rootfs / "bin/busybox", fs::copy_options::overwrite_existing);
  for (const char* applet : {"sh", "sleep", "echo", "cat", "nc", "ls", "true", "rm"}) {
    std::error_code ec;
    fs::create_symlink("busybox", rootfs / "bin" / applet, ec);
  }
  WriteFileText((rootfs / "etc/deleteme").string(), "from the base image\n");
}

void MakeBundle(const fs::path& dir, const BundleSpec& spec) {
  MakeRootfs(dir / "rootfs");
  WriteConfig(dir, spec);
}

OverlayMount::OverlayMount(const fs::path& lower, const fs::path& upper, const fs::path& work, const fs::path& target)
    : target_(target) {
  for (const auto& d : {upper, work, target}) fs::create_directories(d);
  std::string opts = "lowerdir=" + lower.string() + ",upperdir=" + upper.string() + ",workdir=" + work.string();
  mounted_ = mount("overlay", target.c_str(), "overlay", 0, opts.c_str()) == 0;
  EXPECT_TRUE(mounted_) << "mount overlay at " << target << ": " << strerror(errno);
}

OverlayMount::~OverlayMount() {
  if (mounted_) umount2(target_.c_str(), MNT_DETACH);
}

void WriteConfig(const fs::path& dir, const BundleSpec& spec) {
  CommandResult spec_run = RunCommand("cd '" + dir.string() + "' && rm -f config.json && " + RuncPath() + " spec");
  ASSERT_EQ(spec_run.status, 0) << spec_run.output;
  json::value cfg = json::parse(ReadFileText((dir / "config.json").string()));
  json::object& c = cfg.as_object();
  json::object& process = c["process"].as_object();
  process["terminal"] = false;
  json::array args;
  for (const auto& a : spec.args) args.emplace_back(a);
  process["args"] = std::move(args);
  for (const auto& e : spec.env) process["env"].as_array().emplace_back(e);
  c["root"].as_object()["readonly"] = false;
  if (!spec.netns.empty())
    for (auto& ns : c["linux"].as_object()["namespaces"].as_array())
      if (ns.as_object()["type"] == "network") ns.as_object()["path"] = spec.netns;
  json::array& mounts = c["mounts"].as_array();
  for (const auto& [host, dest] : spec.binds) {
    mounts.push_back(json::object{
        {"destination", dest}, {"type", "bind"}, {"source", host}, {"options", json::array{"rbind", "rw"}}});
  }
  WriteFileText((dir / "config.json").string(), json::serialize(cfg));
}

NetNs::NetNs(std::string name) : name_(std::move(name)) {
  CommandResult r = RunCommand("ip netns add " + name_ + " && ip -n " + name_ + " link set lo up");
  EXPECT_EQ(r.status, 0) << r.output;
}

NetNs::~NetNs() { RunCommand("ip netns del " + name_); }

// The count is rewritten in place at a fixed width (1<> neither truncates
// nor renames): a dump that freezes the shell mid-write then names a file
// that still exists, with the size it had, when the image is restored.
// (Writing count.new and renaming it over count made such a restore fail:
// CRIU reopens the file by its path and checks its size.)
BundleSpec CounterSpec(const std::string& host_data_dir) {
  BundleSpec s;
  s.args = {"/bin/sh", "-c",
            "echo written-before > /tmp/marker; rm -f /etc/deleteme; i=0; "
            "while true; do i=$((i+1)); printf '%020d\\n' $i 1<>/data/count; sleep 0.05; done"};
  s.binds = {{host_data_dir, "/data"}};
  return s;
}

ContainerStdio::ContainerStdio() {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) std::abort();
  theirs_ = {in[0], out[1], err[1]};
  ours_ = {in[1], out[0], err[0]};
}

ContainerStdio::~ContainerStdio() {
  for (int fd : theirs_) close(fd);
  for (int fd : ours_) close(fd);
}

RuncContainers::~RuncContainers() {
  for (const auto& id : ids_) Runc("delete --force " + id);
}

int RuncContainers::Runc(const std::string& args, std::string* output) const {
  CommandResult r =
      RunCommand(RuncPath() + " --criu " + criu::testing::CriuPath() + " --root " + root_.string() + " " + args);
  if (output) *output = r.output;
  return r.status;
}

void RuncContainers::Run(const std::string& id, const fs::path& bundle) {
  Track(id);
  RunOptions ro;
  ro.stdio = stdio_.theirs();
  auto r = SystemProcessRunner::Default()->Run(
      {RuncPath(), "--root", root_.string(), "run", "--detach", "--bundle", bundle.string(), id}, ro);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->exit_code, 0) << "runc run " << id << " failed";
}

std::string RuncContainers::Status(const std::string& id) const {
  std::string out;
  if (Runc("state " + id + " 2>/dev/null", &out) != 0) return "";
  json::value v = json::parse(out);
  return json::value_to<std::string>(v.at("status"));
}

long ReadCount(const fs::path& file) {
  std::string s = ReadFileText(file.string());
  if (s.empty()) return -1;
  return std::strtol(s.c_str(), nullptr, 10);
}

bool CountsPast(const fs::path& file, long above, std::chrono::milliseconds within) {
  auto end = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < end) {
    if (ReadCount(file) > above) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::string UniqueId(const fs::path& dir, const std::string& name) { return dir.filename().string() + "-" + name; }

}  // namespace ckptd::testing

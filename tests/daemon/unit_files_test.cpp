// The shipped unit files pass `systemd-analyze verify`, the tmpfiles entry
// is accepted by systemd-tmpfiles, and the service keeps the settings the
// daemon depends on (Type=notify, KillMode=process, a stop timeout above
// the default shutdown drain).
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "daemon/config.h"
#include "tests/testing/daemon_process.h"
#include "tests/testing/test_util.h"

namespace ckptd::testing {
namespace {

namespace fs = std::filesystem;

std::string UnitSource(const std::string& name) {
  return ReadFileText(std::string(CKPTD_SOURCE_DIR) + "/systemd/" + name);
}

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) s.replace(p, from.size(), to);
  return s;
}

TEST(UnitFilesTest, SystemdAnalyzeVerify) {
  if (access("/usr/bin/systemd-analyze", X_OK) != 0)
    GTEST_SKIP() << "systemd-analyze missing: run scripts/setup.sh (installs package systemd)";
  TempDir dir("ckptd-units");
  // ExecStart must name a binary that exists: point it at the build's ckptd.
  WriteFileText(dir.File("ckptd.service"), ReplaceAll(UnitSource("ckptd.service"), "/usr/bin/ckptd", CkptdBinary()));
  WriteFileText(dir.File("ckptd.socket"), UnitSource("ckptd.socket"));
  auto r = RunCommand("cd " + dir.path().string() + " && /usr/bin/systemd-analyze verify --man=no " +
                      dir.File("ckptd.service") + " " + dir.File("ckptd.socket"));
  EXPECT_EQ(r.status, 0) << r.output;
  // verify exits 0 on some warnings; any line naming our units is a finding.
  std::istringstream in(r.output);
  for (std::string l; std::getline(in, l);) {
    EXPECT_EQ(l.find("ckptd."), std::string::npos) << "systemd-analyze: " << l;
  }
}

TEST(UnitFilesTest, TmpfilesEntryCreatesStateDirectory) {
  if (access("/usr/bin/systemd-tmpfiles", X_OK) != 0) GTEST_SKIP() << "systemd-tmpfiles missing";
  TempDir root("ckptd-root");
  std::string conf = std::string(CKPTD_SOURCE_DIR) + "/systemd/ckptd.tmpfiles";
  auto r = RunCommand("/usr/bin/systemd-tmpfiles --create --root=" + root.path().string() + " " + conf);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(r.output.empty()) << r.output;
  for (const char* d : {"/var/lib/ckptd", "/var/lib/ckptd/images"}) {
    auto st = fs::status(root.path().string() + d);
    ASSERT_TRUE(fs::is_directory(st)) << d;
    EXPECT_EQ(st.permissions() & fs::perms::all, fs::perms::owner_all) << d;
  }
}

TEST(UnitFilesTest, ServiceKeepsWhatTheDaemonReliesOn) {
  std::string unit = UnitSource("ckptd.service");
  auto value = [&](const std::string& key) {
    std::smatch m;
    std::regex re("^" + key + "=(.*)$", std::regex::multiline);
    return std::regex_search(unit, m, re) ? m[1].str() : std::string("<unset>");
  };
  EXPECT_EQ(value("Type"), "notify");
  EXPECT_EQ(value("ExecStart"), "/usr/bin/ckptd --config /etc/ckptd/ckptd.toml");
  EXPECT_EQ(value("KillMode"), "process");
  EXPECT_EQ(value("Restart"), "on-failure");
  EXPECT_EQ(value("WatchdogSec"), "30s");
  EXPECT_EQ(value("StateDirectory"), "ckptd");
  // The stop timeout must cover the default job drain.
  std::string stop = value("TimeoutStopSec");
  ASSERT_EQ(stop.back(), 's') << stop;
  EXPECT_GT(std::stoi(stop), Config{}.shutdown_drain_s);
  // Options that would put restored workloads in a sandbox stay out
  // (mentioned only in comments).
  for (const char* opt : {"ProtectSystem", "PrivateTmp", "PrivateDevices", "NoNewPrivileges", "SystemCallFilter",
                          "RestrictNamespaces", "ProtectProc", "CapabilityBoundingSet", "DevicePolicy"}) {
    EXPECT_EQ(value(opt), "<unset>") << opt;
  }
  std::string socket = UnitSource("ckptd.socket");
  EXPECT_NE(socket.find("\nListenStream=127.0.0.1:8080\n"), std::string::npos);
}

}  // namespace
}  // namespace ckptd::testing

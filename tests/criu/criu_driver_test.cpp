// The CRIU driver against the real CRIU: probing, failure paths, deadlines,
// notifications and the plugin directory. Dump/restore round trips are in
// criu_restore_test.cpp.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "criu/criu_driver.h"
#include "criu/criu_log.h"
#include "tests/testing/criu_fixture.h"
#include "tests/testing/criu_test_util.h"
#include "tests/testing/nft_util.h"

namespace ckptd::criu {
namespace {

using namespace std::chrono_literals;
using testing::ChildrenOf;
using testing::CriuPath;
using testing::DumpOf;
using testing::ExpectRunsOn;
using testing::KillTree;
using testing::ReadProgress;
using testing::ReapChild;
using testing::StartProgressing;
using testing::TempDir;
using testing::WaitProgress;

std::unique_ptr<CriuDriver> MakeDriver(DriverConfig cfg = {}) {
  if (cfg.criu_path == CKPTD_CRIU_DEFAULT) cfg.criu_path = CriuPath();
  auto d = CriuDriver::Create(std::move(cfg));
  if (!d.ok()) ADD_FAILURE() << d.status().ToString();
  return d.ok() ? std::move(d).value() : nullptr;
}

// The driver, a temp dir and the targets to kill of CriuFixture; skipped
// when CRIU cannot run at all here.
class CriuDump : public testing::CriuFixture {};

// Skips only when CRIU cannot run at all here.
#define REQUIRE_CRIU(driver)                                                  \
  do {                                                                        \
    ProbeResult _p = (driver)->Probe();                                       \
    if (!_p.found || !_p.version) GTEST_SKIP() << "criu unusable: " << _p.error; \
  } while (0)

TEST(CriuProbe, VersionCheckAndFeatures) {
  auto driver = MakeDriver();
  ASSERT_TRUE(driver);
  REQUIRE_CRIU(driver);
  auto v = driver->Version();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->AtLeast(4, 2)) << v->ToString();
  EXPECT_EQ(v->ToString().rfind(std::to_string(v->major) + "." + std::to_string(v->minor) + ".", 0), 0u);
  Status check = driver->Check();
  EXPECT_TRUE(check.ok()) << check.ToString();
  auto f = driver->FeatureCheck();
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ProbeResult p = driver->Probe();
  EXPECT_TRUE(p.found);
  EXPECT_EQ(p.path, CriuPath());
  ASSERT_TRUE(p.version.has_value());
  EXPECT_EQ(p.version->ToString(), v->ToString());
  EXPECT_TRUE(p.version_ok);
  EXPECT_TRUE(p.check_passed);
  EXPECT_TRUE(p.ok()) << p.error;
  EXPECT_TRUE(p.error.empty()) << p.error;
}

TEST(CriuVersionTest, Compare) {
  CriuVersion v{4, 2, 1, "", ""};
  EXPECT_TRUE(v.AtLeast(4, 2));
  EXPECT_TRUE(v.AtLeast(4, 2, 1));
  EXPECT_FALSE(v.AtLeast(4, 2, 2));
  EXPECT_FALSE(v.AtLeast(4, 3));
  EXPECT_TRUE(v.AtLeast(3, 19));
  EXPECT_FALSE(v.AtLeast(5, 0));
  EXPECT_EQ(v.ToString(), "4.2.1");
  v.gitid = "abc";
  EXPECT_EQ(v.ToString(), "4.2.1 (abc)");
}

TEST(CriuProbe, MissingBinaryIsUnavailable) {
  TempDir tmp;
  DriverConfig cfg;
  cfg.criu_path = (tmp.path() / "no-such-criu").string();
  auto driver = MakeDriver(cfg);
  ASSERT_TRUE(driver);
  auto v = driver->Version();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), Code::kUnavailable);
  EXPECT_NE(v.status().message().find(cfg.criu_path), std::string::npos) << v.status().ToString();
  ProbeResult p = driver->Probe();
  EXPECT_FALSE(p.found);
  EXPECT_FALSE(p.ok());
  EXPECT_NE(p.error.find("no-such-criu"), std::string::npos) << p.error;
  DumpOptions o;
  o.pid = getpid();
  o.images_dir = tmp.path();
  auto d = driver->Dump(o);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Code::kUnavailable) << d.status().ToString();
}

TEST(CriuProbe, NonExecutableBinaryIsUnavailable) {
  TempDir tmp;
  std::ofstream(tmp.path() / "criu") << "not a program\n";
  DriverConfig cfg;
  cfg.criu_path = (tmp.path() / "criu").string();
  auto driver = MakeDriver(cfg);
  ASSERT_TRUE(driver);
  auto v = driver->Version();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), Code::kUnavailable) << v.status().ToString();
}

TEST_F(CriuDump, NonexistentPidFailsWithLogLines) {
  // A pid that was just used and reaped is free (pid_max wrap aside).
  pid_t gone = testing::Spawn({"/bin/true"});
  ASSERT_GT(gone, 0);
  ASSERT_NE(ReapChild(gone), -1);
  DumpOptions o = DumpOf(gone, tmp_.Sub("img"), 30s);
  auto r = driver_->Dump(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound) << r.status().ToString();
  const std::string& m = r.status().message();
  EXPECT_NE(m.find("criu dump of pid " + std::to_string(gone)), std::string::npos) << m;
  EXPECT_NE(m.find("Error ("), std::string::npos) << m;  // CRIU's own log lines
  EXPECT_NE(m.find((o.images_dir / "dump.log").string()), std::string::npos) << m;
}

TEST(CriuDriverArgs, BadArgumentsAreRejected) {
  auto driver = MakeDriver();
  ASSERT_TRUE(driver);
  TempDir tmp;
  DumpOptions o;
  o.images_dir = tmp.path();
  EXPECT_EQ(driver->Dump(o).status().code(), Code::kInvalidArgument);  // no pid
  o.pid = getpid();
  o.images_dir = tmp.path() / "missing";
  EXPECT_EQ(driver->Dump(o).status().code(), Code::kInvalidArgument);
  RestoreOptions ro;
  ro.images_dir = tmp.path() / "missing";
  EXPECT_EQ(driver->Restore(ro).status().code(), Code::kInvalidArgument);
}

TEST_F(CriuDump, RestoreOfEmptyImagesDirFailsWithLogLines) {
  RestoreOptions ro;
  ro.images_dir = tmp_.Sub("img");
  ro.deadline = 30s;
  auto r = driver_->Restore(ro);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kIOError) << r.status().ToString();
  EXPECT_NE(r.status().message().find("Error ("), std::string::npos) << r.status().ToString();
}

// For every action-script point of a dump: a notify callback that blocks past
// the deadline there gets CRIU killed, and the target must be left running
// (not stopped, still counting), whatever phase CRIU was in.
TEST_F(CriuDump, DeadlineKillsCriuAndLeavesTargetRunning) {
  auto out = tmp_.path() / "counter";
  pid_t pid = StartTarget("counter", out, 3);
  ASSERT_GT(pid, 0);

  // Learn the points with a leave-running dump.
  auto learned = driver_->Dump(DumpOf(pid, tmp_.Sub("learn"), 60s, true));
  ASSERT_TRUE(learned.ok()) << learned.status().ToString();
  ASSERT_FALSE(learned->notifications.empty());

  std::vector<std::string> points = learned->notifications;
  std::cout << "[ NOTE     ] dump notify points:";
  for (const auto& p : points) std::cout << " " << p;
  std::cout << "\n";
  points.erase(std::unique(points.begin(), points.end()), points.end());
  for (const std::string& point : points) {
    SCOPED_TRACE("blocking at " + point);
    // leave_running=false: CRIU would kill the tree on success.
    DumpOptions o = DumpOf(pid, tmp_.Sub("img-" + point), 1500ms);
    o.notify = [&](const std::string& script, int) {
      if (script == point) std::this_thread::sleep_for(3s);
      return Status::Ok();
    };
    auto start = std::chrono::steady_clock::now();
    auto r = driver_->Dump(o);
    auto took = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kDeadlineExceeded) << r.status().ToString();
    EXPECT_LT(took, 10s);
    std::cout << "[ NOTE     ] blocked at " << point << ": " << r.status().ToString().substr(0, 400) << "\n";
    // The target is alive, not stopped, and keeps counting.
    ExpectRunsOn(pid, out, 5, 5s);
  }
}

// CRIU locks only the connections it dumps established: a tree in our
// network namespace without them gets no lock table at all (a killed CRIU
// would leave it behind for every packet of the host to walk).
TEST_F(CriuDump, NoEstablishedConnectionsNoNetworkLock) {
  auto out = tmp_.path() / "counter";
  pid_t pid = StartTarget("counter", out, 3);
  ASSERT_GT(pid, 0);
  const std::set<std::string> before = ckptd::testing::CriuLockTables();
  DumpOptions o = DumpOf(pid, tmp_.Sub("img"), 60s, true);
  ASSERT_EQ(o.network_lock, NetworkLock::kNftables);
  std::optional<std::set<std::string>> while_frozen;
  o.notify = [&](const std::string& script, int) {
    if (script == "post-dump") while_frozen = ckptd::testing::CriuLockTables();
    return Status::Ok();
  };
  auto r = driver_->Dump(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(while_frozen.has_value()) << "no post-dump notification";
  EXPECT_EQ(*while_frozen, before) << "CRIU took a network lock with nothing to lock";
  ExpectRunsOn(pid, out, 5, 5s);
}

// A deadline that lands while CRIU is inside the target (parasite injected,
// pages being drained): the target must survive, not stopped, still sane.
// Interrupted there, CRIU closed the page pipe under its parasite, and the
// target died of SIGPIPE about once in 20 runs; now the dump is stopped at
// post-dump, once the parasite is gone.
TEST_F(CriuDump, DeadlineMidPageDumpLeavesTargetRunning) {
  auto out = tmp_.path() / "memory";
  pid_t pid = StartTarget("memory", out, 1, {"--mib", "768"}, 60s);
  ASSERT_GT(pid, 0);
  int stopped = 0;
  const std::set<std::string> locks_before = ckptd::testing::CriuLockTables();
  for (auto deadline : {150ms, 200ms, 250ms, 300ms, 400ms, 600ms}) {
    SCOPED_TRACE("deadline " + std::to_string(deadline.count()) + " ms");
    DumpOptions o = DumpOf(pid, tmp_.Sub("img-" + std::to_string(deadline.count())), deadline, true);
    std::vector<std::string> seen;
    const auto start = std::chrono::steady_clock::now();
    std::optional<std::chrono::steady_clock::duration> post_dump_at;
    o.notify = [&](const std::string& script, int) {
      seen.push_back(script);
      if (script == "post-dump") post_dump_at = std::chrono::steady_clock::now() - start;
      return Status::Ok();
    };
    auto r = driver_->Dump(o);
    std::string where = seen.empty() ? "before any notify" : "after " + seen.back();
    std::cout << "[ NOTE     ] " << deadline.count() << " ms: stopped " << where << ": "
              << r.status().ToString().substr(0, 200) << "\n";
    if (r.ok()) {
      // Faster than this deadline (the tree keeps running): try the next.
      std::filesystem::remove_all(o.images_dir);
      continue;
    }
    ++stopped;
    EXPECT_EQ(r.status().code(), Code::kDeadlineExceeded) << r.status().ToString();
    // A deadline inside the parasite's span: CRIU, told to stop at
    // post-dump, ends by itself, never interrupted.
    if (post_dump_at && *post_dump_at > deadline + 50ms) {
      EXPECT_EQ(r.status().message().find("Timeout reached"), std::string::npos) << r.status().ToString();
      EXPECT_NE(r.status().message().find("stopped (exit "), std::string::npos) << r.status().ToString();
    }
    // No network lock is left behind (none was taken: the tree has no
    // connection to lock).
    EXPECT_EQ(ckptd::testing::CriuLockTables(), locks_before);
    std::filesystem::remove_all(o.images_dir);  // incomplete images
    ExpectRunsOn(pid, out, 1, 20s);
    EXPECT_TRUE(ReadProgress(out).ok) << "memory corrupted";
  }
  EXPECT_GT(stopped, 0) << "every dump beat its deadline: the workload is too small for this machine";
}

// A dump whose CRIU stays inside the target past DriverConfig::unsafe_grace
// (here: a notify callback inside the span that does not return in time) is
// interrupted there anyway, and the target still runs (the callback holds
// CRIU before it injects its parasite).
TEST_F(CriuDump, UnsafeGraceBoundsTheWaitInsideTheTarget) {
  DriverConfig cfg;
  cfg.criu_path = CriuPath();
  cfg.unsafe_grace = 500ms;
  auto driver = CriuDriver::Create(cfg);
  ASSERT_TRUE(driver.ok()) << driver.status().ToString();
  auto out = tmp_.path() / "counter";
  pid_t pid = StartTarget("counter", out, 3);
  ASSERT_GT(pid, 0);
  DumpOptions o = DumpOf(pid, tmp_.Sub("img"), 1s);
  o.notify = [&](const std::string& script, int) {
    if (script == "query-ext-files") std::this_thread::sleep_for(3s);
    return Status::Ok();
  };
  auto r = (*driver)->Dump(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kDeadlineExceeded) << r.status().ToString();
  // CRIU's SIGALRM handler logged the interrupt: it came at 1.5 s, while
  // CRIU waited for the callback's answer.
  EXPECT_NE(r.status().message().find("Timeout reached"), std::string::npos) << r.status().ToString();
  ExpectRunsOn(pid, out, 5, 5s);
}

TEST_F(CriuDump, NotifyErrorAbortsAndTargetResumes) {
  auto out = tmp_.path() / "counter";
  pid_t pid = StartTarget("counter", out, 3);
  ASSERT_GT(pid, 0);
  std::vector<std::string> seen;
  DumpOptions o = DumpOf(pid, tmp_.Sub("img"), 60s);
  o.notify = [&](const std::string& script, int) -> Status {
    seen.push_back(script);
    if (script == "post-dump") return Internal("gpu checkpoint refused");
    return Status::Ok();
  };
  auto r = driver_->Dump(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInternal) << r.status().ToString();
  EXPECT_NE(r.status().message().find("notify post-dump: gpu checkpoint refused"), std::string::npos)
      << r.status().ToString();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), "post-dump") << "callback called again after its error";
  ExpectRunsOn(pid, out, 5, 5s);
}

// The daemon's own plugin dir: created once, reused, never emptied by us.
TEST(CriuPlugins, PreparedPluginDirIsOursAndEmpty) {
  TempDir mine;
  auto dir = mine.path() / "criu-plugins";
  ASSERT_TRUE(PrepareEmptyPluginDir(dir).ok());
  EXPECT_EQ(std::filesystem::status(dir).permissions() & std::filesystem::perms::all, std::filesystem::perms::owner_all);
  EXPECT_TRUE(PrepareEmptyPluginDir(dir).ok()) << "an existing empty dir is reused";
  std::ofstream(dir / "cuda_plugin.so") << "x";
  auto full = PrepareEmptyPluginDir(dir);
  EXPECT_EQ(full.code(), Code::kInvalidArgument);
  EXPECT_NE(full.message().find("cuda_plugin.so"), std::string::npos) << full.ToString();
  EXPECT_TRUE(std::filesystem::exists(dir / "cuda_plugin.so")) << "what it finds is not deleted";
  std::filesystem::create_directory(mine.path() / "elsewhere");
  std::filesystem::create_directory_symlink(mine.path() / "elsewhere", mine.path() / "link");
  EXPECT_EQ(PrepareEmptyPluginDir(mine.path() / "link").code(), Code::kInvalidArgument) << "a symlink is refused";
  std::filesystem::create_directory(mine.path() / "open");
  std::filesystem::permissions(mine.path() / "open", std::filesystem::perms::others_write,
                               std::filesystem::perm_options::add);
  EXPECT_EQ(PrepareEmptyPluginDir(mine.path() / "open").code(), Code::kInvalidArgument) << "world-writable";
}

TEST(CriuPlugins, CriuLoadsPluginsOnlyFromTheConfiguredDir) {
  auto driver = MakeDriver();
  ASSERT_TRUE(driver);
  REQUIRE_CRIU(driver);
  // Default: a private, empty directory.
  ASSERT_TRUE(std::filesystem::is_directory(driver->plugin_dir()));
  EXPECT_TRUE(std::filesystem::is_empty(driver->plugin_dir()));

  // A configured directory is what CRIU really uses: a broken "plugin" there
  // makes the dump fail, which proves CRIU looked there and nowhere else.
  TempDir tmp;
  auto plugins = tmp.Sub("plugins");
  std::ofstream(plugins / "broken_plugin.so") << "not an ELF file\n";
  DriverConfig cfg;
  cfg.plugin_dir = plugins;
  auto with_plugins = MakeDriver(cfg);
  ASSERT_TRUE(with_plugins);
  auto out = tmp.path() / "counter";
  pid_t pid = StartProgressing("counter", out, 3);
  ASSERT_GT(pid, 0);
  DumpOptions o = DumpOf(pid, tmp.Sub("img-broken"), 60s, true);
  auto bad = with_plugins->Dump(o);
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("broken_plugin.so"), std::string::npos) << bad.status().ToString();
  o.images_dir = tmp.Sub("img-default");
  auto good = driver->Dump(o);
  EXPECT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_TRUE(WaitProgress(out, ReadProgress(out).n + 3));
  KillTree(pid);
}

TEST(CriuLog, ErrorExcerptKeepsLastErrorLines) {
  TempDir tmp;
  auto log = tmp.path() / "x.log";
  {
    std::ofstream f(log);
    f << "(00.000001) Version: 4.2.1\n";
    for (int i = 0; i < 15; ++i) f << "(00.00000" << i % 10 << ") Error (criu/x.c:" << i << "): boom " << i << "\n";
    f << "(00.100000) Warn  (criu/y.c:1): a warning\n";
  }
  std::string e = CriuLogErrors(log, 10);
  EXPECT_EQ(e.find("boom 4"), std::string::npos) << e;
  EXPECT_NE(e.find("Error (criu/x.c:5): boom 5"), std::string::npos) << e;
  EXPECT_NE(e.find("boom 14"), std::string::npos) << e;
  // Ten errors leave no room for the warning among them: it is only the
  // log's last line.
  EXPECT_NE(e.find("boom 14 | last lines: Warn  (criu/y.c:1): a warning"), std::string::npos) << e;
  EXPECT_EQ(e.find("(00."), std::string::npos) << "timestamps are dropped: " << e;
  EXPECT_EQ(CriuLogErrors(tmp.path() / "missing.log"), "");
}

// A restore's per-task lines carry the task's pid: they are the root cause
// ("Can't restore not-sent send queue data") and must not be dropped.
TEST(CriuLog, ExcerptKeepsPidPrefixedErrorsWarningsAndTheLastLines) {
  TempDir tmp;
  auto log = tmp.path() / "restore.log";
  {
    std::ofstream f(log);
    f << "(00.000001) Version: 4.2.1\n"
      << "(00.010000) Warn  (criu/kerndat.c:9): a harmless warning\n"
      << "(00.020000)  27983: Restoring sockets\n"
      << "(00.030000)  27983: Error (soccr/soccr.c:819): Can't restore not-sent send queue data\n"
      << "27983: Error (criu/files.c:1213): Unable to open fd=3\n"
      << "(00.040000) Error (criu/cr-restore.c:2613): Restoring FAILED.\n"
      << "(00.050000) Unlock network\n";
  }
  std::string e = CriuLogErrors(log, 10);
  EXPECT_NE(e.find("Error (soccr/soccr.c:819): Can't restore not-sent send queue data; "
                   "Error (criu/files.c:1213): Unable to open fd=3; Error (criu/cr-restore.c:2613): Restoring FAILED."),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("Warn  (criu/kerndat.c:9): a harmless warning"), std::string::npos) << e;
  EXPECT_NE(e.find(" | last lines: Unlock network"), std::string::npos) << e;
  EXPECT_EQ(e.find("27983"), std::string::npos) << "pid prefixes are dropped: " << e;
  // With room for two, the warning goes first.
  std::string two = CriuLogErrors(log, 2);
  EXPECT_EQ(two, "Error (criu/files.c:1213): Unable to open fd=3; Error (criu/cr-restore.c:2613): Restoring FAILED."
                 " | last lines: Unlock network");
}

}  // namespace
}  // namespace ckptd::criu

// sd_notify protocol and signals of the real ckptd binary, against a
// NOTIFY_SOCKET this test opens in place of systemd: READY=1 only once the
// API answers, STATUS= lines, WATCHDOG=1 pings, STOPPING=1 and exit 0 on
// SIGTERM, SIGHUP reload of log_level (and surviving a bad file), socket
// activation with an inherited listening socket.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "tests/testing/daemon_process.h"
#include "tests/testing/test_util.h"

namespace ckptd::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class NotifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(notify_.ok()) << "cannot bind " << notify_.path();
    port_ = FreePort();
  }
  std::vector<std::string> BaseArgs() {
    return {"--listen", "127.0.0.1:" + std::to_string(port_), "--data-dir", dir_.File("data")};
  }
  std::vector<std::string> BaseEnv() {
    return {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "NOTIFY_SOCKET=" + notify_.path()};
  }

  TempDir dir_{"ckptd-sd"};
  NotifySocket notify_{dir_.File("notify")};
  uint16_t port_ = 0;
};

TEST_F(NotifyTest, ReadyOnlyWhenServingWatchdogPingsStoppingOnSigterm) {
  auto env = BaseEnv();
  env.push_back("WATCHDOG_USEC=400000");
  DaemonProcess d(BaseArgs(), env, dir_.File("stderr"), /*watchdog_pid=*/true);

  // Until READY=1, every message is STATUS or WATCHDOG; at READY=1 the port
  // must answer at once (one attempt, no retry).
  bool ready = false;
  auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (!ready && std::chrono::steady_clock::now() < deadline) {
    auto m = notify_.Next(milliseconds(500));
    if (!m) continue;
    if (NotifySocket::HasLine(*m, "READY=1")) {
      ready = true;
      EXPECT_EQ(HttpGetStatus(port_, "/healthz"), 200) << "READY=1 sent before the API answers";
      EXPECT_NE(m->find("STATUS=serving on port " + std::to_string(port_)), std::string::npos) << *m;
    }
  }
  ASSERT_TRUE(ready) << "no READY=1; daemon log:\n" << d.Log();
  bool status_before_ready = false;
  for (const auto& m : notify_.log())
    if (m.rfind("STATUS=opening", 0) == 0) status_before_ready = true;
  EXPECT_TRUE(status_before_ready) << "no STATUS= line during start-up";

  // WATCHDOG_USEC=400ms: a ping every 200ms. Expect several within 1.5s.
  int pings = 0;
  auto until = std::chrono::steady_clock::now() + milliseconds(1500);
  while (std::chrono::steady_clock::now() < until) {
    auto m = notify_.Next(milliseconds(300));
    if (m && NotifySocket::HasLine(*m, "WATCHDOG=1")) ++pings;
  }
  EXPECT_GE(pings, 4) << "WATCHDOG=1 pings in 1.5s";
  EXPECT_LE(pings, 12);

  d.Signal(SIGTERM);
  auto stopping = notify_.WaitFor("STOPPING=1", seconds(10));
  EXPECT_TRUE(stopping.has_value()) << "no STOPPING=1 after SIGTERM";
  auto code = d.Wait(seconds(30));
  ASSERT_TRUE(code.has_value()) << "ckptd did not exit after SIGTERM";
  EXPECT_EQ(*code, 0) << d.Log();
}

TEST_F(NotifyTest, NoWatchdogWhenWatchdogPidIsAnotherProcess) {
  auto env = BaseEnv();
  env.push_back("WATCHDOG_USEC=400000");
  env.push_back("WATCHDOG_PID=1");  // meant for someone else
  DaemonProcess d(BaseArgs(), env, dir_.File("stderr"));
  ASSERT_TRUE(notify_.WaitFor("READY=1", seconds(30))) << d.Log();
  auto until = std::chrono::steady_clock::now() + milliseconds(800);
  while (std::chrono::steady_clock::now() < until) {
    auto m = notify_.Next(milliseconds(200));
    if (m) {
      EXPECT_FALSE(NotifySocket::HasLine(*m, "WATCHDOG=1"));
    }
  }
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(seconds(30)), 0);
}

TEST(NotifyWithoutSocketTest, RunsTheSameWithoutNotifySocket) {
  TempDir dir("ckptd-sd");
  uint16_t port = FreePort();
  DaemonProcess d({"--listen", "127.0.0.1:" + std::to_string(port), "--data-dir", dir.File("data")},
                  {"PATH=/usr/bin:/bin", "WATCHDOG_USEC=400000"}, dir.File("stderr"), true);
  int code = -1;
  for (int i = 0; i < 300 && code != 200; ++i) {
    code = HttpGetStatus(port, "/healthz");
    if (code != 200) std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(code, 200) << d.Log();
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(seconds(30)), 0) << d.Log();
}

TEST_F(NotifyTest, SighupAppliesLogLevelAndSurvivesABadFile) {
  std::string cfg = dir_.File("ckptd.toml");
  WriteFileText(cfg, "log_level = \"info\"\n");
  auto args = BaseArgs();
  args.insert(args.end(), {"--config", cfg});
  DaemonProcess d(args, BaseEnv(), dir_.File("stderr"));
  ASSERT_TRUE(notify_.WaitFor("READY=1", seconds(30))) << d.Log();
  EXPECT_EQ(d.Log().find("debug:"), std::string::npos) << "debug lines at log_level=info";

  // log_level is applied; job_workers needs a restart. (The --data-dir
  // flag wins over the file, so data_dir is never reported as changed.)
  WriteFileText(cfg, "log_level = \"debug\"\njob_workers = 5\n");
  d.Signal(SIGHUP);
  ASSERT_TRUE(notify_.WaitFor("RELOADING=1", seconds(10))) << d.Log();
  ASSERT_TRUE(notify_.WaitFor("READY=1", seconds(10))) << d.Log();
  EXPECT_TRUE(d.WaitForLog("debug: SIGHUP: log level is now debug", seconds(5))) << d.Log();
  EXPECT_TRUE(d.WaitForLog("need a restart to take effect: job_workers", seconds(5))) << d.Log();
  EXPECT_EQ(d.Log().find("data_dir"), std::string::npos) << "flag-set data_dir reported as changed";

  // A bad file is logged and ignored; the daemon keeps serving at debug.
  WriteFileText(cfg, "log_level = \"info\"\nbogus_key = 1\n");
  d.Signal(SIGHUP);
  ASSERT_TRUE(notify_.WaitFor("READY=1", seconds(10))) << d.Log();
  EXPECT_TRUE(d.WaitForLog("configuration not reloaded", seconds(5))) << d.Log();
  EXPECT_NE(d.Log().find("bogus_key"), std::string::npos) << d.Log();
  EXPECT_EQ(HttpGetStatus(port_, "/healthz"), 200);

  // Back to info: the debug line of a further reload must not appear.
  WriteFileText(cfg, "log_level = \"info\"\n");
  d.Signal(SIGHUP);
  ASSERT_TRUE(notify_.WaitFor("READY=1", seconds(10))) << d.Log();
  EXPECT_TRUE(d.WaitForLog("applied: log_level", seconds(5))) << d.Log();
  EXPECT_EQ(d.Log().find("log level is now info"), std::string::npos) << d.Log();

  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(seconds(30)), 0) << d.Log();
}

// systemd-socket-activate binds the port, then execs ckptd with LISTEN_FDS=1
// (and LISTEN_PID set to ckptd's pid): ckptd must serve on that socket and
// ignore its own `listen` setting.
TEST_F(NotifyTest, SocketActivationUsesTheInheritedSocket) {
  const char* activate = "/usr/bin/systemd-socket-activate";
  if (access(activate, X_OK) != 0) GTEST_SKIP() << "systemd-socket-activate not installed";
  uint16_t other = FreePort();
  std::string cmd = std::string("exec env -i PATH=/usr/bin:/bin NOTIFY_SOCKET=") + notify_.path() + " " +
                    activate + " -E NOTIFY_SOCKET=" + notify_.path() + " -l 127.0.0.1:" + std::to_string(port_) + " " + CkptdBinary() +
                    " --listen 127.0.0.1:" + std::to_string(other) + " --data-dir " + dir_.File("data") +
                    " >" + dir_.File("stderr") + " 2>&1";
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Activation is lazy: the first connection starts ckptd. Retry only
  // until systemd-socket-activate has bound the port.
  int first = -1;
  for (int i = 0; i < 100 && first == -1; ++i) {
    if (ReadFileText(dir_.File("stderr")).find("Listening on") == std::string::npos) {
      std::this_thread::sleep_for(milliseconds(50));
      continue;
    }
    first = HttpGetStatus(port_, "/healthz");
  }
  EXPECT_EQ(first, 200) << ReadFileText(dir_.File("stderr"));
  auto ready = notify_.WaitFor("READY=1", seconds(30));
  ASSERT_TRUE(ready.has_value()) << ReadFileText(dir_.File("stderr"));
  EXPECT_NE(ready->find("socket-activated"), std::string::npos) << *ready;
  EXPECT_EQ(HttpGetStatus(port_, "/healthz"), 200);
  EXPECT_EQ(HttpGetStatus(other, "/healthz"), -1) << "bound its own listen address too";
  kill(pid, SIGTERM);
  int st = 0;
  waitpid(pid, &st, 0);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << ReadFileText(dir_.File("stderr"));
}

}  // namespace
}  // namespace ckptd::testing

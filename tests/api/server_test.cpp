// The HTTP server at the edge of its descriptors (api/server.cpp), on the
// real ckptd binary with a low RLIMIT_NOFILE: max_connections is fitted to
// the limit (and said so), and a flood of idle connections that runs the
// process out of descriptors neither spins the accept loop (CPU), nor
// floods the log, nor keeps the daemon from serving once it passes.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/testing/daemon_process.h"
#include "tests/testing/test_util.h"

namespace ckptd {
namespace {

using namespace std::chrono_literals;

// utime + stime of `pid`, in clock ticks.
uint64_t CpuTicks(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), {});
  std::istringstream in(s.substr(s.rfind(')') + 2));
  std::string field;
  uint64_t utime = 0, stime = 0;
  for (int i = 3; i < 14; ++i) in >> field;
  in >> utime >> stime;
  return utime + stime;
}


size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

TEST(ServerTest, OutOfDescriptorsTheDaemonBacksOffAndRecovers) {
  testing::TempDir dir;
  testing::DaemonChild::Options o;
  o.args = {"--criu-path", "/nonexistent/criu"};
  o.log = dir.File("ckptd.log");
  o.nofile = 256;
  o.timeout = 30s;
  testing::DaemonChild child;
  ASSERT_GE(child.Start(dir.path(), o), 0) << testing::ReadFileText(o.log);
  testing::DaemonProcess& d = *child.process();
  const uint16_t port = child.port();
  EXPECT_NE(d.Log().find("max_connections 1024 lowered to"), std::string::npos) << d.Log();

  // Idle connections beyond the descriptors the daemon has.
  std::vector<int> fds;
  for (int i = 0; i < 400; ++i) {
    int fd = testing::ConnectLoopback(port);
    if (fd >= 0) fds.push_back(fd);
  }
  uint64_t before = CpuTicks(d.pid());
  std::this_thread::sleep_for(3s);
  double cpu_s = static_cast<double>(CpuTicks(d.pid()) - before) / static_cast<double>(sysconf(_SC_CLK_TCK));
  EXPECT_LT(cpu_s, 0.5) << "the accept loop spins";
  EXPECT_LE(Count(d.Log(), "accept failed"), 2u) << "accept errors are not rate-limited";

  for (int fd : fds) close(fd);
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while (testing::HttpGetStatus(port, "/healthz") != 200 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(testing::HttpGetStatus(port, "/healthz"), 200) << "the daemon does not serve again";
}

}  // namespace
}  // namespace ckptd

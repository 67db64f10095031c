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

#include "tests/systemd/daemon_process.h"
#include "tests/test_util.h"

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

int Connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

TEST(ServerTest, OutOfDescriptorsTheDaemonBacksOffAndRecovers) {
  testing::TempDir dir;
  uint16_t port = testing::FreePort();
  testing::DaemonProcess d({"--listen", "127.0.0.1:" + std::to_string(port), "--data-dir", dir.path(),
                            "--criu-path", "/nonexistent/criu"},
                           {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, dir.Sub("ckptd.log"), false, 256);
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (testing::HttpGetStatus(port, "/healthz") != 200 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  ASSERT_EQ(testing::HttpGetStatus(port, "/healthz"), 200) << d.Log();
  EXPECT_NE(d.Log().find("max_connections 1024 lowered to"), std::string::npos) << d.Log();

  // Idle connections beyond the descriptors the daemon has.
  std::vector<int> fds;
  for (int i = 0; i < 400; ++i) {
    int fd = Connect(port);
    if (fd >= 0) fds.push_back(fd);
  }
  uint64_t before = CpuTicks(d.pid());
  std::this_thread::sleep_for(3s);
  double cpu_s = static_cast<double>(CpuTicks(d.pid()) - before) / static_cast<double>(sysconf(_SC_CLK_TCK));
  EXPECT_LT(cpu_s, 0.5) << "the accept loop spins";
  EXPECT_LE(Count(d.Log(), "accept failed"), 2u) << "accept errors are not rate-limited";

  for (int fd : fds) close(fd);
  deadline = std::chrono::steady_clock::now() + 15s;
  while (testing::HttpGetStatus(port, "/healthz") != 200 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(testing::HttpGetStatus(port, "/healthz"), 200) << "the daemon does not serve again";
}

}  // namespace
}  // namespace ckptd

// An in-process daemon on an ephemeral loopback port, for API tests.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "api/client.h"
#include "daemon/daemon.h"
#include "tests/test_util.h"

namespace ckptd::testing {

// Sends raw bytes on a fresh connection and returns what the server answers
// until it closes or `wait` passes without a byte. With `stop_sending_at`
// the request is sent only up to there (a header without its body).
inline std::string RawExchange(uint16_t port, const std::string& request,
                               std::chrono::seconds wait = std::chrono::seconds(5)) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "";
  }
  timeval tv{static_cast<time_t>(wait.count()), 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  size_t off = 0;
  while (off < request.size()) {
    ssize_t n = send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer and stop reading early
    off += static_cast<size_t>(n);
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

inline Config TestConfig(const std::string& data_dir) {
  Config c;
  c.listen = "127.0.0.1:0";
  c.data_dir = data_dir;
  c.log_level = "warn";
  return c;
}

class DaemonFixture : public ::testing::Test {
 protected:
  void SetUp() override { StartDaemon(); }
  void TearDown() override { daemon_.reset(); }

  void StartDaemon() {
    daemon_ = std::make_unique<Daemon>(TestConfig(dir_.path()));
    auto st = daemon_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  void RestartDaemon() {
    daemon_.reset();
    StartDaemon();
  }
  std::string BaseUrl() const { return "http://127.0.0.1:" + std::to_string(daemon_->port()); }
  std::unique_ptr<api::HttpClient> Client(std::string token) const {
    auto c = api::HttpClient::Create(BaseUrl(), std::move(token));
    EXPECT_TRUE(c.ok());
    return std::move(c).value();
  }
  std::unique_ptr<api::HttpClient> Client() const { return Client(daemon_->token()); }

  TempDir dir_;
  std::unique_ptr<Daemon> daemon_;
};

}  // namespace ckptd::testing

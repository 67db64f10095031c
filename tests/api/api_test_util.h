// An in-process daemon on an ephemeral loopback port, for API tests.
#pragma once

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "api/client.h"
#include "daemon/daemon.h"
#include "tests/test_util.h"

namespace ckptd::testing {

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

// The daemon in-process, on an ephemeral loopback port, spoken to over real
// HTTP: InProcessDaemon (a daemon and a client with its token, any number
// per test) and DaemonFixture (a gtest fixture with one of them on a
// temporary data directory). Also raw HTTP exchanges and the test config.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "api/client.h"
#include "daemon/config.h"
#include "daemon/daemon.h"
#include "tests/testing/test_util.h"

namespace ckptd::testing {

// Sends raw bytes on a fresh connection and returns what the server answers
// until it closes or `wait` passes without a byte ("" when it cannot
// connect). The server may answer and stop reading before all is sent.
std::string RawExchange(uint16_t port, const std::string& request, std::chrono::seconds wait = std::chrono::seconds(5));

// Loopback on port 0, `data_dir`, log level warn; the rest defaults.
Config TestConfig(const std::string& data_dir);

// One in-process Daemon and an HTTP client with its token (5 min timeout).
// Requests EXPECT to get an answer; a failed one yields status 0.
class InProcessDaemon {
 public:
  struct Reply {
    int status = 0;
    boost::json::value body;  // the parsed body, or the raw text if it is not JSON
  };

  InProcessDaemon() = default;
  ~InProcessDaemon() { Stop(); }
  InProcessDaemon(const InProcessDaemon&) = delete;
  InProcessDaemon& operator=(const InProcessDaemon&) = delete;

  // Starts `config`; on failure adds a test failure and returns false.
  bool Start(Config config);
  // The client, then the daemon (Daemon's destructor stops it).
  void Stop();
  bool started() const { return client_ != nullptr; }
  std::string BaseUrl() const;

  Reply Send(const std::string& method, const std::string& target, const std::string& body = "");
  Reply Post(const std::string& target, const boost::json::object& body);
  // A job with wait=true; returns the finished job (expects 200).
  boost::json::object Checkpoint(pid_t pid, boost::json::object extra = {});
  boost::json::object Restore(const std::string& checkpoint_id, boost::json::object extra = {});
  // GET /v2/checkpoints/<id> (expects 200).
  boost::json::object GetCheckpoint(const std::string& id);
  // The string member `k` of a JSON object ("" when absent or not a
  // string, or when `v` is not an object).
  static std::string Str(const boost::json::object& o, const char* k);
  static std::string Str(const boost::json::value& v, const char* k);

  // Public so that fixtures and tests reach the daemon's parts directly.
  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<api::HttpClient> client_;

 private:
  boost::json::object WaitedJob(const std::string& route, boost::json::object body);
};

// A fixture with an in-process daemon on dir_. By default SetUp starts it
// with MakeConfig(); with When::kByTest the derived fixture or the test
// calls StartDaemon() (after its own checks, e.g. for root).
class DaemonFixture : public ::testing::Test, public InProcessDaemon {
 protected:
  enum class When { kSetUp, kByTest };
  explicit DaemonFixture(When start = When::kSetUp, const std::string& tag = "ckptd-test") : start_(start), dir_(tag) {}

  void SetUp() override {
    if (start_ == When::kSetUp) StartDaemon();
  }
  void TearDown() override { Stop(); }

  // The config StartDaemon uses: TestConfig(dir_) unless overridden.
  virtual Config MakeConfig() { return TestConfig(dir_.path()); }
  void StartDaemon() { ASSERT_TRUE(Start(MakeConfig())); }
  void RestartDaemon() {
    Stop();
    StartDaemon();
  }
  // New clients with another token (default timeout), or the daemon's.
  std::unique_ptr<api::HttpClient> Client(std::string token) const;
  std::unique_ptr<api::HttpClient> Client() const { return Client(daemon_->token()); }

  const When start_;
  TempDir dir_;
};

}  // namespace ckptd::testing

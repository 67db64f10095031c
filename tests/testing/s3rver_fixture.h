// A real s3rver (behind the SigV4-checking front s3rver_sigv4.js) on an
// ephemeral loopback port with a temporary data directory, for tests.
// Found at $CKPTD_S3RVER or /opt/ckptd/s3rver/node_modules/.bin/s3rver;
// Start() fails with a message pointing at scripts/setup.sh when absent.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/status.h"
#include "store/s3_config.h"
#include "tests/testing/test_util.h"

namespace ckptd::testing {

class S3rverProcess {
 public:
  static constexpr const char* kBucket = "ckptd-test";
  static constexpr const char* kAccessKey = "CKPTDTESTKEY";
  static constexpr const char* kSecretKey = "ckptd-test-secret/with+chars";

  // extra_env: "NAME=value" entries (fault injection).
  explicit S3rverProcess(std::vector<std::string> extra_env = {});
  ~S3rverProcess();  // kills the server; root_ removes its directory

  Status Start();  // port 0 the first time, the same port after Stop()
  void Stop();     // SIGKILL + reap: a crash, as far as clients can tell
  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& log_file() const { return log_file_; }
  std::string ReadLog() const;
  // Upload ids s3rver still holds for the bucket (incomplete uploads).
  std::vector<std::string> PendingUploads() const;

  // A config for this server; prefix "" unless given.
  S3Config Config(std::string prefix = "") const;

 private:
  std::vector<std::string> extra_env_;
  TempDir root_{"ckptd-s3rver"};
  std::string data_dir_, log_file_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// Path of the s3rver binary, or a non-OK status explaining how to install it.
Result<std::string> FindS3rver();

}  // namespace ckptd::testing

#include "tests/testing/s3rver_fixture.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace ckptd::testing {
namespace fs = std::filesystem;

Result<std::string> FindS3rver() {
  const char* env = std::getenv("CKPTD_S3RVER");
  std::string bin = env && *env ? env : "/opt/ckptd/s3rver/node_modules/.bin/s3rver";
  std::error_code ec;
  if (!fs::exists(bin, ec))
    return NotFound("s3rver not found at " + bin +
                    " (set CKPTD_S3RVER, or run scripts/setup.sh, which runs scripts/install-s3rver.sh)");
  return bin;
}

S3rverProcess::S3rverProcess(std::vector<std::string> extra_env) : extra_env_(std::move(extra_env)) {
  data_dir_ = root_.Sub("data").string();
  log_file_ = root_.File("requests.log");
}

S3rverProcess::~S3rverProcess() { Stop(); }

Status S3rverProcess::Start() {
  if (pid_ > 0) return Status::Ok();
  CKPTD_ASSIGN_OR_RETURN(std::string bin, FindS3rver());
  // .bin/s3rver -> ../s3rver/bin/s3rver.js: the package is two levels up.
  std::error_code ec;
  fs::path module_dir = fs::canonical(bin, ec).parent_path().parent_path();
  if (ec) return IOError("resolve " + bin + ": " + ec.message());
  std::string front = std::string(CKPTD_SOURCE_DIR) + "/tests/testing/s3rver_sigv4.js";

  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
  // s3rver encrypts ListObjectsV2 continuation tokens with DES, which
  // OpenSSL 3 only has in its legacy provider.
  std::vector<std::string> args = {"node",     "--openssl-legacy-provider",
                                   front,      module_dir.string(),
                                   data_dir_,  std::to_string(port_),
                                   kBucket,    kAccessKey,
                                   kSecretKey, log_file_};
  // Everything the child needs is built before fork: the child of a
  // threaded process must not allocate (another thread may have held the
  // allocator's lock at fork, and the child would hang before exec).
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  auto overridden = [&](std::string_view var) {
    std::string_view name = var.substr(0, var.find('='));
    for (const std::string& e : extra_env_)
      if (std::string_view(e).substr(0, e.find('=')) == name) return true;
    return false;
  };
  for (char** e = environ; *e; ++e)
    if (!overridden(*e)) env_strings.emplace_back(*e);
  for (const std::string& e : extra_env_) env_strings.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("fork", errno);
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    ::execvpe("node", argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(out[1]);
  pid_ = pid;
  // Wait for "listening on 127.0.0.1:<port>".
  std::string text;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (::poll(&p, 1, 200) > 0) {
      char buf[512];
      ssize_t n = ::read(out[0], buf, sizeof(buf));
      if (n <= 0) break;
      text.append(buf, static_cast<size_t>(n));
      size_t pos = text.find("listening on 127.0.0.1:");
      if (pos != std::string::npos && text.find('\n', pos) != std::string::npos) {
        port_ = std::atoi(text.c_str() + pos + 23);
        ::close(out[0]);  // node ignores EPIPE on stdout after this
        return Status::Ok();
      }
    }
  }
  ::close(out[0]);
  Stop();
  return Unavailable("s3rver did not start: " + text);
}

void S3rverProcess::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string S3rverProcess::ReadLog() const {
  std::ifstream in(log_file_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> S3rverProcess::PendingUploads() const {
  std::vector<std::string> out;
  std::error_code ec;
  fs::path dir = fs::path(data_dir_) / kBucket / "._S3rver_uploads";
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    out.push_back(it->path().filename().string());
  return out;
}

S3Config S3rverProcess::Config(std::string prefix) const {
  S3Config c;
  c.endpoint = endpoint();
  c.region = "us-east-1";
  c.bucket = kBucket;
  c.prefix = std::move(prefix);
  c.access_key = kAccessKey;
  c.secret_key = kSecretKey;
  c.path_style = true;
  c.retry_base_ms = 20;
  c.retry_max_ms = 200;
  c.max_retries = 3;
  c.io_timeout_ms = 20000;
  return c;
}

}  // namespace ckptd::testing

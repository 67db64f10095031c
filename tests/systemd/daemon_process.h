// Test helpers for running the real ckptd binary as a child process: a
// clean environment (only what the test passes), stderr captured to a file,
// an sd_notify socket the test owns, and tiny blocking HTTP/port helpers.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace ckptd::testing {

inline std::string CkptdBinary() { return std::string(CKPTD_BINARY_DIR) + "/ckptd"; }

inline std::string ReadFileText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteFileText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

// A port that was free a moment ago on 127.0.0.1.
inline uint16_t FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// One HTTP/1.1 GET on a fresh connection, no retries; the status code, or
// -1 when the connection or the exchange failed.
inline int HttpGetStatus(uint16_t port, const std::string& target) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return -1;
  }
  char buf[64] = {};
  ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
  close(fd);
  int code = -1;
  if (n > 12 && std::sscanf(buf, "HTTP/1.1 %d", &code) == 1) return code;
  return -1;
}

// The service manager's end of sd_notify: a unix datagram socket.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    ok_ = fd_ >= 0 && path.size() < sizeof a.sun_path &&
          bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~NotifySocket() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return ok_; }
  const std::string& path() const { return path_; }

  // The next datagram, or nullopt after `timeout`. Every message received is
  // also kept in log().
  std::optional<std::string> Next(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
    char buf[4096];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    log_.emplace_back(buf, static_cast<size_t>(n));
    return log_.back();
  }
  // Waits for a message containing `needle` (a whole "KEY=value" line).
  std::optional<std::string> WaitFor(const std::string& needle, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      auto m = Next(left);
      if (!m) return std::nullopt;
      if (HasLine(*m, needle)) return m;
    }
  }
  static bool HasLine(const std::string& msg, const std::string& line) {
    std::istringstream in(msg);
    for (std::string l; std::getline(in, l);)
      if (l == line) return true;
    return false;
  }
  const std::vector<std::string>& log() const { return log_; }

 private:
  std::string path_;
  int fd_ = -1;
  bool ok_ = false;
  std::vector<std::string> log_;
};

// The real ckptd, started with exactly `env` (plus WATCHDOG_PID=<its own
// pid> when `watchdog_pid` is set: the daemon only pings when WATCHDOG_PID
// names it, so it is filled in after fork) and stdout+stderr to `log_path`.
class DaemonProcess {
 public:
  // `nofile`, when given, is the child's RLIMIT_NOFILE (soft and hard).
  DaemonProcess(std::vector<std::string> args, std::vector<std::string> env, std::string log_path,
                bool watchdog_pid = false, std::optional<rlim_t> nofile = std::nullopt)
      : log_path_(std::move(log_path)) {
    std::string bin = CkptdBinary();
    std::vector<std::string> argv_s = {bin};
    for (auto& a : args) argv_s.push_back(a);
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    // Room for WATCHDOG_PID, formatted in the child without allocating.
    char pid_var[64] = "WATCHDOG_PID=";
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    if (watchdog_pid) envp.push_back(pid_var);
    envp.push_back(nullptr);
    int out = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pid_ = fork();
    if (pid_ == 0) {
      if (watchdog_pid) {
        char digits[24];
        int n = 0;
        for (pid_t p = getpid(); p > 0; p /= 10) digits[n++] = static_cast<char>('0' + p % 10);
        char* w = pid_var + std::strlen("WATCHDOG_PID=");
        while (n > 0) *w++ = digits[--n];
        *w = '\0';
      }
      dup2(out, 1);
      dup2(out, 2);
      if (nofile) {
        rlimit rl{*nofile, *nofile};
        setrlimit(RLIMIT_NOFILE, &rl);
      }
      execve(bin.c_str(), argv.data(), envp.data());
      _exit(127);
    }
    close(out);
  }
  ~DaemonProcess() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  void Signal(int sig) { kill(pid_, sig); }
  // The exit status (WEXITSTATUS, or 128+signal), or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int st = 0;
      pid_t r = waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::nullopt;
  }
  std::string Log() const { return ReadFileText(log_path_); }
  // Polls the log until it contains `needle`.
  bool WaitForLog(const std::string& needle, std::chrono::milliseconds timeout) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Log().find(needle) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return Log().find(needle) != std::string::npos;
  }

 private:
  std::string log_path_;
  pid_t pid_ = -1;
  bool exited_ = false;
};

// Runs `command` with /bin/sh; stdout+stderr and the exit status.
struct CommandResult {
  int status = -1;
  std::string output;
};
inline CommandResult RunCommand(const std::string& command) {
  CommandResult r;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace ckptd::testing

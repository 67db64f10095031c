#include "tests/testing/daemon_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <thread>

#include "common/proc.h"
#include "tests/testing/test_util.h"

namespace ckptd::testing {

std::string CkptdBinary() { return std::string(CKPTD_BINARY_DIR) + "/ckptd"; }

int HttpGetStatus(uint16_t port, const std::string& target) {
  int fd = ConnectLoopback(port);
  if (fd < 0) return -1;
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
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

NotifySocket::NotifySocket(const std::string& path) : path_(path) {
  fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  ok_ = fd_ >= 0 && path.size() < sizeof a.sun_path && bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

NotifySocket::~NotifySocket() {
  if (fd_ >= 0) close(fd_);
}

std::optional<std::string> NotifySocket::Next(std::chrono::milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
  char buf[4096];
  ssize_t n = recv(fd_, buf, sizeof buf, 0);
  if (n < 0) return std::nullopt;
  log_.emplace_back(buf, static_cast<size_t>(n));
  return log_.back();
}

std::optional<std::string> NotifySocket::WaitFor(const std::string& needle, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto m = Next(left);
    if (!m) return std::nullopt;
    if (HasLine(*m, needle)) return m;
  }
}

bool NotifySocket::HasLine(const std::string& msg, const std::string& line) {
  std::istringstream in(msg);
  for (std::string l; std::getline(in, l);)
    if (l == line) return true;
  return false;
}

DaemonProcess::DaemonProcess(std::vector<std::string> args, std::vector<std::string> env, std::string log_path,
                             bool watchdog_pid, std::optional<rlim_t> nofile)
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

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0 && !exited_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void DaemonProcess::Signal(int sig) { kill(pid_, sig); }

std::optional<int> DaemonProcess::Wait(std::chrono::milliseconds timeout) {
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

std::string DaemonProcess::Log() const { return ReadFileText(log_path_); }

bool DaemonProcess::WaitForLog(const std::string& needle, std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Log().find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Log().find(needle) != std::string::npos;
}

double DaemonChild::Start(const std::string& data_dir, const Options& o) {
  client_.reset();
  process_.reset();
  port_ = FreePort();
  std::vector<std::string> all = {"--listen", "127.0.0.1:" + std::to_string(port_), "--data-dir", data_dir};
  all.insert(all.end(), o.args.begin(), o.args.end());
  auto t0 = std::chrono::steady_clock::now();
  process_ = std::make_unique<DaemonProcess>(all, o.env, o.log, false, o.nofile);
  for (;;) {
    if (HttpGetStatus(port_, "/healthz") == 200) break;
    char st = ProcState(process_->pid());
    if (st == 0 || st == 'Z' || std::chrono::steady_clock::now() - t0 > o.timeout) {
      process_->Wait(std::chrono::seconds(1));
      return -1;
    }
    if (o.poll) o.poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::string token = o.token;
  if (token.empty()) {
    token = ReadFileText(data_dir + "/token");
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  }
  auto c = api::HttpClient::Create("http://127.0.0.1:" + std::to_string(port_), token, o.client_timeout);
  if (!c.ok()) return -1;
  client_ = std::move(c.value());
  return ms;
}

boost::json::value DaemonChild::Call(const std::string& method, const std::string& target,
                                     const boost::json::object& body, int* status) {
  if (status) *status = 0;
  if (!client_) return nullptr;
  auto r = client_->Send(method, target, body.empty() ? "" : boost::json::serialize(body));
  if (!r.ok()) return nullptr;
  if (status) *status = r->status;
  boost::json::error_code ec;
  boost::json::value v = boost::json::parse(r->body, ec);
  return ec ? boost::json::value(r->body) : v;
}

}  // namespace ckptd::testing

// The real ckptd binary as a child process: started with exactly the
// environment the test gives, stdout+stderr to a file, an sd_notify socket
// the test owns (NotifySocket), and DaemonChild, which starts it on a free
// loopback port, waits until it serves and speaks HTTP to it with its token.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "api/client.h"

namespace ckptd::testing {

// The built ckptd.
std::string CkptdBinary();

// One HTTP/1.1 GET on a fresh connection, no retries; the status code, or
// -1 when the connection or the exchange failed.
int HttpGetStatus(uint16_t port, const std::string& target);

// The service manager's end of sd_notify: a unix datagram socket.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path);
  ~NotifySocket();
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;
  bool ok() const { return ok_; }
  const std::string& path() const { return path_; }

  // The next datagram, or nullopt after `timeout`. Every message received is
  // also kept in log().
  std::optional<std::string> Next(std::chrono::milliseconds timeout);
  // Waits for a message containing `needle` (a whole "KEY=value" line).
  std::optional<std::string> WaitFor(const std::string& needle, std::chrono::milliseconds timeout);
  static bool HasLine(const std::string& msg, const std::string& line);
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
// SIGKILLed and reaped on destruction unless Wait() saw it end.
class DaemonProcess {
 public:
  // `nofile`, when given, is the child's RLIMIT_NOFILE (soft and hard).
  DaemonProcess(std::vector<std::string> args, std::vector<std::string> env, std::string log_path,
                bool watchdog_pid = false, std::optional<rlim_t> nofile = std::nullopt);
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;
  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // The exit status (WEXITSTATUS, or 128+signal), or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  std::string Log() const;
  // Polls the log until it contains `needle`.
  bool WaitForLog(const std::string& needle, std::chrono::milliseconds timeout) const;

 private:
  std::string log_path_;
  pid_t pid_ = -1;
  bool exited_ = false;
};

// The real ckptd on `--listen 127.0.0.1:<a free port> --data-dir <dir>`,
// spoken to over HTTP: for the tests and benches that signal it, kill it
// and start it again on the same data (crash points, SIGTERM, reload, the
// descriptor limit, the random-kill soak).
class DaemonChild {
 public:
  struct Options {
    std::vector<std::string> args;  // after --listen and --data-dir
    // The whole environment of the daemon.
    std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    std::string log;               // stdout+stderr; required
    std::optional<rlim_t> nofile;  // RLIMIT_NOFILE of the child
    std::string token;             // "" reads <data dir>/token
    std::chrono::milliseconds timeout = std::chrono::seconds(120);
    std::function<void()> poll;  // called between /healthz tries
    std::chrono::milliseconds client_timeout = std::chrono::minutes(10);
  };

  // Starts the daemon and waits for /healthz. Returns the ms from the start
  // until /healthz answered 200, or -1 when the daemon ended or did not
  // answer within o.timeout (or no client could be made).
  double Start(const std::string& data_dir, const Options& o);
  // The answer's JSON (its text when it is not JSON; null when the request
  // failed); *status is the HTTP status, or 0 when the request failed.
  boost::json::value Call(const std::string& method, const std::string& target, const boost::json::object& body = {},
                          int* status = nullptr);
  // Null before Start.
  DaemonProcess* process() { return process_.get(); }
  // Null before a successful Start and after DropClient.
  api::HttpClient* client() { return client_.get(); }
  bool has_client() const { return client_ != nullptr; }
  void DropClient() { client_.reset(); }
  uint16_t port() const { return port_; }

 private:
  std::unique_ptr<DaemonProcess> process_;
  std::unique_ptr<api::HttpClient> client_;
  uint16_t port_ = 0;
};

}  // namespace ckptd::testing

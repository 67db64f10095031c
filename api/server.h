// The HTTP/1.1 server: Boost.Beast over Asio, a few I/O threads (each runs
// its own event loop, and a connection stays on the one it was accepted
// onto: no hand-offs between I/O threads), handlers run on a separate
// bounded pool so a slow handler never stalls the I/O
// (a try_inline route is first tried on its I/O thread, where nothing may
// wait: router.h).
//
// Limits: headers (header_limit), bodies (per route, Route::body_limit();
// a larger body is answered 413 and the connection closed after draining a
// bounded amount), time to receive a request (read_timeout), idle keep-alive
// (idle_timeout), concurrent connections (max_connections; above it new
// connections are answered 503 and closed). All of them may change while
// serving (SetLimits(), Router::SetBodyLimit(); SIGHUP): the connection
// limit applies to connections accepted afterwards; a connection waiting for
// a request's header reads it under the header limit and idle timeout in
// effect when it began waiting; once the header is in, the request takes the
// route's body limit and the read timeout in effect then, until answered.
// Lifecycle: Start() binds and begins accepting; Stop() stops accepting,
// lets in-flight requests finish until `drain` passes, then closes every
// connection and joins the threads. Not copyable; Start/Stop from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "api/auth.h"
#include "api/router.h"
#include "common/metrics.h"
#include "common/status.h"

namespace ckptd::api {

// The limits HttpServer::SetLimits() can change at run time.
struct ServerLimits {
  size_t header_limit = 16 * 1024;
  std::chrono::seconds read_timeout{30};
  std::chrono::seconds idle_timeout{60};
  size_t max_connections = 1024;
};

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8080;  // 0: an ephemeral port, see HttpServer::port()
  int io_threads = 2;  // at least 1
  int handler_threads = 8;
  ServerLimits limits;  // the initial ones
  // An already bound and listening socket to accept on (systemd socket
  // activation); -1 to bind address:port.
  int listen_fd = -1;
  // When set (not owned; they outlive the server): requests of try_inline
  // routes answered on the I/O thread, and those handed to the pool after
  // the try would have blocked.
  Counter* inline_answered = nullptr;
  Counter* inline_pooled = nullptr;
};

// Called after each response: method, route pattern (or "" when unrouted),
// status, seconds spent.
using RequestObserver =
    std::function<void(const std::string& method, const std::string& route, int status, double seconds)>;

class HttpServer {
 public:
  HttpServer(ServerOptions options, const Router* router, const Authenticator* auth, RequestObserver observer = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  Status Start();
  void Stop(std::chrono::milliseconds drain = std::chrono::seconds(10));
  uint16_t port() const;
  // Replaces the limits (any time, from any thread). New connections and
  // requests that begin afterwards use them; connections above the new
  // max_connections are not closed, new ones are refused until below it.
  void SetLimits(const ServerLimits& limits);
  ServerLimits limits() const;
  // True when the I/O threads run a task posted to them within `timeout`:
  // the watchdog's proof that the event loop is not stuck.
  bool Responsive(std::chrono::milliseconds timeout) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ckptd::api

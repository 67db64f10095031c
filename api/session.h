// Internal to api/: one HTTP connection. Reads a request (header first, so
// the route's body limit applies before the body is read), runs the handler
// on the handler pool, writes the response, and loops while keep-alive.
#pragma once

#include <atomic>
#include <memory>
#include <optional>

#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "api/server.h"
#include "common/mutex.h"

namespace ckptd::api {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// What every session shares; owned by HttpServer::Impl.
struct ServerShared {
  ServerOptions options;  // options.limits: as started; see Limits()
  const Router* router;
  const Authenticator* auth;
  RequestObserver observer;
  net::thread_pool* handler_pool;
  // The limits in effect (HttpServer::SetLimits); a consistent copy.
  ServerLimits Limits() const {
    MutexLock lock(limits_mu);
    return limits;
  }
  void SetLimits(const ServerLimits& l) {
    MutexLock lock(limits_mu);
    limits = l;
  }
  mutable Mutex limits_mu;
  ServerLimits limits GUARDED_BY(limits_mu);
  std::atomic<size_t> connections{0};
  std::atomic<size_t> active_requests{0};
  std::atomic<bool> stopping{false};
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ServerShared* shared);
  ~Session();
  void Start();
  // Answers 503 and closes: used when over max_connections.
  void RejectBusy();

 private:
  void ReadHeader();
  void OnHeader(beast::error_code ec);
  void ReadBody();
  void OnBody(beast::error_code ec);
  void Dispatch();
  Response Handle(const Request& req);
  // A try_inline route's answer from this (I/O) thread, or nullopt when
  // something would have blocked and the pool must run it.
  std::optional<Response> TryInline(const Request& req);
  // Writes `res`, or waits for a deferred response's producer first.
  void Respond(Response res);
  void Write(Response res);
  void WriteStream(Response res);
  void NextChunk(std::shared_ptr<Response> res);
  void AfterWrite(bool keep_alive);
  // Writes an error response, then drains what the client still sends (up
  // to a bound) so it can read the answer, then closes.
  void FailAndClose(int status, std::string message, std::vector<std::pair<std::string, std::string>> headers = {});
  void Drain();
  void Close();
  void FinishRequest(int status);

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::unique_ptr<http::request_parser<http::string_body>> parser_;
  ServerShared* shared_;
  // Taken at accept, when the connection starts waiting for a request's
  // header (header limit, idle timeout), and again once that header is in
  // (read timeout for the body and the response); a reload never changes a
  // request's body limit or timeouts midway.
  ServerLimits limits_;
  uint64_t body_limit_ = 0;  // the matched route's, once the header is in
  Router::Match match_;
  std::string path_;
  std::string method_;
  std::string remote_;  // the peer's address, "" when unknown
  unsigned version_ = 11;
  bool keep_alive_ = false;
  std::chrono::steady_clock::time_point started_;
  bool in_request_ = false;
  std::array<char, 65536> drain_buf_{};
  size_t drained_ = 0;
  size_t drain_limit_ = 0;
  uint64_t requests_ = 0;  // requests whose header was read on this connection
};

}  // namespace ckptd::api

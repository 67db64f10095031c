// Fuzz target (a): bytes as they arrive on an API connection.
//
// The input is what a client sends on one connection. The target runs the
// daemon's real HTTP server (api::HttpServer: Beast, the session with its
// limits, the token check on the header, the router) on loopback with the
// real Cedana, agent-state and meta handlers over a Catalog and AgentStore
// on RocksDB in tmpfs. Each input opens a connection, sends its bytes, shuts
// the sending side and reads until the server closes.
//
// Harness addition: the id 00000000-0000-4000-8000-000000000000 in the input
// is replaced by the id of a checkpoint created for this input (same length),
// so that request sequences reach the lifecycle transitions.
//
// Findings (besides ASan/UBSan): the server does not close within
// kCloseTimeout after the client's EOF; an answer that does not parse as an
// HTTP/1.1 response; an answer of 500 or above other than 501 (a client's
// bytes must never get that far; the handlers' exceptions come out as 500).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "api/agent_handlers.h"
#include "api/auth.h"
#include "api/cedana_handlers.h"
#include "api/meta_handlers.h"
#include "api/router.h"
#include "api/server.h"
#include "daemon/config.h"
#include "fuzz/fuzz_util.h"

namespace ckptd::fuzz {
namespace {

namespace http = boost::beast::http;

// The token a fuzzed request must present (also in the dictionary).
constexpr const char* kToken = "fuzz-token-0123456789";
// Replaced by this input's checkpoint id (same length as a UUID).
constexpr std::string_view kIdPlaceholder = "00000000-0000-4000-8000-000000000000";
// After the client's EOF the server must answer and close within this.
constexpr auto kCloseTimeout = std::chrono::seconds(10);

struct World {
  Stores stores;
  std::unique_ptr<api::Router> router;
  api::Authenticator auth{kToken};
  std::unique_ptr<api::HttpServer> server;

  World() { Build(); }
  void Build() {
    if (server) server->Stop(std::chrono::milliseconds(0));
    server.reset();
    router = std::make_unique<api::Router>();
    api::RegisterMetaRoutes(router.get(), [] { return boost::json::value{{"status", "ok"}}; });
    api::RegisterCedanaRoutes(router.get(), stores.catalog());
    api::RegisterAgentRoutes(router.get(), stores.agents(), static_cast<size_t>(Config{}.max_body_bytes));
    api::ServerOptions opts;  // the daemon's limits
    opts.port = 0;
    opts.io_threads = 1;
    opts.handler_threads = 2;
    server = std::make_unique<api::HttpServer>(opts, router.get(), &auth);
    if (Status st = server->Start(); !st.ok()) Fail("cannot start the server", st.ToString());
  }
};

World& TheWorld() {
  static World* w = new World();
  return *w;
}

int Connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Fail("socket", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) Fail("connect", std::strerror(errno));
  return fd;
}

// Sends `in` while reading what comes back (the server may answer and close
// before it has read everything: a 401 or 413 does), then shuts the sending
// side and reads to EOF. Returns what the server wrote; *reset tells that
// the connection ended in a reset (the server closed with our bytes unread),
// which may cut the last answer short.
std::string Exchange(int fd, std::string_view in, bool* reset) {
  std::string out;
  size_t sent = 0;
  bool shut = false;
  const auto deadline = std::chrono::steady_clock::now() + kCloseTimeout;
  for (;;) {
    if (sent == in.size() && !shut) {
      ::shutdown(fd, SHUT_WR);
      shut = true;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (shut ? 0 : POLLOUT)), 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) Fail("the server did not close the connection after the client's EOF", out);
    if (::poll(&p, 1, static_cast<int>(left.count())) < 0) {
      if (errno == EINTR) continue;  // libFuzzer's timer
      Fail("poll", std::strerror(errno));
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[65536];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      *reset = n < 0;
      if (n <= 0) return out;
      out.append(buf, static_cast<size_t>(n));
    } else if (!shut && (p.revents & POLLOUT)) {
      ssize_t n = ::send(fd, in.data() + sent, in.size() - sent, MSG_NOSIGNAL);
      if (n < 0) {
        sent = in.size();  // the server closed its side; read what it said
      } else {
        sent += static_cast<size_t>(n);
      }
    }
  }
}

// Every answer on the connection parses as HTTP/1.x and none is a 5xx.
void CheckAnswers(std::string_view out, std::string_view in, bool reset) {
  while (!out.empty()) {
    http::response_parser<http::string_body> p;
    p.body_limit(std::numeric_limits<std::uint64_t>::max());
    // A HEAD request's answer has no body; the parser cannot know which
    // request an answer belongs to, so HEAD inputs only check the header.
    bool head_only = in.find("HEAD ") != std::string_view::npos;
    p.skip(head_only);
    p.eager(true);
    boost::beast::error_code ec;
    size_t used = 0;
    while (!ec && !p.is_done() && used < out.size()) {
      size_t n = p.put(boost::asio::buffer(out.data() + used, out.size() - used), ec);
      if (n == 0 && !ec) break;
      used += n;
    }
    if (!ec && !p.is_done()) p.put_eof(ec);
    if ((ec == http::error::need_more || ec == http::error::partial_message) && (head_only || reset)) return;
    if (ec) Fail(fmt::format("the answer is not HTTP: {}", ec.message()), out);
    if (used == 0) Fail("the answer is not HTTP", out);
    unsigned status = p.get().result_int();
    // 501 is the designed answer to a transfer coding other than chunked.
    if (status >= 500 && status != 501) Fail(fmt::format("answered {}", status), out);
    out.remove_prefix(std::min(used, out.size()));
    if (head_only) return;
  }
}

void Replace(std::string* s, std::string_view from, const std::string& to) {
  for (size_t pos = s->find(from); pos != std::string::npos; pos = s->find(from, pos + to.size()))
    s->replace(pos, from.size(), to);
}

}  // namespace
}  // namespace ckptd::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ckptd::fuzz::QuietLogs();
  ckptd::fuzz::TheWorld();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ckptd::fuzz;
  auto& w = TheWorld();
  if (w.stores.Tick()) w.Build();
  std::string in(reinterpret_cast<const char*>(data), size);
  if (in.find(kIdPlaceholder) != std::string::npos) {
    auto seed = w.stores.catalog()->Create(std::string("seed"));
    if (!seed.ok()) Fail("cannot create this input's checkpoint", seed.status().ToString());
    Replace(&in, kIdPlaceholder, seed->id);
  }
  int fd = Connect(w.server->port());
  bool reset = false;
  std::string out = Exchange(fd, in, &reset);
  ::close(fd);
  CheckAnswers(out, in, reset);
  return 0;
}

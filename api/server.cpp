#include "api/server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "api/session.h"

namespace ckptd::api {

namespace {

// One io_context per I/O thread, run by that thread alone: a connection
// stays on the context it was accepted onto, so its handlers never pass
// between I/O threads. (Threads sharing one context woke each other for
// nearly every handler, which on the agent workload cost more CPU than the
// handlers.) Only the handler pool, the WAL syncer, Stop and Responsive
// post across.
std::vector<std::unique_ptr<net::io_context>> MakeContexts(int n) {
  std::vector<std::unique_ptr<net::io_context>> out;
  for (int i = 0; i < std::max(1, n); ++i) out.push_back(std::make_unique<net::io_context>(1));
  return out;
}

}  // namespace

// Member order matters for teardown: the handler pool is destroyed before
// the io_contexts, so queued handlers that still hold sessions release
// their sockets while the io_context that owns them is alive.
struct HttpServer::Impl {
  ServerShared shared;
  std::vector<std::unique_ptr<net::io_context>> iocs;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> keep_running;
  net::thread_pool pool;
  tcp::acceptor acceptor;  // and the accept loop: on iocs[0]
  size_t next_ioc = 0;     // the context of the next accepted connection
  std::vector<std::thread> threads;
  uint16_t port = 0;
  bool running = false;
  // Accept errors: reported at most every kLogEvery; a reserve descriptor
  // for shedding connections when none is left (ShedOne). Accept
  // completions run one at a time (there is one accept in flight), so
  // these need no lock.
  static constexpr auto kLogEvery = std::chrono::seconds(10);
  net::steady_timer backoff;
  int reserve_fd = -1;
  uint64_t accept_errors = 0, shed = 0;
  std::chrono::steady_clock::time_point last_accept_log{};

  Impl(ServerOptions options, const Router* router, const Authenticator* auth, RequestObserver observer)
      : iocs(MakeContexts(options.io_threads)),
        pool(static_cast<size_t>(std::max(1, options.handler_threads))),
        acceptor(*iocs[0]),
        backoff(*iocs[0]),
        reserve_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC)) {
    shared.options = std::move(options);
    shared.router = router;
    shared.auth = auth;
    shared.observer = std::move(observer);
    shared.handler_pool = &pool;
    shared.SetLimits(shared.options.limits);
  }

  ~Impl() {
    if (reserve_fd >= 0) ::close(reserve_fd);
  }

  // Out of descriptors (EMFILE/ENFILE): the pending connection cannot be
  // accepted, so the listening socket stays readable and accept would spin.
  // Free the reserve descriptor, accept that connection and close it at
  // once (the client sees the connection closed, not a hang), take the
  // reserve back, and pause accepting briefly.
  void ShedOne() {
    if (reserve_fd >= 0) ::close(reserve_fd);
    int fd = ::accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
      ::close(fd);
      ++shed;
    }
    reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }

  // One line per kLogEvery at most, counting what it leaves out.
  void LogAcceptError(const beast::error_code& ec) {
    auto now = std::chrono::steady_clock::now();
    ++accept_errors;
    if (now - last_accept_log < kLogEvery) return;
    spdlog::warn("accept failed: {} ({} accept errors, {} connections closed unanswered since the last report)",
                 ec.message(), accept_errors, shed);
    accept_errors = 0;
    shed = 0;
    last_accept_log = now;
  }

  void AcceptAfter(std::chrono::milliseconds delay) {
    backoff.expires_after(delay);
    backoff.async_wait([this](beast::error_code ec) {
      if (!ec && !shared.stopping) Accept();
    });
  }

  void Accept() {
    net::io_context& home = *iocs[next_ioc++ % iocs.size()];
    acceptor.async_accept(net::make_strand(home), [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        // Stop() closes the acceptor from another I/O thread: its aborted
        // accept is the end, not an error (is_open() would race the close).
        if (shared.stopping || ec == net::error::operation_aborted) return;
        LogAcceptError(ec);
        if (ec == net::error::no_descriptors || ec == std::errc::too_many_files_open_in_system) {
          ShedOne();
          return AcceptAfter(std::chrono::milliseconds(50));
        }
        return AcceptAfter(std::chrono::milliseconds(5));
      } else {
        auto session = std::make_shared<Session>(std::move(socket), &shared);
        if (shared.connections > shared.Limits().max_connections) {
          session->RejectBusy();
        } else {
          session->Start();
        }
      }
      Accept();
    });
  }
};

HttpServer::HttpServer(ServerOptions options, const Router* router, const Authenticator* auth, RequestObserver observer)
    : impl_(std::make_unique<Impl>(std::move(options), router, auth, std::move(observer))) {}

HttpServer::~HttpServer() { Stop(std::chrono::milliseconds(0)); }

Status HttpServer::Start() {
  auto& o = impl_->shared.options;
  beast::error_code ec;
  auto& acc = impl_->acceptor;
  if (o.listen_fd >= 0) {
    acc.assign(tcp::v6(), o.listen_fd, ec);
    if (ec) {
      ec.clear();
      acc.assign(tcp::v4(), o.listen_fd, ec);
    }
    if (ec) return IOError("cannot use the inherited listening socket: " + ec.message());
  } else {
    auto addr = net::ip::make_address(o.address, ec);
    if (ec) return InvalidArgument(fmt::format("bad listen address '{}': {}", o.address, ec.message()));
    tcp::endpoint ep(addr, o.port);
    acc.open(ep.protocol(), ec);
    if (!ec) acc.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acc.bind(ep, ec);
    if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return IOError(fmt::format("cannot listen on {}:{}: {}", o.address, o.port, ec.message()));
  }
  impl_->port = acc.local_endpoint(ec).port();
  impl_->Accept();
  for (auto& ioc : impl_->iocs) {
    impl_->keep_running.push_back(net::make_work_guard(*ioc));
    impl_->threads.emplace_back([ioc = ioc.get()] { ioc->run(); });
  }
  impl_->running = true;
  return Status::Ok();
}

void HttpServer::Stop(std::chrono::milliseconds drain) {
  if (!impl_->running) return;
  impl_->running = false;
  impl_->shared.stopping = true;
  net::post(*impl_->iocs[0], [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
  });
  auto deadline = std::chrono::steady_clock::now() + drain;
  while (impl_->shared.active_requests > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (impl_->shared.active_requests > 0) {
    spdlog::warn("stopping with {} request(s) still in flight", impl_->shared.active_requests.load());
  }
  for (auto& ioc : impl_->iocs) ioc->stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  impl_->keep_running.clear();
  impl_->pool.stop();
  impl_->pool.join();
}

uint16_t HttpServer::port() const { return impl_->port; }

void HttpServer::SetLimits(const ServerLimits& limits) { impl_->shared.SetLimits(limits); }

ServerLimits HttpServer::limits() const { return impl_->shared.Limits(); }

bool HttpServer::Responsive(std::chrono::milliseconds timeout) const {
  if (!impl_->running) return false;
  // Every I/O thread, each with its own context, must answer.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::future<void>> answers;
  for (auto& ioc : impl_->iocs) {
    auto ran = std::make_shared<std::promise<void>>();
    answers.push_back(ran->get_future());
    net::post(*ioc, [ran] { ran->set_value(); });
  }
  for (auto& done : answers) {
    if (done.wait_until(deadline) != std::future_status::ready) return false;
  }
  return true;
}

}  // namespace ckptd::api

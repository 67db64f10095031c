#include "api/session.h"

#include <cstdint>
#include <limits>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include "common/metrics.h"
#include "common/utf8.h"
#include "store/db.h"

namespace ckptd::api {

namespace {

bool TargetIsUtf8(const boost::urls::url_view& url) {
  if (!IsValidUtf8(url.path())) return false;
  for (auto p : url.params()) {
    if (!IsValidUtf8(p.key) || !IsValidUtf8(p.value)) return false;
  }
  return true;
}

constexpr size_t kUnroutedBodyLimit = 1 << 20;
constexpr size_t kMaxDrainBytes = 128u << 20;
// A refused request's body is not ours to read: only enough of it that the
// client, still sending, sees the answer rather than a reset.
constexpr size_t kMaxDrainUnauthenticated = 64u << 10;
constexpr auto kDrainTimeout = std::chrono::seconds(5);
// Beast reads as much as the buffer's free capacity holds (at least 512
// bytes, at most 64 KiB), and the parser takes what it reads out of the
// buffer: one that never grew read every body 512 bytes per system call,
// re-arming the read timer each time (24 reads for a 12 KiB batch). Room for
// the body, up to this, is made before it is read; it stays with the
// connection for its next requests.
constexpr size_t kBodyReadChunk = 64u << 10;

// Transfer codings other than chunked are refused (RFC 9112 6.1: a server
// that does not understand one answers 501; we never decode them).
bool OnlyChunked(std::string_view te) {
  while (!te.empty() && (te.back() == ' ' || te.back() == '\t')) te.remove_suffix(1);
  while (!te.empty() && (te.front() == ' ' || te.front() == '\t')) te.remove_prefix(1);
  return beast::iequals(te, "chunked");
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

Session::Session(tcp::socket socket, ServerShared* shared)
    : stream_(std::move(socket)), shared_(shared), limits_(shared->Limits()) {
  shared_->connections++;
  // Once per connection: a getpeername() per request showed in profiles.
  beast::error_code ec;
  auto ep = stream_.socket().remote_endpoint(ec);
  if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
}

Session::~Session() {
  FinishRequest(0);
  shared_->connections--;
}

void Session::Start() {
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadHeader(); });
}

void Session::RejectBusy() {
  net::dispatch(stream_.get_executor(),
                [self = shared_from_this()] { self->FailAndClose(503, "too many connections"); });
}

void Session::ReadHeader() {
  // A reload (SIGHUP) applies from the next request on, even on a
  // keep-alive connection accepted before it.
  limits_ = shared_->Limits();
  parser_ = std::make_unique<http::request_parser<http::string_body>>();
  parser_->header_limit(static_cast<std::uint32_t>(std::min<size_t>(limits_.header_limit, UINT32_MAX)));
  // No body is read with the header; the parser would still refuse a
  // Content-Length above this when the header completes. The route's own
  // limit, read in OnHeader, is the one that counts: this ceiling only
  // must not be lower, and a reload may raise route limits while this
  // connection waits for its next request, so it is not taken from them.
  body_limit_ = std::numeric_limits<std::uint64_t>::max();
  parser_->body_limit(body_limit_);
  // Between keep-alive requests a connection may idle; a request under way
  // (bytes buffered) and a connection's first request get the read timeout.
  stream_.expires_after(buffer_.size() || requests_ == 0 ? limits_.read_timeout : limits_.idle_timeout);
  http::async_read_header(stream_, buffer_, *parser_,
                          [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
}

void Session::OnHeader(beast::error_code ec) {
  if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::operation_aborted ||
      ec == beast::error::timeout) {
    return Close();
  }
  if (ec == http::error::header_limit) return FailAndClose(431, "request headers too large");
  if (ec == http::error::body_limit) {
    return FailAndClose(413, fmt::format("request body exceeds the {} byte limit", body_limit_));
  }
  if (ec) return FailAndClose(400, "malformed HTTP request: " + ec.message());

  // The header was read under the limits taken when this connection began
  // waiting for it; the rest of the request uses those in effect now.
  limits_ = shared_->Limits();
  in_request_ = true;
  shared_->active_requests++;
  started_ = std::chrono::steady_clock::now();
  const auto& req = parser_->get();
  auto url = boost::urls::parse_origin_form(std::string_view(req.target()));
  if (!url) return FailAndClose(400, "malformed request target");
  path_ = std::string(url->path());
  // Decoded, the target's path and query must be text: handlers echo them
  // in JSON answers.
  if (!TargetIsUtf8(*url)) return FailAndClose(400, "the request target is not UTF-8 once percent-decoded");
  method_ = std::string(req.method_string());
  version_ = req.version();
  match_ = shared_->router->Find(method_, path_);
  ++requests_;
  // Refused on the header alone: no body byte is read and nothing is
  // promised (no 100 Continue) to a request without the token.
  if (req.count(http::field::authorization) > 1) return FailAndClose(400, "more than one Authorization header");
  if (!match_.route || match_.route->options.auth) {
    auto auth = req.find(http::field::authorization);
    Status st =
        shared_->auth->Check(auth == req.end() ? std::nullopt : std::optional<std::string>(std::string(auth->value())));
    if (!st.ok()) return FailAndClose(401, st.message(), {{"WWW-Authenticate", "Bearer"}});
  }
  if (auto te = req.find(http::field::transfer_encoding); te != req.end() && !OnlyChunked(te->value()))
    return FailAndClose(
        501, fmt::format("Transfer-Encoding '{}' is not supported (only chunked)", std::string(te->value())));

  // Read once: a reload while the body arrives does not change this request.
  body_limit_ = match_.route ? match_.route->body_limit() : kUnroutedBodyLimit;
  if (auto len = parser_->content_length(); len && *len > body_limit_) {
    return FailAndClose(413, fmt::format("request body of {} bytes exceeds the {} byte limit", *len, body_limit_));
  }
  parser_->body_limit(body_limit_);
  if (beast::iequals(req[http::field::expect], "100-continue")) {
    auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, req.version());
    return http::async_write(stream_, *cont, [self = shared_from_this(), cont](beast::error_code wec, size_t) {
      if (wec) return self->Close();
      self->ReadBody();
    });
  }
  ReadBody();
}

void Session::ReadBody() {
  if (parser_->is_done()) return OnBody({});
  auto left = parser_->content_length_remaining();
  buffer_.reserve(buffer_.size() + std::min<uint64_t>(left.value_or(kBodyReadChunk), kBodyReadChunk));
  stream_.expires_after(limits_.read_timeout);
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, size_t) { self->OnBody(ec); });
}

void Session::OnBody(beast::error_code ec) {
  if (ec == http::error::body_limit) {
    return FailAndClose(413, fmt::format("request body exceeds the {} byte limit", body_limit_));
  }
  // A body the parser cannot read (a bad chunk size, say) is the client's
  // error and gets an answer; a timeout or a closed connection gets none.
  if (ec && ec.category() == http::make_error_code(http::error::bad_chunk).category() &&
      ec != http::error::partial_message && ec != http::error::end_of_stream)
    return FailAndClose(400, "malformed request body: " + ec.message());
  if (ec) return Close();
  Dispatch();
}

void Session::Dispatch() {
  auto msg = parser_->release();
  Request req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  req.path = path_;
  if (auto url = boost::urls::parse_origin_form(req.target)) {
    for (auto p : url->params()) req.query[std::string(p.key)] = std::string(p.value);
  }
  for (const auto& f : msg) req.headers[Lower(f.name_string())] = std::string(f.value());
  req.params = match_.params;
  req.body = std::move(msg.body());
  req.remote = remote_;
  keep_alive_ = msg.keep_alive();

  if (match_.route && match_.route->options.inline_handler) return Respond(Handle(req));
  if (match_.route && match_.route->options.try_inline && req.body.size() <= kTryInlineBodyLimit) {
    std::optional<Response> res = TryInline(req);
    if (res) return Respond(std::move(*res));
  }
  net::post(*shared_->handler_pool, [self = shared_from_this(), req = std::move(req)]() mutable {
    Response res = self->Handle(req);
    net::post(self->stream_.get_executor(), [self, res = std::move(res)]() mutable { self->Respond(std::move(res)); });
  });
}

void Session::Respond(Response res) {
  if (!res.deferred) return Write(std::move(res));
  // No thread waits for the answer; the connection does (a slot of
  // max_connections), with no timer running until the answer comes.
  stream_.expires_never();
  auto deferred = std::move(res.deferred);
  deferred([self = shared_from_this()](Response later) {
    net::post(self->stream_.get_executor(), [self, later = std::move(later)]() mutable {
      later.deferred = nullptr;
      self->Write(std::move(later));
    });
  });
}

std::optional<Response> Session::TryInline(const Request& req) {
  const ServerOptions& o = shared_->options;
  NonBlockingScope scope;
  Response res = Handle(req);
  if (scope.refused()) {
    if (o.inline_pooled) o.inline_pooled->Inc();
    return std::nullopt;  // dropped, deferred part and all: nothing waits on it yet
  }
  if (o.inline_answered) o.inline_answered->Inc();
  return res;
}

Response Session::Handle(const Request& req) {
  const Route* route = match_.route;  // the token was checked with the header
  if (!route) {
    if (match_.status == 405) {
      Response r = Error(405, fmt::format("method {} is not allowed on {}", req.method, req.path));
      r.headers.emplace_back("Allow", match_.allow);
      return r;
    }
    return Error(404, fmt::format("no route for {} {}", req.method, req.path));
  }
  try {
    return route->handler(req);
  } catch (const std::exception& e) {
    spdlog::error("handler {} {} threw: {}", req.method, route->pattern, e.what());
    return Error(500, std::string("internal error: ") + e.what());
  }
}

void Session::Write(Response res) {
  if (res.stream) return WriteStream(std::move(res));
  auto msg = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(res.status), version_);
  msg->set(http::field::server, "ckptd/" CKPTD_VERSION);
  if (!res.content_type.empty()) msg->set(http::field::content_type, res.content_type);
  for (const auto& [k, v] : res.headers) msg->set(k, v);
  msg->body() = std::move(res.body);
  bool keep = keep_alive_ && !shared_->stopping;
  msg->keep_alive(keep);
  msg->prepare_payload();
  int status = res.status;
  stream_.expires_after(limits_.read_timeout);
  http::async_write(stream_, *msg, [self = shared_from_this(), msg, keep, status](beast::error_code ec, size_t) {
    self->FinishRequest(status);
    if (ec) return self->Close();
    self->AfterWrite(keep);
  });
}

void Session::WriteStream(Response res) {
  auto hdr = std::make_shared<http::response<http::empty_body>>(static_cast<http::status>(res.status), version_);
  hdr->set(http::field::server, "ckptd/" CKPTD_VERSION);
  if (!res.content_type.empty()) hdr->set(http::field::content_type, res.content_type);
  for (const auto& [k, v] : res.headers) hdr->set(k, v);
  hdr->keep_alive(keep_alive_ && !shared_->stopping);
  hdr->chunked(true);
  auto sr = std::make_shared<http::response_serializer<http::empty_body>>(*hdr);
  auto shared_res = std::make_shared<Response>(std::move(res));
  stream_.expires_after(limits_.read_timeout);
  http::async_write_header(stream_, *sr,
                           [self = shared_from_this(), hdr, sr, shared_res](beast::error_code ec, size_t) {
                             if (ec) return self->Close();
                             self->keep_alive_ = hdr->keep_alive();
                             self->NextChunk(shared_res);
                           });
}

void Session::NextChunk(std::shared_ptr<Response> res) {
  net::post(*shared_->handler_pool, [self = shared_from_this(), res] {
    auto piece = res->stream();
    net::post(self->stream_.get_executor(), [self, res, piece = std::move(piece)]() mutable {
      if (!piece.ok()) {
        spdlog::error("streaming response failed: {}", piece.status().ToString());
        self->FinishRequest(500);
        return self->Close();
      }
      self->stream_.expires_after(self->limits_.read_timeout);
      if (!piece->has_value()) {
        return net::async_write(self->stream_, http::make_chunk_last(), [self, res](beast::error_code ec, size_t) {
          self->FinishRequest(res->status);
          if (ec) return self->Close();
          self->AfterWrite(self->keep_alive_);
        });
      }
      auto data = std::make_shared<std::string>(std::move(**piece));
      if (data->empty()) return self->NextChunk(res);
      net::async_write(self->stream_, http::make_chunk(net::buffer(*data)),
                       [self, res, data](beast::error_code ec, size_t) {
                         if (ec) {
                           self->FinishRequest(res->status);
                           return self->Close();
                         }
                         self->NextChunk(res);
                       });
    });
  });
}

void Session::AfterWrite(bool keep_alive) {
  if (keep_alive && !shared_->stopping) return ReadHeader();
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  Close();
}

void Session::FailAndClose(int status, std::string message, std::vector<std::pair<std::string, std::string>> headers) {
  auto msg = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(status), version_);
  Response body = Error(status, std::move(message));
  msg->set(http::field::server, "ckptd/" CKPTD_VERSION);
  msg->set(http::field::content_type, body.content_type);
  for (const auto& [k, v] : headers) msg->set(k, v);
  drain_limit_ = status == 401 ? kMaxDrainUnauthenticated : kMaxDrainBytes;
  msg->body() = std::move(body.body);
  msg->keep_alive(false);
  msg->prepare_payload();
  stream_.expires_after(limits_.read_timeout);
  http::async_write(stream_, *msg, [self = shared_from_this(), msg, status](beast::error_code ec, size_t) {
    self->FinishRequest(status);
    if (ec) return self->Close();
    beast::error_code ignored;
    self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    self->Drain();
  });
}

void Session::Drain() {
  stream_.expires_after(kDrainTimeout);
  stream_.async_read_some(net::buffer(drain_buf_), [self = shared_from_this()](beast::error_code ec, size_t n) {
    self->drained_ += n;
    if (ec || self->drained_ > self->drain_limit_) return self->Close();
    self->Drain();
  });
}

void Session::Close() {
  beast::error_code ec;
  stream_.socket().close(ec);
}

void Session::FinishRequest(int status) {
  if (!in_request_) return;
  in_request_ = false;
  shared_->active_requests--;
  if (shared_->observer && status) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    shared_->observer(method_, match_.route ? match_.route->pattern : std::string(), status, secs);
  }
}

}  // namespace ckptd::api

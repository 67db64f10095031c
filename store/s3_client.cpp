#include "store/s3_client.h"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "store/digest.h"
#include "store/s3_signer.h"
#include "store/s3_xml.h"

namespace ckptd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

constexpr size_t kMaxResponseBody = 64u << 20;
constexpr size_t kMaxIdleConnections = 32;
// A pooled connection idle longer than this is closed rather than reused:
// servers drop idle keep-alive connections (Node's default after 5 s,
// which s3rver uses; others after 20 s or more), and a request sent on a
// dropped one fails with "end of stream".
constexpr std::chrono::seconds kMaxIdle{4};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// One HTTP connection driven synchronously by its own io_context: each
// operation is started asynchronously (so the tcp_stream deadline applies)
// and the context is run until it completes. Used by one thread at a time.
class Conn {
 public:
  Conn(std::string pool_key) : pool_key_(std::move(pool_key)) {}

  const std::string& pool_key() const { return pool_key_; }
  bool reused = false;
  std::chrono::steady_clock::time_point idle_since;  // when it went back to the pool

  beast::tcp_stream& lowest() { return tls_ ? beast::get_lowest_layer(*tls_) : *tcp_; }

  template <class Start>
  error_code Run(std::chrono::milliseconds timeout, Start&& start) {
    error_code out = asio::error::would_block;
    lowest().expires_after(timeout);
    start([&out](error_code ec, auto&&...) { out = ec; });
    ioc_.restart();
    ioc_.run();
    return out;
  }

  error_code Connect(const S3Address& a, ssl::context* ssl_ctx, const S3Config& cfg) {
    tcp::resolver resolver(ioc_);
    error_code ec = asio::error::would_block;
    tcp::resolver::results_type results;
    resolver.async_resolve(a.connect_host, a.port, [&](error_code e, tcp::resolver::results_type r) {
      ec = e;
      results = std::move(r);
    });
    ioc_.restart();
    ioc_.run();
    if (ec) return ec;
    if (a.tls) {
      tls_.emplace(ioc_, *ssl_ctx);
    } else {
      tcp_.emplace(ioc_);
    }
    ec = Run(std::chrono::milliseconds(cfg.connect_timeout_ms),
             [&](auto h) { lowest().async_connect(results, std::move(h)); });
    if (ec) return ec;
    lowest().socket().set_option(tcp::no_delay(true), ec);
    if (a.tls) {
      // SNI, then certificate + host name checks during the handshake.
      if (!SSL_set_tlsext_host_name(tls_->native_handle(), a.connect_host.c_str()))
        return error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
      if (cfg.verify_tls) {
        tls_->set_verify_mode(ssl::verify_peer);
        tls_->set_verify_callback(ssl::host_name_verification(a.connect_host));
      } else {
        tls_->set_verify_mode(ssl::verify_none);
      }
      ec = Run(std::chrono::milliseconds(cfg.connect_timeout_ms),
               [&](auto h) { tls_->async_handshake(ssl::stream_base::client, std::move(h)); });
    }
    return ec;
  }

  template <class Msg>
  error_code Write(Msg& msg, std::chrono::milliseconds timeout) {
    return Run(timeout, [&](auto h) {
      if (tls_) {
        http::async_write(*tls_, msg, std::move(h));
      } else {
        http::async_write(*tcp_, msg, std::move(h));
      }
    });
  }

  template <class Parser>
  error_code ReadHeader(Parser& p, std::chrono::milliseconds timeout) {
    return Run(timeout, [&](auto h) {
      if (tls_) {
        http::async_read_header(*tls_, buf_, p, std::move(h));
      } else {
        http::async_read_header(*tcp_, buf_, p, std::move(h));
      }
    });
  }

  template <class Parser>
  error_code Read(Parser& p, std::chrono::milliseconds timeout) {
    return Run(timeout, [&](auto h) {
      if (tls_) {
        http::async_read(*tls_, buf_, p, std::move(h));
      } else {
        http::async_read(*tcp_, buf_, p, std::move(h));
      }
    });
  }

 private:
  std::string pool_key_;
  asio::io_context ioc_{1};
  std::optional<beast::tcp_stream> tcp_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
  beast::flat_buffer buf_;
};

using Request = http::request<http::span_body<char>>;

// 5xx and 429 may go away; 501 NotImplemented (an API the server lacks)
// does not.
bool Retryable(unsigned status) { return (status >= 500 && status != 501) || status == 429; }

template <class Fields>
void CopyHeaders(const Fields& fields, S3Response* out) {
  for (const auto& f : fields) out->headers.emplace_back(Lower(f.name_string()), std::string(f.value()));
}

}  // namespace

std::string S3Response::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return {};
}

Status S3Client::ErrorFromResponse(const S3Response& resp, std::string_view what) {
  std::string code = XmlText(resp.body, "Code").value_or("");
  std::string message = XmlText(resp.body, "Message").value_or("");
  std::string text = fmt::format("{}: HTTP {}", what, resp.status);
  if (!code.empty()) text += " " + code;
  if (!message.empty()) text += ": " + message;
  if (resp.status == 404) return NotFound(text);
  if (resp.status == 401 || resp.status == 403) return Unauthenticated(text);
  if (resp.status >= 500 || resp.status == 429) return Unavailable(text);
  if (resp.status == 400 || resp.status == 416) return InvalidArgument(text);
  return IOError(text);
}

struct S3Client::Impl {
  S3Config cfg;
  const Clock* clock;
  ssl::context ssl_ctx{ssl::context::tls_client};
  std::mutex mu;
  std::vector<std::unique_ptr<Conn>> idle;  // guarded by mu

  Impl(S3Config c, const Clock* k) : cfg(std::move(c)), clock(k) {
    if (cfg.region.empty()) cfg.region = "us-east-1";
    error_code ec;
    if (!cfg.ca_file.empty()) {
      ssl_ctx.load_verify_file(cfg.ca_file, ec);
    } else {
      ssl_ctx.set_default_verify_paths(ec);
    }
    // A bad CA file surfaces as handshake failures with a clear message.
  }

  std::chrono::milliseconds io_timeout() const { return std::chrono::milliseconds(cfg.io_timeout_ms); }

  std::unique_ptr<Conn> Take(const S3Address& a, Status* err) {
    std::string key = fmt::format("{}|{}|{}", a.tls, a.connect_host, a.port);
    {
      std::lock_guard lock(mu);
      auto now = std::chrono::steady_clock::now();
      std::erase_if(idle, [&](const std::unique_ptr<Conn>& c) { return now - c->idle_since > kMaxIdle; });
      for (auto it = idle.rbegin(); it != idle.rend(); ++it) {
        if ((*it)->pool_key() == key) {
          auto c = std::move(*it);
          idle.erase(std::next(it).base());
          c->reused = true;
          return c;
        }
      }
    }
    auto c = std::make_unique<Conn>(key);
    error_code ec = c->Connect(a, &ssl_ctx, cfg);
    if (ec) {
      *err = Unavailable(fmt::format("connect {}:{}: {}", a.connect_host, a.port, ec.message()));
      return nullptr;
    }
    return c;
  }

  void Give(std::unique_ptr<Conn> c) {
    c->idle_since = std::chrono::steady_clock::now();
    std::lock_guard lock(mu);
    if (idle.size() >= kMaxIdleConnections) idle.erase(idle.begin());
    idle.push_back(std::move(c));
  }

  void DropIdle(const std::string& key) {
    std::lock_guard lock(mu);
    std::erase_if(idle, [&](const std::unique_ptr<Conn>& c) { return c->pool_key() == key; });
  }

  std::string What(const S3Request& r) const {
    return fmt::format("s3 {} s3://{}/{}", r.method, cfg.bucket, r.full_key);
  }

  // Builds and signs the request for one attempt.
  Result<Request> Build(const S3Request& r, const S3Address& a, const std::string& payload_hash) {
    http::verb verb = http::string_to_verb(r.method);
    if (verb == http::verb::unknown) return InvalidArgument("s3: bad method " + r.method);
    std::string query = CanonicalQuery(r.query);
    std::string target = a.path + (query.empty() ? "" : "?" + query);
    Request req{verb, target, 11};
    std::string date = AmzDate(clock->NowMillis());
    SigV4Request sr;
    sr.method = r.method;
    sr.canonical_uri = a.path;
    sr.query = r.query;
    sr.payload_sha256 = payload_hash;
    sr.headers = {{"host", a.host_header}, {"x-amz-date", date}, {"x-amz-content-sha256", payload_hash}};
    if (!cfg.session_token.empty()) sr.headers.emplace_back("x-amz-security-token", cfg.session_token);
    for (const auto& h : r.headers) sr.headers.push_back(h);
    SigV4Credentials cred{cfg.access_key, cfg.secret_key, cfg.region, "s3"};
    SigV4Result sig = SignV4(sr, cred, date);
    for (const auto& [k, v] : sr.headers) req.set(k, v);
    req.set(http::field::authorization, sig.authorization);
    req.set(http::field::user_agent, "ckptd/" CKPTD_VERSION);
    req.keep_alive(true);
    req.body() = {const_cast<char*>(r.body.data()), r.body.size()};
    req.prepare_payload();
    return req;
  }

  void Backoff(int attempt) {
    thread_local std::mt19937 rng{std::random_device{}()};
    int64_t ms = std::min<int64_t>(cfg.retry_max_ms, int64_t{cfg.retry_base_ms} << std::min(attempt, 20));
    std::uniform_int_distribution<int64_t> jitter(ms / 2, std::max<int64_t>(ms / 2, ms));
    std::this_thread::sleep_for(std::chrono::milliseconds(jitter(rng)));
  }

  // One attempt up to the response header. On success *conn holds the
  // connection with the parser positioned at the body.
  template <class Parser>
  Status SendAndReadHeader(const S3Request& r, const S3Address& a, const std::string& hash, std::unique_ptr<Conn>* conn,
                           Parser& parser, bool* stale) {
    *stale = false;
    Status err;
    *conn = Take(a, &err);
    if (!*conn) return err;
    CKPTD_ASSIGN_OR_RETURN(Request req, Build(r, a, hash));
    error_code ec = (*conn)->Write(req, io_timeout());
    if (!ec) {
      if (r.method == "HEAD") parser.skip(true);
      ec = (*conn)->ReadHeader(parser, io_timeout());
    }
    if (ec) {
      // A pooled connection the server closed while idle fails like this:
      // worth one immediate retry on a fresh connection.
      *stale = (*conn)->reused && (ec == http::error::end_of_stream || ec == asio::error::eof ||
                                   ec == asio::error::connection_reset || ec == asio::error::broken_pipe);
      // The others pooled with it went idle about as long: drop them too,
      // so the retry really runs on a fresh connection.
      if (*stale) DropIdle((*conn)->pool_key());
      conn->reset();
      return Unavailable(fmt::format("{}: {}", What(r), ec.message()));
    }
    return Status::Ok();
  }

  // Runs attempt() until it returns a non-retryable outcome. attempt sets
  // *retry when the failure may go away.
  template <class T, class F>
  Result<T> WithRetries(const S3Request& r, F attempt) {
    Status last;
    bool stale_retry_used = false;
    for (int i = 0;; ++i) {
      bool retry = false, stale = false;
      Result<T> res = attempt(&retry, &stale);
      if (res.ok() || !retry) return res;
      last = res.status();
      if (stale && !stale_retry_used) {
        stale_retry_used = true;
        --i;
        continue;
      }
      if (i >= cfg.max_retries) break;
      Backoff(i);
    }
    return last.WithContext(fmt::format("after {} attempts", cfg.max_retries + 1));
  }

  std::string PayloadHash(std::string_view body) const {
    return body.empty() ? std::string(kEmptySha256) : Sha256::HexOf(body);
  }
};

S3Client::S3Client(S3Config cfg, const Clock* clock) : impl_(std::make_unique<Impl>(std::move(cfg), clock)) {}
S3Client::~S3Client() = default;

const S3Config& S3Client::config() const { return impl_->cfg; }

std::string S3Client::Describe() const { return fmt::format("s3://{}/{}", impl_->cfg.bucket, impl_->cfg.prefix); }

Result<S3Response> S3Client::Call(const S3Request& r) {
  CKPTD_ASSIGN_OR_RETURN(S3Address a, MakeS3Address(impl_->cfg, r.full_key));
  const std::string hash = impl_->PayloadHash(r.body);
  return impl_->WithRetries<S3Response>(r, [&](bool* retry, bool* stale) -> Result<S3Response> {
    std::unique_ptr<Conn> conn;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponseBody);
    Status st = impl_->SendAndReadHeader(r, a, hash, &conn, parser, stale);
    if (!st.ok()) {
      *retry = true;
      return st;
    }
    error_code ec;
    if (!parser.is_done()) ec = conn->Read(parser, impl_->io_timeout());
    if (ec) {
      *retry = true;
      return Unavailable(fmt::format("{}: reading answer: {}", impl_->What(r), ec.message()));
    }
    S3Response resp;
    resp.status = parser.get().result_int();
    CopyHeaders(parser.get(), &resp);
    bool keep = parser.get().keep_alive();
    resp.body = std::move(parser.get().body());
    if (keep) impl_->Give(std::move(conn));
    if (resp.status >= 200 && resp.status < 300) return resp;
    *retry = Retryable(resp.status);
    return ErrorFromResponse(resp, impl_->What(r));
  });
}

namespace {

class BodyStream final : public S3BodyStream {
 public:
  BodyStream(S3Client::Impl* impl, std::unique_ptr<Conn> conn,
             std::unique_ptr<http::response_parser<http::buffer_body>> parser, S3Response head, std::string what)
      : impl_(impl),
        conn_(std::move(conn)),
        parser_(std::move(parser)),
        head_(std::move(head)),
        what_(std::move(what)) {}

  const S3Response& head() const override { return head_; }

  Result<size_t> Read(std::span<char> buf) override;

 private:
  S3Client::Impl* impl_;
  std::unique_ptr<Conn> conn_;
  std::unique_ptr<http::response_parser<http::buffer_body>> parser_;
  S3Response head_;
  std::string what_;
};

}  // namespace

Result<size_t> BodyStream::Read(std::span<char> buf) {
  if (!conn_ || buf.empty()) return size_t{0};
  if (parser_->is_done()) {
    if (parser_->get().keep_alive()) impl_->Give(std::move(conn_));
    conn_.reset();
    return size_t{0};
  }
  auto& body = parser_->get().body();
  body.data = buf.data();
  body.size = buf.size();
  error_code ec = conn_->Read(*parser_, impl_->io_timeout());
  if (ec == http::error::need_buffer) ec = {};
  if (ec) {
    conn_.reset();
    return Unavailable(fmt::format("{}: reading body: {}", what_, ec.message()));
  }
  size_t n = buf.size() - body.size;
  if (parser_->is_done()) {
    if (parser_->get().keep_alive()) impl_->Give(std::move(conn_));
    conn_.reset();
  }
  if (n == 0 && conn_) return Read(buf);  // header-only progress (chunk framing); go on
  return n;
}

Result<std::unique_ptr<S3BodyStream>> S3Client::Open(const S3Request& r) {
  CKPTD_ASSIGN_OR_RETURN(S3Address a, MakeS3Address(impl_->cfg, r.full_key));
  const std::string hash = impl_->PayloadHash(r.body);
  return impl_->WithRetries<std::unique_ptr<S3BodyStream>>(
      r, [&](bool* retry, bool* stale) -> Result<std::unique_ptr<S3BodyStream>> {
        std::unique_ptr<Conn> conn;
        auto parser = std::make_unique<http::response_parser<http::buffer_body>>();
        parser->body_limit(boost::none);
        Status st = impl_->SendAndReadHeader(r, a, hash, &conn, *parser, stale);
        if (!st.ok()) {
          *retry = true;
          return st;
        }
        S3Response head;
        head.status = parser->get().result_int();
        CopyHeaders(parser->get(), &head);
        if (head.status >= 200 && head.status < 300) {
          return std::unique_ptr<S3BodyStream>(
              new BodyStream(impl_.get(), std::move(conn), std::move(parser), std::move(head), impl_->What(r)));
        }
        // Error answers are small XML documents: read them for Code/Message.
        std::string body;
        std::vector<char> chunk(64 << 10);
        while (!parser->is_done() && body.size() < (1 << 20)) {
          parser->get().body().data = chunk.data();
          parser->get().body().size = chunk.size();
          error_code ec = conn->Read(*parser, impl_->io_timeout());
          if (ec == http::error::need_buffer) ec = {};
          if (ec) break;
          body.append(chunk.data(), chunk.size() - parser->get().body().size);
        }
        head.body = std::move(body);
        *retry = Retryable(head.status);
        return ErrorFromResponse(head, impl_->What(r));
      });
}

}  // namespace ckptd

#include "api/client.h"

#include <fmt/format.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>

namespace ckptd::api {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct HttpClient::Impl {
  net::io_context ioc;
  std::unique_ptr<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  std::string host, port;
  std::chrono::milliseconds timeout;

  Status Connect() {
    stream = std::make_unique<beast::tcp_stream>(ioc);
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    auto results = resolver.resolve(host, port, ec);
    if (ec) return Unavailable(fmt::format("cannot resolve {}: {}", host, ec.message()));
    stream->expires_after(timeout);
    stream->connect(results, ec);
    if (ec) return Unavailable(fmt::format("cannot connect to {}:{}: {}", host, port, ec.message()));
    buffer.clear();
    return Status::Ok();
  }
};

Result<std::unique_ptr<HttpClient>> HttpClient::Create(const std::string& base_url, std::string token,
                                                       std::chrono::milliseconds timeout) {
  auto url = boost::urls::parse_uri(base_url);
  if (!url || url->scheme() != "http" || url->host().empty())
    return InvalidArgument(fmt::format("'{}' is not an http:// URL", base_url));
  std::unique_ptr<HttpClient> c(new HttpClient());
  c->impl_ = std::make_unique<Impl>();
  c->impl_->host = std::string(url->host());
  if (c->impl_->host.size() > 2 && c->impl_->host.front() == '[')
    c->impl_->host = c->impl_->host.substr(1, c->impl_->host.size() - 2);
  c->impl_->port = url->has_port() ? std::string(url->port()) : "80";
  c->impl_->timeout = timeout;
  c->token_ = std::move(token);
  return c;
}

HttpClient::~HttpClient() = default;

Result<ClientResponse> HttpClient::Send(const std::string& method, const std::string& target, const std::string& body,
                                        const std::string& content_type,
                                        const std::map<std::string, std::string>& headers) {
  http::request<http::string_body> req(http::string_to_verb(method), target, 11);
  if (req.method() == http::verb::unknown) req.method_string(method);
  req.set(http::field::host, impl_->host);
  req.set(http::field::user_agent, "ckptd-client/" CKPTD_VERSION);
  if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
  if (!body.empty()) req.set(http::field::content_type, content_type);
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.keep_alive(true);
  req.prepare_payload();

  // A kept-alive connection may have been closed by the server meanwhile:
  // one retry on a fresh connection.
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool fresh = !impl_->stream;
    if (fresh) CKPTD_RETURN_IF_ERROR(impl_->Connect());
    beast::error_code ec;
    impl_->stream->expires_after(impl_->timeout);
    http::write(*impl_->stream, req, ec);
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    if (!ec) http::read(*impl_->stream, impl_->buffer, parser, ec);
    if (ec) {
      impl_->stream.reset();
      if (ec == beast::error::timeout)
        return DeadlineExceeded(fmt::format("{} {}: no answer within {} ms", method, target, impl_->timeout.count()));
      if (!fresh) continue;
      return Unavailable(fmt::format("{} {}: {}", method, target, ec.message()));
    }
    auto res = parser.release();
    ClientResponse out;
    out.status = res.result_int();
    out.body = std::move(res.body());
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      out.headers[name] = std::string(f.value());
    }
    if (!res.keep_alive()) impl_->stream.reset();
    return out;
  }
  return Unavailable(fmt::format("{} {}: connection closed", method, target));
}

}  // namespace ckptd::api

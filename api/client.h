// A small synchronous HTTP/1.1 client for ckptd's own API (ckptctl, tests,
// benches, the upstream mirror). One connection, kept alive across calls;
// reconnects when the server closed it.
//
// Errors: Unavailable when the daemon cannot be reached, DeadlineExceeded on
// timeout. HTTP error statuses are not errors here: callers read .status.
// Thread safety: one client per thread.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "common/status.h"

namespace ckptd::api {

struct ClientResponse {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class HttpClient {
 public:
  // `base_url` like "http://127.0.0.1:8080"; `token` may be empty.
  static Result<std::unique_ptr<HttpClient>> Create(const std::string& base_url, std::string token,
                                                    std::chrono::milliseconds timeout = std::chrono::seconds(30));
  ~HttpClient();

  Result<ClientResponse> Send(const std::string& method, const std::string& target, const std::string& body = "",
                              const std::string& content_type = "application/json",
                              const std::map<std::string, std::string>& headers = {});
  void set_token(std::string token) { token_ = std::move(token); }

  struct Impl;

 private:
  HttpClient() = default;
  std::unique_ptr<Impl> impl_;
  std::string token_;
};

}  // namespace ckptd::api

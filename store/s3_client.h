// S3Client: signed HTTP/1.1 requests to an S3-compatible endpoint (Boost
// Beast; TLS via OpenSSL when the endpoint is https), with a keep-alive
// connection pool, timeouts and retries. S3ObjectStore builds the S3 API on
// it; other code should use ObjectStore.
//
// Errors: a non-2xx answer becomes a Status carrying S3's Code and Message:
// 404 NotFound, 401/403 Unauthenticated, 5xx/429 (after retries) and
// connection failures Unavailable, others IOError.
// Retries: 5xx (but 501), 429 and transport errors, with exponential backoff and
// jitter (S3Config::max_retries, retry_base_ms, retry_max_ms). Requests are
// re-signed on every attempt.
// Thread safety: Call/Open may be used from many threads at once. An
// S3BodyStream belongs to one thread.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "store/s3_config.h"

namespace ckptd {

struct S3Request {
  std::string method;                                        // "GET", "PUT", "POST", "DELETE", "HEAD"
  std::string full_key;                                      // key inside the bucket ("" for bucket-level)
  std::vector<std::pair<std::string, std::string>> query;    // raw names/values
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers (Range, Content-MD5...)
  std::string_view body;                                     // must stay valid during the call
};

struct S3Response {
  unsigned status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  // "" when absent.
  std::string Header(std::string_view lowercase_name) const;
};

// A 2xx response whose body is read incrementally.
class S3BodyStream {
 public:
  virtual ~S3BodyStream() = default;
  virtual const S3Response& head() const = 0;  // status and headers; body empty
  // Up to buf.size() body bytes; 0 at the end of the body.
  virtual Result<size_t> Read(std::span<char> buf) = 0;
};

class S3Client {
 public:
  // cfg must be valid (S3Config::Validate). clock: for request dates.
  explicit S3Client(S3Config cfg, const Clock* clock = SystemClock::Default());
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  // Sends req (retrying as above) and reads the whole answer (limit 64 MiB).
  Result<S3Response> Call(const S3Request& req);
  // Sends req and returns once the headers of a 2xx answer are in.
  Result<std::unique_ptr<S3BodyStream>> Open(const S3Request& req);

  const S3Config& config() const;
  // "s3://bucket/prefix"
  std::string Describe() const;

  // Builds a Status from a non-2xx answer (Code/Message from its XML body).
  static Status ErrorFromResponse(const S3Response& resp, std::string_view what);

  struct Impl;  // opaque; public only so that body streams in the .cpp can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ckptd

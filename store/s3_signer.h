// AWS Signature Version 4 for S3 requests (HMAC-SHA256 via OpenSSL).
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ckptd {

// RFC 3986 percent-encoding as SigV4 wants it: everything but
// A-Z a-z 0-9 - _ . ~ is %XX (uppercase); '/' kept when keep_slash.
std::string AwsUriEncode(std::string_view s, bool keep_slash);

// "20130524T000000Z" for a Unix time in milliseconds.
std::string AmzDate(int64_t unix_millis);

constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
constexpr std::string_view kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct SigV4Request {
  std::string_view method;                                 // "GET"
  std::string_view canonical_uri;                          // already encoded path
  std::vector<std::pair<std::string, std::string>> query;  // raw (unencoded) name/value
  // Headers to sign: any case, values untrimmed; must include host,
  // x-amz-date and x-amz-content-sha256 (and x-amz-security-token if used).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view payload_sha256;  // hex or UNSIGNED-PAYLOAD
};

struct SigV4Credentials {
  std::string_view access_key;
  std::string_view secret_key;
  std::string_view region;
  std::string_view service = "s3";
};

struct SigV4Result {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;      // hex
  std::string authorization;  // the Authorization header value
};

// amz_date: the same value as the x-amz-date header.
SigV4Result SignV4(const SigV4Request& req, const SigV4Credentials& cred, std::string_view amz_date);

// The canonical query string: encoded names/values sorted, "a=1&b=".
std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query);

}  // namespace ckptd

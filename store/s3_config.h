// S3Config: where and how the S3-compatible backend talks.
// Value type; thread safety: none needed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ckptd {

struct S3Config {
  // "http://127.0.0.1:9000" or "https://s3.eu-west-1.amazonaws.com"; empty:
  // https://s3.<region>.amazonaws.com. http is meant for loopback/test
  // servers: credentials are signed, not encrypted, and bodies are plain.
  std::string endpoint;
  std::string region;  // empty: us-east-1
  std::string bucket;
  std::string prefix;  // key prefix inside the bucket ("" or ending in '/')
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // temporary credentials (x-amz-security-token)
  // Path-style ("host/bucket/key") or virtual-host ("bucket.host/key")
  // addressing; unset: path-style when an endpoint is given (S3-compatible
  // servers), virtual-host for AWS's own endpoint.
  std::optional<bool> path_style;

  // Multipart: part size (at least 5 MiB unless allow_small_parts), parts in
  // flight per writer. A writer holds at most part_size x (max_in_flight+1)
  // bytes; parts grow past part_size only for very large objects.
  uint64_t part_size = 8ull << 20;
  int max_in_flight = 4;
  // Tests against servers that accept parts < 5 MiB (S3 itself does not).
  bool allow_small_parts = false;

  // Retries on 5xx, 429 and connection errors: exponential backoff with
  // jitter from retry_base_ms, capped at retry_max_ms, max_retries retries.
  int max_retries = 5;
  int retry_base_ms = 100;
  int retry_max_ms = 5000;
  int connect_timeout_ms = 10000;
  int io_timeout_ms = 60000;  // per read/write operation on the socket

  // TLS: verify the server's certificate against the system store, or
  // ca_file when set.
  std::string ca_file;
  bool verify_tls = true;

  // Fills empty fields from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
  // AWS_SESSION_TOKEN, AWS_REGION / AWS_DEFAULT_REGION, AWS_ENDPOINT_URL.
  // Fields already set win over the environment.
  void FillFromEnv();
  // InvalidArgument when something needed is missing or malformed.
  Status Validate() const;
};

// Where one request goes, derived from config + key.
struct S3Address {
  bool tls = false;
  std::string connect_host;  // what to resolve and connect to
  std::string port;          // "443", "80" or explicit
  std::string host_header;   // Host: value (with :port when not default)
  std::string path;          // URI-encoded absolute path ("/bucket/key" or "/key")
};

// full_key is the key inside the bucket (store prefix included); "" for
// bucket-level requests (List, DeleteObjects).
Result<S3Address> MakeS3Address(const S3Config& cfg, std::string_view full_key);

}  // namespace ckptd

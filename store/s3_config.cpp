#include "store/s3_config.h"

#include <cstdlib>

#include <fmt/format.h>
#include <boost/url/parse.hpp>

#include "store/s3_signer.h"

namespace ckptd {
namespace {

void FillOne(std::string* field, const char* var) {
  if (!field->empty()) return;
  if (const char* v = std::getenv(var); v != nullptr && *v != '\0') *field = v;
}

}  // namespace

void S3Config::FillFromEnv() {
  FillOne(&access_key, "AWS_ACCESS_KEY_ID");
  FillOne(&secret_key, "AWS_SECRET_ACCESS_KEY");
  FillOne(&session_token, "AWS_SESSION_TOKEN");
  FillOne(&region, "AWS_REGION");
  FillOne(&region, "AWS_DEFAULT_REGION");
  FillOne(&endpoint, "AWS_ENDPOINT_URL");
}

Status S3Config::Validate() const {
  if (bucket.empty()) return InvalidArgument("s3: bucket is empty");
  if (access_key.empty() || secret_key.empty())
    return InvalidArgument(
        "s3: credentials missing (access key/secret key or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)");
  if (!prefix.empty() && prefix.back() != '/') return InvalidArgument("s3: prefix must end with '/'");
  if (!prefix.empty() && prefix.front() == '/') return InvalidArgument("s3: prefix must not start with '/'");
  if (part_size == 0 || max_in_flight < 1) return InvalidArgument("s3: part_size and max_in_flight must be positive");
  if (!endpoint.empty()) {
    auto u = boost::urls::parse_uri(endpoint);
    if (!u || (u->scheme() != "http" && u->scheme() != "https") || u->host().empty())
      return InvalidArgument("s3: endpoint '" + endpoint + "' is not an http(s) URL");
  }
  return Status::Ok();
}

Result<S3Address> MakeS3Address(const S3Config& cfg, std::string_view full_key) {
  std::string region = cfg.region.empty() ? "us-east-1" : cfg.region;
  std::string endpoint = cfg.endpoint.empty() ? fmt::format("https://s3.{}.amazonaws.com", region) : cfg.endpoint;
  auto u = boost::urls::parse_uri(endpoint);
  if (!u) return InvalidArgument("s3: endpoint '" + endpoint + "' is not a URL");
  S3Address a;
  a.tls = u->scheme() == "https";
  std::string host = u->host();
  a.port = u->has_port() ? std::string(u->port()) : (a.tls ? "443" : "80");
  bool default_port = (a.tls && a.port == "443") || (!a.tls && a.port == "80");
  bool path_style = cfg.path_style.value_or(!cfg.endpoint.empty());
  // A path on the endpoint ("http://host/s3") is kept as a base.
  std::string base(u->encoded_path());
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::string key_path = AwsUriEncode(full_key, /*keep_slash=*/true);
  if (path_style) {
    a.connect_host = host;
    a.path = base + "/" + AwsUriEncode(cfg.bucket, false);
    if (!full_key.empty()) a.path += "/" + key_path;
  } else {
    a.connect_host = cfg.bucket + "." + host;
    a.path = base + "/" + key_path;
  }
  a.host_header = default_port ? a.connect_host : a.connect_host + ":" + a.port;
  return a;
}

}  // namespace ckptd

#include "store/object_uri.h"

#include <filesystem>

#include <fmt/format.h>
#include <boost/url/parse.hpp>

#include "store/local_object_store.h"
#include "store/s3_object_store.h"

namespace ckptd {

namespace {

// "n.n.n.n" at the start of a name. S3 refuses IP-formatted bucket names, and
// Boost.URL 1.81 reads such a prefix of a host as an IPv4 address and the
// rest as the path ("s3://1.2.3.4a/" gives host 1.2.3.4, path "a/").
bool StartsLikeIpv4(std::string_view b) {
  size_t i = 0;
  for (int group = 0; group < 4; ++group) {
    size_t digits = 0;
    while (i < b.size() && b[i] >= '0' && b[i] <= '9') ++i, ++digits;
    if (digits == 0) return false;
    if (group < 3 && (i >= b.size() || b[i++] != '.')) return false;
  }
  return true;
}

}  // namespace

Status ValidateBucket(std::string_view b) {
  // S3's rules for bucket names: 3 to 63 lower-case letters, digits, dots
  // and hyphens, beginning and ending with a letter or digit, no "..", not
  // formatted as an IP address.
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  bool ok =
      b.size() >= 3 && b.size() <= 63 && alnum(b.front()) && alnum(b.back()) && b.find("..") == std::string_view::npos;
  for (char c : b) ok = ok && (alnum(c) || c == '.' || c == '-');
  if (ok && StartsLikeIpv4(b))
    return InvalidArgument(fmt::format("bucket '{}' begins like an IP address (n.n.n.n), which S3 refuses", b));
  if (!ok)
    return InvalidArgument(fmt::format(
        "bucket '{}' is not a valid S3 bucket name (3-63 of a-z 0-9 . -, starting and ending with a letter or digit)",
        b));
  return Status::Ok();
}

Result<ObjectUri> ObjectUri::Parse(std::string_view text) {
  auto u = boost::urls::parse_uri(text);
  if (!u) return InvalidArgument("object store URI '" + std::string(text) + "' is not a URI");
  if (u->has_query() || u->has_fragment())
    return InvalidArgument("object store URI '" + std::string(text) + "' has a query or fragment");
  // After an authority a path is empty or begins with '/'. Boost.URL 1.81
  // breaks that on hosts that begin like an IPv4 address ("1.2.3.4a").
  if (u->has_authority() && !u->encoded_path().empty() && u->encoded_path().front() != '/')
    return InvalidArgument("object store URI '" + std::string(text) + "': its host cannot be told from its path");
  ObjectUri out;
  std::string path = u->path();  // percent-decoded
  if (u->scheme() == "file") {
    std::string host = u->host();
    if (!host.empty() && host != "localhost")
      return InvalidArgument("file URI '" + std::string(text) + "' names a remote host");
    if (path.empty() || path.front() != '/')
      return InvalidArgument("file URI '" + std::string(text) + "' is not absolute");
    out.scheme = Scheme::kFile;
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    // ".." would make the root ambiguous; keys are checked separately.
    if (path.find("/../") != std::string::npos || path.ends_with("/..") || path.find('\0') != std::string::npos)
      return InvalidArgument("file URI '" + std::string(text) + "' has '..' segments");
    out.path = path;
    return out;
  }
  if (u->scheme() == "s3") {
    out.scheme = Scheme::kS3;
    out.bucket = u->host();
    if (out.bucket.empty()) return InvalidArgument("s3 URI '" + std::string(text) + "' has no bucket");
    CKPTD_RETURN_IF_ERROR(ValidateBucket(out.bucket).WithContext("s3 URI '" + std::string(text) + "'"));
    while (!path.empty() && path.front() == '/') path.erase(0, 1);
    if (!path.empty() && path.back() != '/') path.push_back('/');
    if (!path.empty()) {
      Status st = ValidatePrefix(path);
      if (!st.ok()) return st.WithContext("s3 URI '" + std::string(text) + "'");
      if (path.find("//") != std::string::npos)
        return InvalidArgument("s3 URI '" + std::string(text) + "' has an empty path segment");
    }
    out.prefix = path;
    return out;
  }
  return InvalidArgument("object store URI '" + std::string(text) + "': scheme must be file or s3");
}

std::string ObjectUri::ToString() const {
  if (scheme == Scheme::kFile) return "file://" + path + (path == "/" ? "" : "/");
  return "s3://" + bucket + "/" + prefix;
}

Result<std::unique_ptr<ObjectStore>> OpenObjectStore(std::string_view uri, const ObjectStoreConfig& config,
                                                     const Clock* clock) {
  CKPTD_ASSIGN_OR_RETURN(ObjectUri u, ObjectUri::Parse(uri));
  if (u.scheme == ObjectUri::Scheme::kFile) {
    CKPTD_ASSIGN_OR_RETURN(auto store, LocalObjectStore::Open(u.path));
    return std::unique_ptr<ObjectStore>(std::move(store));
  }
  S3Config cfg = config.s3;
  cfg.bucket = u.bucket;
  cfg.prefix = u.prefix;
  if (config.s3_from_env) cfg.FillFromEnv();
  auto store = S3ObjectStore::Open(std::move(cfg), clock);
  if (!store.ok()) return store.status().WithContext("open " + u.ToString());
  return std::unique_ptr<ObjectStore>(std::move(store).value());
}

Status CheckFileUriWithin(const ObjectUri& uri, const std::vector<std::string>& roots) {
  if (uri.scheme != ObjectUri::Scheme::kFile) return Status::Ok();
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::path(uri.path), ec);
  if (ec) p = fs::path(uri.path).lexically_normal();
  std::string listed;
  for (const auto& root : roots) {
    if (root.empty()) continue;
    fs::path r = fs::weakly_canonical(fs::path(root), ec);
    if (ec) r = fs::path(root).lexically_normal();
    auto rel = p.lexically_relative(r);
    if (!rel.empty() && *rel.begin() != "..") return Status::Ok();
    listed += (listed.empty() ? "" : ", ") + r.string();
  }
  return InvalidArgument(fmt::format("{} is outside the directories file:// paths may use ({})", uri.ToString(),
                                     listed.empty() ? "none configured" : listed));
}

}  // namespace ckptd

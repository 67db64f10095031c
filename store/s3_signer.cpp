#include "store/s3_signer.h"

#include <algorithm>
#include <ctime>

#include <fmt/format.h>
#include <boost/url/encode.hpp>
#include <boost/url/grammar/lut_chars.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include "store/digest.h"

namespace ckptd {
namespace {

namespace urls = boost::urls;

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// SigV4 canonical header value: trimmed, inner runs of spaces collapsed.
std::string TrimCollapse(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string AwsUriEncode(std::string_view s, bool keep_slash) {
  static constexpr urls::grammar::lut_chars kWithSlash = urls::unreserved_chars + '/';
  urls::encoding_opts opts;  // uppercase hex, no '+' for space
  return keep_slash ? urls::encode(s, kWithSlash, opts) : urls::encode(s, urls::unreserved_chars, opts);
}

std::string AmzDate(int64_t unix_millis) {
  std::time_t t = static_cast<std::time_t>(unix_millis / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> enc;
  enc.reserve(query.size());
  for (const auto& [k, v] : query) enc.emplace_back(AwsUriEncode(k, false), AwsUriEncode(v, false));
  std::sort(enc.begin(), enc.end());
  std::string out;
  for (const auto& [k, v] : enc) {
    if (!out.empty()) out.push_back('&');
    out += k;
    out.push_back('=');
    out += v;
  }
  return out;
}

SigV4Result SignV4(const SigV4Request& req, const SigV4Credentials& cred, std::string_view amz_date) {
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& [k, v] : req.headers) headers.emplace_back(Lower(k), TrimCollapse(v));
  std::sort(headers.begin(), headers.end());
  std::string canonical_headers, signed_headers;
  for (size_t i = 0; i < headers.size(); ++i) {
    // Repeated names are joined with ',' in the canonical form.
    if (i > 0 && headers[i].first == headers[i - 1].first) {
      canonical_headers.pop_back();
      canonical_headers += "," + headers[i].second + "\n";
      continue;
    }
    canonical_headers += headers[i].first + ":" + headers[i].second + "\n";
    if (!signed_headers.empty()) signed_headers.push_back(';');
    signed_headers += headers[i].first;
  }

  SigV4Result r;
  r.canonical_request = fmt::format("{}\n{}\n{}\n{}\n{}\n{}", req.method, req.canonical_uri, CanonicalQuery(req.query),
                                    canonical_headers, signed_headers, req.payload_sha256);
  std::string_view date = amz_date.substr(0, 8);
  std::string scope = fmt::format("{}/{}/{}/aws4_request", date, cred.region, cred.service);
  r.string_to_sign = fmt::format("AWS4-HMAC-SHA256\n{}\n{}\n{}", amz_date, scope, Sha256::HexOf(r.canonical_request));
  std::string k = HmacSha256("AWS4" + std::string(cred.secret_key), date);
  k = HmacSha256(k, cred.region);
  k = HmacSha256(k, cred.service);
  k = HmacSha256(k, "aws4_request");
  r.signature = ToHex(HmacSha256(k, r.string_to_sign));
  r.authorization = fmt::format("AWS4-HMAC-SHA256 Credential={}/{},SignedHeaders={},Signature={}", cred.access_key,
                                scope, signed_headers, r.signature);
  return r;
}

}  // namespace ckptd

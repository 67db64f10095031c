// Fuzz target (e): object store URIs as they come from the configuration
// (images_uri) and from requests (restore_path): store/object_uri.h
// ObjectUri::Parse, ToString and CheckFileUriWithin.
//
// Input: the URI. CheckFileUriWithin resolves paths on this machine
// (weakly_canonical), against roots inside a scratch directory with a
// symlink that leaves it, and the root "/".
// Checks: a parsed file:// URI has an absolute path without "..",
// segments, an s3:// one a bucket and a prefix that is empty or ends in
// '/'; ToString() of a parsed URI parses again to the same URI when it is
// made of characters a URI may hold as they are (a path with spaces, '%'
// or '#' comes back unescaped: reported separately, not checked here); a
// URI inside a root is accepted, one with a path outside every root is not.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "store/object_uri.h"

namespace {

struct Roots {
  std::string scratch;
  std::vector<std::string> roots;
  Roots() {
    namespace fs = std::filesystem;
    scratch = ckptd::fuzz::ScratchDir();
    fs::create_directories(scratch + "/images/a");
    fs::create_directories(scratch + "/other");
    std::error_code ec;
    fs::create_directory_symlink(scratch + "/other", scratch + "/images/out", ec);
    fs::create_directory_symlink("/", scratch + "/images/root", ec);
    roots = {scratch + "/images", "/srv/ckptd-fuzz-none"};
  }
};

bool PlainUriChars(std::string_view s) {
  for (unsigned char c : s) {
    if (c <= 0x20 || c >= 0x7f || c == '%' || c == '#' || c == '?' || c == '"' || c == '<' || c == '>' || c == '\\' ||
        c == '^' || c == '`' || c == '{' || c == '|' || c == '}' || c == '[' || c == ']')
      return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ckptd::fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ckptd;
  static Roots* r = new Roots();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto u = ObjectUri::Parse(text);
  if (!u.ok()) {
    if (u.status().code() != Code::kInvalidArgument)
      fuzz::Fail("Parse failed with another code", u.status().ToString());
    return 0;
  }
  if (u->scheme == ObjectUri::Scheme::kFile) {
    const std::string& p = u->path;
    if (p.empty() || p.front() != '/') fuzz::Fail("file URI with a relative path", p);
    if (p.find("/../") != std::string::npos || p.ends_with("/..")) fuzz::Fail("file URI with '..'", p);
    if (p.size() > 1 && p.back() == '/') fuzz::Fail("file URI path ends in '/'", p);
  } else {
    if (u->bucket.empty()) fuzz::Fail("s3 URI without a bucket");
    if (!u->prefix.empty() && u->prefix.back() != '/') fuzz::Fail("s3 prefix without a trailing '/'", u->prefix);
  }
  std::string canon = u->ToString();
  if (canon.empty() || canon.back() != '/') fuzz::Fail("ToString() does not end in '/'", canon);
  if (PlainUriChars(canon)) {
    auto again = ObjectUri::Parse(canon);
    if (!again.ok()) fuzz::Fail("ToString() of a parsed URI does not parse", canon + "\n" + again.status().ToString());
    if (again->scheme != u->scheme || again->path != u->path || again->bucket != u->bucket ||
        again->prefix != u->prefix)
      fuzz::Fail("ToString() does not parse back to the same URI", canon);
  }
  Status st = CheckFileUriWithin(*u, r->roots);
  if (u->scheme == ObjectUri::Scheme::kS3) {
    if (!st.ok()) fuzz::Fail("s3 URI refused by CheckFileUriWithin", st.ToString());
  } else {
    namespace fs = std::filesystem;
    // Lexically outside every root and through no symlink: refused.
    fs::path p = fs::path(u->path).lexically_normal();
    bool under_scratch = p.string().starts_with(r->scratch);
    bool lexically_inside = !fs::path(p).lexically_relative(r->roots[0]).empty() &&
                            *fs::path(p).lexically_relative(r->roots[0]).begin() != "..";
    if (!under_scratch && !p.string().starts_with("/srv") && st.ok() && !lexically_inside)
      fuzz::Fail("a path outside every root was accepted", u->path);
    // What lies lexically under the image root and names no symlink there.
    if (lexically_inside && p.string().find("/images/out") == std::string::npos &&
        p.string().find("/images/root") == std::string::npos && !st.ok())
      fuzz::Fail("a path inside the image root was refused", u->path + "\n" + st.ToString());
  }
  return 0;
}

#include "api/auth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

namespace ckptd::api {

namespace {

std::array<unsigned char, 32> Sha256(const std::string& s) {
  std::array<unsigned char, 32> d{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
  return d;
}

std::string Trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

}  // namespace

Authenticator::Authenticator(const std::string& token) : digest_(Sha256(token)) {}

Status Authenticator::Check(const std::optional<std::string>& authorization) const {
  if (!authorization) return Unauthenticated("missing Authorization: Bearer token");
  constexpr std::string_view kScheme = "bearer ";
  const std::string& h = *authorization;
  if (h.size() <= kScheme.size() || !std::equal(kScheme.begin(), kScheme.end(), h.begin(), [](char a, char b) {
        return a == std::tolower(static_cast<unsigned char>(b));
      })) {
    return Unauthenticated("Authorization header must be 'Bearer <token>'");
  }
  auto presented = Sha256(Trim(h.substr(kScheme.size())));
  if (CRYPTO_memcmp(presented.data(), digest_.data(), digest_.size()) != 0) return Unauthenticated("invalid token");
  return Status::Ok();
}

Result<TokenSource> LoadOrCreateToken(const std::string& token, const std::string& token_file, bool create_if_missing) {
  if (!token.empty()) return TokenSource{token, "", false};
  if (token_file.empty()) return InvalidArgument("no token and no token file configured");
  std::ifstream in(token_file);
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    std::string t = Trim(ss.str());
    if (t.empty()) return InvalidArgument(fmt::format("token file {} is empty", token_file));
    return TokenSource{t, token_file, false};
  }
  if (errno != ENOENT || !create_if_missing)
    return ErrnoError(fmt::format("cannot read token file {}", token_file), errno);

  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return Internal("RAND_bytes failed");
  std::string t;
  for (unsigned char c : raw) t += fmt::format("{:02x}", c);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(token_file).parent_path(), ec);
  // Written to a temporary name and renamed, so a crash never leaves a
  // truncated token file behind.
  std::string tmp = token_file + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError(fmt::format("cannot create token file {}", tmp), errno);
  std::string line = t + "\n";
  bool ok = write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && fsync(fd) == 0;
  int err = errno;
  close(fd);
  if (!ok || rename(tmp.c_str(), token_file.c_str()) != 0) {
    unlink(tmp.c_str());
    return ErrnoError(fmt::format("cannot write token file {}", token_file), ok ? errno : err);
  }
  return TokenSource{t, token_file, true};
}

}  // namespace ckptd::api

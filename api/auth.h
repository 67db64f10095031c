// Bearer-token authentication.
//
// Check() compares the presented token with the configured one in constant
// time (both are hashed with SHA-256 first, so neither content nor length
// leaks through timing). Thread safety: immutable after construction.
#pragma once

#include <array>
#include <optional>
#include <string>

#include "common/status.h"

namespace ckptd::api {

class Authenticator {
 public:
  explicit Authenticator(const std::string& token);
  // `authorization` is the raw Authorization header, if any.
  Status Check(const std::optional<std::string>& authorization) const;

 private:
  std::array<unsigned char, 32> digest_{};
};

// Loads the token: from `token` when non-empty, else from `token_file`;
// when the file does not exist and create_if_missing, writes a new random
// token there (mode 0600) and reports created=true.
struct TokenSource {
  std::string token;
  std::string path;  // where it came from (file), empty when given inline
  bool created = false;
};
Result<TokenSource> LoadOrCreateToken(const std::string& token, const std::string& token_file, bool create_if_missing);

}  // namespace ckptd::api

// Streaming SHA-256 (OpenSSL EVP) with a lowercase hex digest.
// Thread safety: one Sha256 per thread; value-like (movable, not copyable).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace ckptd {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void Update(std::string_view data);
  // Finishes and returns the digest; the object then restarts empty.
  std::array<uint8_t, 32> FinishRaw();
  std::string FinishHex();

  static std::string HexOf(std::string_view data);

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// HMAC-SHA256(key, data), raw 32 bytes (OpenSSL).
std::string HmacSha256(std::string_view key, std::string_view data);
std::string ToHex(std::string_view bytes);

}  // namespace ckptd

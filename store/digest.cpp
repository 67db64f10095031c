#include "store/digest.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdlib>

#include <fmt/format.h>

extern "C" {
#include <blake3.h>
}

namespace ckptd {

struct Sha256::Ctx {
  EVP_MD_CTX* md = nullptr;
  ~Ctx() { EVP_MD_CTX_free(md); }
};

namespace {
// Allocation or init failure of a SHA-256 context is a broken invariant.
void Check(int ok) {
  if (ok != 1) std::abort();
}
}  // namespace

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  if (ctx_->md == nullptr) std::abort();
  Check(EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr));
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::Update(std::string_view data) { Check(EVP_DigestUpdate(ctx_->md, data.data(), data.size())); }

std::array<uint8_t, 32> Sha256::FinishRaw() {
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  Check(EVP_DigestFinal_ex(ctx_->md, out.data(), &len));
  Check(EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr));
  return out;
}

std::string Sha256::FinishHex() {
  auto raw = FinishRaw();
  return ToHex(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
}

std::string Sha256::HexOf(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.FinishHex();
}

struct Blake3::Ctx {
  blake3_hasher h;
};

Blake3::Blake3() : ctx_(std::make_unique<Ctx>()) { blake3_hasher_init(&ctx_->h); }
Blake3::~Blake3() = default;
Blake3::Blake3(Blake3&&) noexcept = default;
Blake3& Blake3::operator=(Blake3&&) noexcept = default;

void Blake3::Update(std::string_view data) { blake3_hasher_update(&ctx_->h, data.data(), data.size()); }

std::array<uint8_t, 32> Blake3::FinishRaw() {
  std::array<uint8_t, 32> out{};
  blake3_hasher_finalize(&ctx_->h, out.data(), out.size());
  blake3_hasher_init(&ctx_->h);
  return out;
}

std::string Blake3::FinishHex() {
  auto raw = FinishRaw();
  return ToHex(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
}

std::string Blake3::HexOf(std::string_view data) {
  Blake3 h;
  h.Update(data);
  return h.FinishHex();
}

std::string_view HashAlgName(HashAlg alg) { return alg == HashAlg::kSha256 ? "sha256" : "blake3"; }

Result<HashAlg> ParseHashAlg(std::string_view name) {
  if (name == "blake3") return HashAlg::kBlake3;
  if (name == "sha256") return HashAlg::kSha256;
  return InvalidArgument(fmt::format("unknown checksum '{}' (blake3 or sha256)", name));
}

ContentHash::ContentHash(HashAlg alg)
    : alg_(alg),
      h_(alg == HashAlg::kSha256 ? std::variant<Blake3, Sha256>(std::in_place_type<Sha256>)
                                 : std::variant<Blake3, Sha256>(std::in_place_type<Blake3>)) {}

void ContentHash::Update(std::string_view data) {
  std::visit([&](auto& h) { h.Update(data); }, h_);
}

std::string ContentHash::FinishHex() {
  return std::visit([](auto& h) { return h.FinishHex(); }, h_);
}

std::string ContentHash::HexOf(HashAlg alg, std::string_view data) {
  ContentHash h(alg);
  h.Update(data);
  return h.FinishHex();
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
           data.size(), out, &len) == nullptr)
    std::abort();
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string ToHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

}  // namespace ckptd

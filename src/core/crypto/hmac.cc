#include "core/crypto/hmac.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "core/common/fatal.h"

namespace buckwild::crypto {
namespace {

// The one-shot helpers and compute() return plain digests: with valid inputs
// the only way OpenSSL fails here is running out of memory, which the daemon
// cannot recover from anyway.
// OpenSSL rejects a null key pointer even with length 0 (a null key means
// "keep the current key" to EVP_MAC_init), so an empty key points here.
constexpr std::uint8_t kEmpty[1] = {0};

// Up to this many bytes, HMAC runs on the precomputed libsodium state.
constexpr std::size_t kShortMessage = 256;

}  // namespace

Result<HmacSha256> HmacSha256::create(Bytes key) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
  if (mac == nullptr) return fail(ErrorCode::kMemoryExhausted, "EVP_MAC_fetch(HMAC) failed");
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  EVP_MAC_free(mac);  // the context holds its own reference
  if (ctx == nullptr) return fail(ErrorCode::kMemoryExhausted, "EVP_MAC_CTX_new failed");

  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  const std::uint8_t* key_ptr = key.empty() ? kEmpty : key.data();
  if (EVP_MAC_init(ctx, key_ptr, key.size(), params) != 1) {
    EVP_MAC_CTX_free(ctx);
    return fail(ErrorCode::kMemoryExhausted, "EVP_MAC_init(HMAC-SHA256) failed");
  }
  SecretBytes state(sizeof(crypto_auth_hmacsha256_state));
  crypto_auth_hmacsha256_init(reinterpret_cast<crypto_auth_hmacsha256_state*>(state.data()),
                              key_ptr, key.size());
  return HmacSha256(ctx, std::move(state));
}

HmacSha256::HmacSha256(HmacSha256&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)), short_state_(std::move(other.short_state_)) {}

HmacSha256& HmacSha256::operator=(HmacSha256&& other) noexcept {
  if (this != &other) {
    EVP_MAC_CTX_free(ctx_);
    ctx_ = std::exchange(other.ctx_, nullptr);
    short_state_ = std::move(other.short_state_);
  }
  return *this;
}

HmacSha256::~HmacSha256() {
  EVP_MAC_CTX_free(ctx_);
}

Digest HmacSha256::compute(std::initializer_list<Bytes> parts) {
  std::size_t total = 0;
  for (Bytes part : parts) total += part.size();
  if (total <= kShortMessage && !short_state_.empty()) {
    crypto_auth_hmacsha256_state st;
    std::memcpy(&st, short_state_.data(), sizeof st);
    for (Bytes part : parts) {
      if (!part.empty()) crypto_auth_hmacsha256_update(&st, part.data(), part.size());
    }
    Digest out{};
    crypto_auth_hmacsha256_final(&st, out.data());
    sodium_memzero(&st, sizeof st);
    return out;
  }
  // A null key re-arms the context with the key already set: no allocation.
  if (ctx_ == nullptr || EVP_MAC_init(ctx_, nullptr, 0, nullptr) != 1) {
    fatal("HMAC-SHA256 re-init failed");
  }
  for (Bytes part : parts) {
    if (!part.empty() && EVP_MAC_update(ctx_, part.data(), part.size()) != 1) {
      fatal("HMAC-SHA256 update failed");
    }
  }
  Digest out{};
  std::size_t len = 0;
  if (EVP_MAC_final(ctx_, out.data(), &len, out.size()) != 1 || len != out.size()) {
    fatal("HMAC-SHA256 final failed");
  }
  return out;
}

Digest hmac_sha256(Bytes key, std::initializer_list<Bytes> parts) {
  std::size_t total = 0;
  for (Bytes part : parts) total += part.size();
  if (total <= kShortMessage) {
    // No context objects for a one-off: libsodium's state lives on the stack
    // for the few hundred nanoseconds it takes and is wiped before returning.
    ensure_sodium();
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key.empty() ? kEmpty : key.data(), key.size());
    for (Bytes part : parts) {
      if (!part.empty()) crypto_auth_hmacsha256_update(&st, part.data(), part.size());
    }
    Digest out{};
    crypto_auth_hmacsha256_final(&st, out.data());
    sodium_memzero(&st, sizeof st);
    return out;
  }
  Result<HmacSha256> mac = HmacSha256::create(key);
  if (!mac) fatal(mac.error().what);
  return mac->compute(parts);
}

Digest sha256(std::initializer_list<Bytes> parts) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1;
  for (Bytes part : parts) {
    ok = ok && (part.empty() || EVP_DigestUpdate(ctx, part.data(), part.size()) == 1);
  }
  Digest out{};
  unsigned int len = 0;
  ok = ok && EVP_DigestFinal_ex(ctx, out.data(), &len) == 1 && len == out.size();
  EVP_MD_CTX_free(ctx);
  if (!ok) fatal("SHA-256 failed");
  return out;
}

}  // namespace buckwild::crypto

// HMAC-SHA256 (RFC 2104, FIPS 198-1) and its 128-bit truncation.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>

#include "core/common/bytes.h"
#include "core/common/error.h"
#include "core/crypto/secret_bytes.h"

struct evp_mac_ctx_st;

namespace buckwild::crypto {

inline constexpr std::size_t kSha256Size = 32;
inline constexpr std::size_t kHmac128Size = 16;
using Digest = std::array<std::uint8_t, kSha256Size>;

// One-shot HMAC-SHA256 of the concatenation of `parts` under `key`.
Digest hmac_sha256(Bytes key, std::initializer_list<Bytes> parts);

// One-shot SHA-256 of the concatenation of `parts`.
Digest sha256(std::initializer_list<Bytes> parts);

// HMAC-SHA256 with the key set once and reused for many messages (OpenSSL
// EVP_MAC, re-initialised per message, so the key is never re-processed). Note:
// OpenSSL 3.0 still makes two small allocations per message when it copies the
// keyed digest state back in. Not thread-safe: one instance per thread. Move-only.
class HmacSha256 {
 public:
  // Fails only if OpenSSL cannot create the context (out of memory).
  static Result<HmacSha256> create(Bytes key);

  HmacSha256(HmacSha256&& other) noexcept;
  HmacSha256& operator=(HmacSha256&& other) noexcept;
  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;
  ~HmacSha256();

  // HMAC of the concatenation of `parts`.
  Digest compute(std::initializer_list<Bytes> parts);

 private:
  HmacSha256(evp_mac_ctx_st* ctx, SecretBytes short_state)
      : ctx_(ctx), short_state_(std::move(short_state)) {}
  evp_mac_ctx_st* ctx_ = nullptr;
  // libsodium's keyed HMAC state (inner and outer hashes after the key block),
  // in locked memory. For short messages (ports, tags, proofs) copying it and
  // hashing two blocks is several times faster than OpenSSL's EVP re-init;
  // long messages (HMAC-mode packets) go through OpenSSL's faster SHA-256.
  SecretBytes short_state_;
};

}  // namespace buckwild::crypto

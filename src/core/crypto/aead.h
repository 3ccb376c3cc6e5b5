// AEAD ciphers: ChaCha20-Poly1305 (RFC 8439) and AES-256-GCM (NIST SP 800-38D).
#pragma once

#include <array>
#include <cstdint>

#include "core/common/bytes.h"
#include "core/common/error.h"

struct evp_cipher_ctx_st;

namespace buckwild::crypto {

enum class AeadAlgorithm : std::uint8_t { kChaCha20Poly1305 = 1, kAes256Gcm = 2 };

inline constexpr std::size_t kAeadKeySize = 32;
inline constexpr std::size_t kAeadNonceSize = 12;
inline constexpr std::size_t kAeadTagSize = 16;
using AeadNonce = std::array<std::uint8_t, kAeadNonceSize>;
using AeadTag = std::array<std::uint8_t, kAeadTagSize>;

// One key, set once; seal and open reuse the expanded key and only change the
// nonce per call, so the packet path allocates nothing. Separate contexts for
// sealing and opening, so one Aead serves both directions of use. Not
// thread-safe. Move-only. OpenSSL cleanses the expanded key when freed.
class Aead {
 public:
  // `key` must be 32 bytes. Fails with kInvalidParameter otherwise.
  static Result<Aead> create(AeadAlgorithm algorithm, Bytes key);

  Aead(Aead&& other) noexcept;
  Aead& operator=(Aead&& other) noexcept;
  Aead(const Aead&) = delete;
  Aead& operator=(const Aead&) = delete;
  ~Aead();

  // Encrypts `data` in place and writes the tag. `aad` is authenticated only.
  // Fails only on an internal OpenSSL error.
  Result<void> seal(const AeadNonce& nonce, Bytes aad, MutableBytes data, AeadTag& tag);

  // Verifies `tag` and decrypts `data` in place. On kAuthenticationFailed the
  // contents of `data` are unspecified and must be discarded.
  Result<void> open(const AeadNonce& nonce, Bytes aad, MutableBytes data, const AeadTag& tag);

  AeadAlgorithm algorithm() const { return algorithm_; }

 private:
  Aead(AeadAlgorithm algorithm, evp_cipher_ctx_st* enc, evp_cipher_ctx_st* dec)
      : algorithm_(algorithm), enc_(enc), dec_(dec) {}
  void release();

  AeadAlgorithm algorithm_ = AeadAlgorithm::kChaCha20Poly1305;
  evp_cipher_ctx_st* enc_ = nullptr;
  evp_cipher_ctx_st* dec_ = nullptr;
};

}  // namespace buckwild::crypto

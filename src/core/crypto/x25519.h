// X25519 Diffie-Hellman (RFC 7748).
#pragma once

#include <array>
#include <cstdint>

#include "core/common/bytes.h"
#include "core/common/error.h"
#include "core/crypto/secret_bytes.h"

namespace buckwild::crypto {

class RandomSource;

inline constexpr std::size_t kX25519KeySize = 32;
using X25519PublicKey = std::array<std::uint8_t, kX25519KeySize>;

struct X25519KeyPair {
  SecretBytes private_key;  // 32 bytes
  X25519PublicKey public_key{};
};

// A fresh key pair with the private key drawn from `rng`.
X25519KeyPair x25519_generate(RandomSource& rng);

// The public key for a 32-byte private key (RFC 7748 scalar clamping applies).
Result<X25519PublicKey> x25519_public_from_private(Bytes private_key);

// The shared secret X25519(private_key, peer_public). Fails with
// kAuthenticationFailed when the result is all zeros (a low-order peer key),
// and kInvalidParameter for wrong sizes.
Result<SecretBytes> x25519_shared(Bytes private_key, Bytes peer_public);

}  // namespace buckwild::crypto

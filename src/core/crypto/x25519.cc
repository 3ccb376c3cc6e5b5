#include "core/crypto/x25519.h"

#include <openssl/evp.h>
#include <sodium.h>

#include <cstdio>
#include <cstdlib>

#include "core/crypto/random.h"

namespace buckwild::crypto {
namespace {

// Minimal owner so every exit path frees the OpenSSL objects.
struct PkeyGuard {
  EVP_PKEY* key = nullptr;
  ~PkeyGuard() { EVP_PKEY_free(key); }
};
struct PkeyCtxGuard {
  EVP_PKEY_CTX* ctx = nullptr;
  ~PkeyCtxGuard() { EVP_PKEY_CTX_free(ctx); }
};

}  // namespace

X25519KeyPair x25519_generate(RandomSource& rng) {
  X25519KeyPair pair{SecretBytes::random(kX25519KeySize, rng), {}};
  Result<X25519PublicKey> pub = x25519_public_from_private(pair.private_key.view());
  if (!pub) {
    // Sizes are right by construction, so only allocation can fail here.
    std::fprintf(stderr, "buckwild: X25519 key generation failed: %s\n", pub.error().what);
    std::abort();
  }
  pair.public_key = *pub;
  return pair;
}

Result<X25519PublicKey> x25519_public_from_private(Bytes private_key) {
  if (private_key.size() != kX25519KeySize) {
    return fail(ErrorCode::kInvalidParameter, "X25519 private key must be 32 bytes");
  }
  // OpenSSL keeps its copy of the scalar in secure memory and clears it on free.
  PkeyGuard priv{EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, private_key.data(),
                                              private_key.size())};
  if (priv.key == nullptr)
    return fail(ErrorCode::kMemoryExhausted, "X25519 private key load failed");
  X25519PublicKey pub{};
  std::size_t len = pub.size();
  if (EVP_PKEY_get_raw_public_key(priv.key, pub.data(), &len) != 1 || len != pub.size()) {
    return fail(ErrorCode::kMemoryExhausted, "X25519 public key export failed");
  }
  return pub;
}

Result<SecretBytes> x25519_shared(Bytes private_key, Bytes peer_public) {
  if (private_key.size() != kX25519KeySize || peer_public.size() != kX25519KeySize) {
    return fail(ErrorCode::kInvalidParameter, "X25519 keys must be 32 bytes");
  }
  PkeyGuard priv{EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, private_key.data(),
                                              private_key.size())};
  PkeyGuard peer{EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer_public.data(),
                                             peer_public.size())};
  if (priv.key == nullptr || peer.key == nullptr) {
    return fail(ErrorCode::kMemoryExhausted, "X25519 key load failed");
  }
  PkeyCtxGuard ctx{EVP_PKEY_CTX_new(priv.key, nullptr)};
  if (ctx.ctx == nullptr || EVP_PKEY_derive_init(ctx.ctx) != 1 ||
      EVP_PKEY_derive_set_peer(ctx.ctx, peer.key) != 1) {
    return fail(ErrorCode::kMemoryExhausted, "X25519 derive setup failed");
  }
  SecretBytes shared(kX25519KeySize);
  std::size_t len = shared.size();
  // With well-formed inputs OpenSSL's derive fails only when the result is all
  // zeros (a low-order peer point), so a failure here is an authentication
  // failure. The explicit check below guards providers that do not refuse it.
  if (EVP_PKEY_derive(ctx.ctx, shared.data(), &len) != 1 || len != shared.size() ||
      sodium_is_zero(shared.data(), shared.size()) == 1) {
    return fail(ErrorCode::kAuthenticationFailed, "X25519 shared secret is all zeros");
  }
  return shared;
}

}  // namespace buckwild::crypto

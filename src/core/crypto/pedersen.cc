#include "core/crypto/pedersen.h"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "core/crypto/constant_time.h"
#include "core/crypto/random.h"
#include "core/crypto/secret_bytes.h"

namespace buckwild::crypto {
namespace {

// Hashes a label and input to a uniformly distributed scalar.
void hash_to_scalar(std::string_view label, Bytes input, std::uint8_t out[32]) {
  std::uint8_t wide[crypto_hash_sha512_BYTES];
  crypto_hash_sha512_state st;
  crypto_hash_sha512_init(&st);
  crypto_hash_sha512_update(&st, reinterpret_cast<const std::uint8_t*>(label.data()), label.size());
  crypto_hash_sha512_update(&st, input.data(), input.size());
  crypto_hash_sha512_final(&st, wide);
  crypto_core_ristretto255_scalar_reduce(out, wide);
  sodium_memzero(wide, sizeof wide);
}

// The second generator H, derived once.
const std::uint8_t* generator_h() {
  static const auto h = [] {
    ensure_sodium();
    std::array<std::uint8_t, 32> point{};
    std::uint8_t wide[crypto_hash_sha512_BYTES];
    static constexpr std::string_view kLabel = "buckwild pedersen H v1";
    crypto_hash_sha512(wide, reinterpret_cast<const std::uint8_t*>(kLabel.data()), kLabel.size());
    crypto_core_ristretto255_from_hash(point.data(), wide);
    return point;
  }();
  return h.data();
}

bool canonical_nonzero_scalar(Bytes s) {
  // A scalar is canonical when reducing it (as the low half of a 64-byte value) leaves it unchanged.
  std::uint8_t wide[64] = {};
  std::memcpy(wide, s.data(), 32);
  std::uint8_t reduced[32];
  crypto_core_ristretto255_scalar_reduce(reduced, wide);
  bool canonical = ct_equal(Bytes(reduced, 32), s);
  bool nonzero = !sodium_is_zero(s.data(), 32);
  sodium_memzero(wide, sizeof wide);
  sodium_memzero(reduced, sizeof reduced);
  return canonical && nonzero;
}

}  // namespace

Scalar random_blind(RandomSource& rng) {
  ensure_sodium();
  std::uint8_t wide[64];
  rng.fill(MutableBytes(wide, sizeof wide));
  Scalar s;
  crypto_core_ristretto255_scalar_reduce(s.data(), wide);
  sodium_memzero(wide, sizeof wide);
  return s;
}

Result<Commitment> pedersen_commit(Bytes value, Bytes blind) {
  ensure_sodium();
  if (value.size() != 32 || blind.size() != 32) {
    return fail(ErrorCode::kPedersenCommitmentFailed, "commitment inputs must be 32 bytes");
  }
  if (!canonical_nonzero_scalar(blind)) {
    return fail(ErrorCode::kPedersenCommitmentFailed, "blinding factor is not a canonical non-zero scalar");
  }
  std::uint8_t v[32];
  hash_to_scalar("buckwild pedersen value v1", value, v);
  std::uint8_t vg[32];
  std::uint8_t rh[32];
  // scalarmult fails only if the product is the identity (v or r = 0 mod ℓ).
  bool ok = crypto_scalarmult_ristretto255_base(vg, v) == 0 &&
            crypto_scalarmult_ristretto255(rh, blind.data(), generator_h()) == 0;
  Commitment c{};
  if (ok) ok = crypto_core_ristretto255_add(c.data(), vg, rh) == 0;
  sodium_memzero(v, sizeof v);
  sodium_memzero(vg, sizeof vg);
  sodium_memzero(rh, sizeof rh);
  if (!ok) return fail(ErrorCode::kPedersenCommitmentFailed, "degenerate commitment");
  return c;
}

bool pedersen_verify(const Commitment& commitment, Bytes value, Bytes blind) {
  if (crypto_core_ristretto255_is_valid_point(commitment.data()) != 1) return false;
  auto expected = pedersen_commit(value, blind);
  return expected && ct_equal(*expected, commitment);
}

}  // namespace buckwild::crypto

// Pedersen commitments on ristretto255 (libsodium).
//
//   C = v·G + r·H
//
// G is the ristretto255 base point; H = hash_to_group(SHA-512("buckwild pedersen H v1")),
// whose discrete logarithm to G nobody knows. v is the committed 32-byte value mapped to a
// scalar (SHA-512 of a domain label and the value, reduced mod ℓ), r a uniformly random
// blinding scalar. Perfectly hiding (C reveals nothing about v without r) and
// computationally binding (opening C to another value means solving a discrete log).
#pragma once

#include <array>
#include <cstdint>

#include "core/common/bytes.h"
#include "core/common/error.h"

namespace buckwild::crypto {

class RandomSource;

inline constexpr std::size_t kPedersenSize = 32;
using Commitment = std::array<std::uint8_t, kPedersenSize>;
using Scalar = std::array<std::uint8_t, kPedersenSize>;

// A uniformly random, canonical (< ℓ) blinding scalar from `rng`.
Scalar random_blind(RandomSource& rng);

// The commitment to `value` (32 bytes) with blinding scalar `blind` (32 bytes,
// canonical). Fails with kPedersenCommitmentFailed for a non-canonical or zero
// blind, or wrong sizes.
Result<Commitment> pedersen_commit(Bytes value, Bytes blind);

// True when (value, blind) opens `commitment`. Constant-time in the comparison;
// false for malformed inputs (not a valid encoded point, non-canonical blind).
bool pedersen_verify(const Commitment& commitment, Bytes value, Bytes blind);

}  // namespace buckwild::crypto

// Sources of randomness. The core never calls a global RNG directly: everything
// that needs random bytes takes a RandomSource&, so tests inject a deterministic one.
#pragma once

#include "core/common/bytes.h"

namespace buckwild::crypto {

class RandomSource {
 public:
  virtual ~RandomSource() = default;
  // Fills `out` completely. Implementations must not fail partially.
  virtual void fill(MutableBytes out) = 0;
};

// The operating system's CSPRNG through OpenSSL's RAND_bytes (seeded from
// getrandom). Aborts if the generator reports failure: no key may be made from
// weak randomness.
class SystemRandom final : public RandomSource {
 public:
  void fill(MutableBytes out) override;
};

// A deterministic stream for tests and the simulator: ChaCha20 keystream under a
// key expanded from `seed`. Never used for real keys.
class DeterministicRandom final : public RandomSource {
 public:
  explicit DeterministicRandom(std::uint64_t seed);
  void fill(MutableBytes out) override;

 private:
  std::uint64_t seed_;
  std::uint64_t counter_ = 0;
};

}  // namespace buckwild::crypto

#include "core/crypto/pedersen.h"

#include <gtest/gtest.h>

#include "core/crypto/random.h"

namespace buckwild::crypto {
namespace {

std::array<std::uint8_t, 32> value(std::uint8_t fill) {
  std::array<std::uint8_t, 32> v;
  v.fill(fill);
  return v;
}

TEST(PedersenTest, CommitmentOpensWithItsValueAndBlindOnly) {
  DeterministicRandom rng(1);
  Scalar r = random_blind(rng);
  auto v = value(0x11);
  auto c = pedersen_commit(v, r);
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(pedersen_verify(*c, v, r));
  EXPECT_FALSE(pedersen_verify(*c, value(0x12), r));
  Scalar other = random_blind(rng);
  EXPECT_FALSE(pedersen_verify(*c, v, other));
  Commitment tampered = *c;
  tampered[0] ^= 1;
  EXPECT_FALSE(pedersen_verify(tampered, v, r));
}

TEST(PedersenTest, HidingSameValueDifferentBlindsDiffer) {
  DeterministicRandom rng(2);
  auto v = value(0x42);
  auto a = pedersen_commit(v, random_blind(rng));
  auto b = pedersen_commit(v, random_blind(rng));
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
}

TEST(PedersenTest, DeterministicForFixedInputs) {
  DeterministicRandom rng(3);
  Scalar r = random_blind(rng);
  EXPECT_EQ(pedersen_commit(value(7), r).value(), pedersen_commit(value(7), r).value());
}

TEST(PedersenTest, RejectsBadBlinds) {
  auto v = value(1);
  Scalar zero{};
  EXPECT_FALSE(pedersen_commit(v, zero).has_value());
  Scalar big;
  big.fill(0xFF);  // far above the group order: not canonical
  EXPECT_FALSE(pedersen_commit(v, big).has_value());
  std::array<std::uint8_t, 31> short_blind{};
  EXPECT_FALSE(pedersen_commit(v, short_blind).has_value());
  EXPECT_FALSE(pedersen_verify(Commitment{}, v, big));
}

TEST(PedersenTest, RandomBlindsAreCanonical) {
  DeterministicRandom rng(4);
  for (int i = 0; i < 100; ++i) {
    Scalar r = random_blind(rng);
    EXPECT_TRUE(pedersen_commit(value(9), r).has_value()) << i;
  }
}

}  // namespace
}  // namespace buckwild::crypto

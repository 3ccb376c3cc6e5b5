#include "core/crypto/random.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace buckwild::crypto {
namespace {

std::vector<std::uint8_t> hex(std::string_view s) {
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i + 1 < s.size(); i += 2) {
    out.push_back(static_cast<std::uint8_t>(std::stoi(std::string(s.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

std::vector<std::uint8_t> draw(RandomSource& rng, std::size_t n) {
  std::vector<std::uint8_t> out(n);
  rng.fill(out);
  return out;
}

TEST(RandomTest, SameSeedSameStream) {
  DeterministicRandom a(42);
  DeterministicRandom b(42);
  EXPECT_EQ(draw(a, 300), draw(b, 300));
  EXPECT_EQ(draw(a, 17), draw(b, 17));
}

TEST(RandomTest, DifferentSeedsDiffer) {
  DeterministicRandom a(42);
  DeterministicRandom b(43);
  EXPECT_NE(draw(a, 32), draw(b, 32));
}

TEST(RandomTest, SuccessiveFillsContinueTheStream) {
  DeterministicRandom whole(5);
  DeterministicRandom split(5);
  auto expected = draw(whole, 32);
  auto first = draw(split, 10);
  auto second = draw(split, 22);
  first.insert(first.end(), second.begin(), second.end());
  EXPECT_EQ(first, expected);
}

TEST(RandomTest, SlicingAcrossBlockBoundariesDoesNotMatter) {
  DeterministicRandom whole(9);
  DeterministicRandom split(9);
  auto expected = draw(whole, 1000);
  std::vector<std::uint8_t> got;
  for (std::size_t n : {1u, 63u, 0u, 64u, 65u, 127u, 200u, 3u, 477u}) {
    auto part = draw(split, n);
    got.insert(got.end(), part.begin(), part.end());
  }
  ASSERT_EQ(got.size(), expected.size());
  EXPECT_EQ(got, expected);
}

// Pins the stream definition (key = SHA-256(label || seed_be64), ChaCha20 from
// block 0, all-zero nonce) so it stays identical across builds and machines.
TEST(RandomTest, StreamIsPinned) {
  DeterministicRandom one(1);
  auto s = draw(one, 132);
  EXPECT_EQ(std::vector<std::uint8_t>(s.begin(), s.begin() + 32),
            hex("e70cf8199f008dcb39a4e9208bb7467effc7b5e92524fa22efb98c197db858f1"));
  EXPECT_EQ(std::vector<std::uint8_t>(s.begin() + 100, s.end()),
            hex("64fa8810a05bef2b60ad563026bd429b1f118908a8f7da4860b6d7cc9a4d649c"));
  DeterministicRandom big(0x0123456789abcdefULL);
  EXPECT_EQ(draw(big, 32), hex("fbd4c1130f2252164abe9be8d8f0e2e54a9c04679d939c37d017cf7b6b3d3ee7"));
}

TEST(RandomTest, SystemRandomFillsAndVaries) {
  SystemRandom rng;
  auto a = draw(rng, 64);
  auto b = draw(rng, 64);
  EXPECT_NE(a, b);  // fails with probability 2^-512
  EXPECT_NE(a, std::vector<std::uint8_t>(64, 0));
  std::vector<std::uint8_t> empty;
  rng.fill(empty);  // must not crash on an empty span
}

}  // namespace
}  // namespace buckwild::crypto

#include "core/crypto/secret_bytes.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "core/crypto/random.h"

namespace buckwild::crypto {
namespace {

const std::vector<std::uint8_t> kSample = {1, 2, 3, 4, 5, 6, 7, 8, 9};

TEST(SecretBytesTest, EveryWipeIsVerifiedInEveryBuild) {
  // Issue #20, defect 9: the read-back check ran only in debug builds.
  const std::uint64_t before = SecretBytes::wipes_verified();
  { SecretBytes s(32); }
  { SecretBytes s(4096); }  // its own sodium_malloc, not a pool slot
  { SecretBytes s; }        // empty: nothing to wipe
  EXPECT_EQ(SecretBytes::wipes_verified(), before + 2);
}

TEST(SecretBytesTest, DefaultIsEmpty) {
  SecretBytes s;
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.data(), nullptr);
  EXPECT_TRUE(s.view().empty());
}

TEST(SecretBytesTest, SizedIsZeroed) {
  SecretBytes s(48);
  ASSERT_EQ(s.size(), 48u);
  ASSERT_NE(s.data(), nullptr);
  EXPECT_FALSE(s.empty());
  for (std::size_t i = 0; i < s.size(); ++i) EXPECT_EQ(s.data()[i], 0) << i;
  s.mutable_view()[47] = 0xff;
  EXPECT_EQ(s.view()[47], 0xff);
}

TEST(SecretBytesTest, ZeroSizeAllocatesNothing) {
  SecretBytes s(0);
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.data(), nullptr);
  EXPECT_TRUE(s.equals({}));
}

TEST(SecretBytesTest, CopyOf) {
  SecretBytes s = SecretBytes::copy_of(kSample);
  ASSERT_EQ(s.size(), kSample.size());
  EXPECT_EQ(std::vector<std::uint8_t>(s.data(), s.data() + s.size()), kSample);
  EXPECT_NE(s.data(), kSample.data());
  EXPECT_TRUE(SecretBytes::copy_of({}).empty());
}

TEST(SecretBytesTest, MoveConstructLeavesSourceEmpty) {
  SecretBytes a = SecretBytes::copy_of(kSample);
  const std::uint8_t* p = a.data();
  SecretBytes b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): checking the contract
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(b.data(), p);
  EXPECT_TRUE(b.equals(kSample));
}

TEST(SecretBytesTest, MoveAssignReplacesAndEmptiesSource) {
  SecretBytes a = SecretBytes::copy_of(kSample);
  SecretBytes b(5);
  b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(b.equals(kSample));
  SecretBytes& same = b;
  b = std::move(same);  // self-move keeps the contents
  EXPECT_TRUE(b.equals(kSample));
}

TEST(SecretBytesTest, Equals) {
  SecretBytes s = SecretBytes::copy_of(kSample);
  EXPECT_TRUE(s.equals(kSample));
  auto changed = kSample;
  changed[8] ^= 1;
  EXPECT_FALSE(s.equals(changed));
  EXPECT_FALSE(s.equals(Bytes(kSample).first(8)));
  EXPECT_FALSE(s.equals({}));
}

TEST(SecretBytesTest, RandomFillsFromSource) {
  DeterministicRandom r1(99);
  DeterministicRandom r2(99);
  SecretBytes s = SecretBytes::random(32, r1);
  std::vector<std::uint8_t> expected(32);
  r2.fill(expected);
  ASSERT_EQ(s.size(), 32u);
  EXPECT_TRUE(s.equals(expected));
  EXPECT_FALSE(s.equals(std::vector<std::uint8_t>(32, 0)));
}

}  // namespace
}  // namespace buckwild::crypto

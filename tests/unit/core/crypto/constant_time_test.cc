#include "core/crypto/constant_time.h"

#include <gtest/gtest.h>

#include <vector>

namespace buckwild::crypto {
namespace {

TEST(ConstantTimeTest, Equal) {
  std::vector<std::uint8_t> a = {0, 1, 2, 3, 0xff};
  std::vector<std::uint8_t> b = a;
  EXPECT_TRUE(ct_equal(a, b));
}

TEST(ConstantTimeTest, DifferentContents) {
  std::vector<std::uint8_t> a = {0, 1, 2, 3, 0xff};
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto b = a;
    b[i] ^= 0x01;
    EXPECT_FALSE(ct_equal(a, b)) << i;
  }
}

TEST(ConstantTimeTest, DifferentLengths) {
  std::vector<std::uint8_t> a = {7, 7, 7};
  std::vector<std::uint8_t> prefix = {7, 7};
  EXPECT_FALSE(ct_equal(a, prefix));
  EXPECT_FALSE(ct_equal(prefix, a));
  EXPECT_FALSE(ct_equal(a, {}));
}

TEST(ConstantTimeTest, Empty) {
  std::vector<std::uint8_t> a;
  EXPECT_TRUE(ct_equal({}, {}));
  EXPECT_TRUE(ct_equal(a, Bytes{}));
}

}  // namespace
}  // namespace buckwild::crypto

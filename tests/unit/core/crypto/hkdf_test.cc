#include "core/crypto/hkdf.h"

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

std::vector<std::uint8_t> range(int first, int last) {
  std::vector<std::uint8_t> out;
  for (int b = first; b <= last; ++b) out.push_back(static_cast<std::uint8_t>(b));
  return out;
}

std::vector<std::uint8_t> vec(const SecretBytes& s) {
  return {s.data(), s.data() + s.size()};
}

struct Rfc5869Case {
  const char* name;
  std::vector<std::uint8_t> ikm, salt, info;
  std::size_t length;
  std::vector<std::uint8_t> prk, okm;
};

std::vector<Rfc5869Case> rfc5869_cases() {
  return {
      {"A.1", std::vector<std::uint8_t>(22, 0x0b), range(0x00, 0x0c), range(0xf0, 0xf9), 42,
       hex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"),
       hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
           "34007208d5b887185865")},
      {"A.2", range(0x00, 0x4f), range(0x60, 0xaf), range(0xb0, 0xff), 82,
       hex("06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244"),
       hex("b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
           "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
           "cc30c58179ec3e87c14c01d5c1f3434f1d87")},
      {"A.3",
       std::vector<std::uint8_t>(22, 0x0b),
       {},
       {},
       42,
       hex("19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04"),
       hex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
           "9d201395faa4b61a96c8")},
  };
}

TEST(HkdfTest, Rfc5869ExtractThenExpand) {
  for (const auto& c : rfc5869_cases()) {
    SCOPED_TRACE(c.name);
    SecretBytes prk = hkdf_extract(c.salt, c.ikm);
    EXPECT_EQ(vec(prk), c.prk);
    auto okm = hkdf_expand(prk.view(), c.info, c.length);
    ASSERT_TRUE(okm.has_value());
    EXPECT_EQ(vec(*okm), c.okm);
  }
}

TEST(HkdfTest, Rfc5869Combined) {
  for (const auto& c : rfc5869_cases()) {
    SCOPED_TRACE(c.name);
    auto okm = hkdf(c.salt, c.ikm, c.info, c.length);
    ASSERT_TRUE(okm.has_value());
    EXPECT_EQ(vec(*okm), c.okm);
  }
}

TEST(HkdfTest, EmptySaltEqualsZeroSalt) {
  auto ikm = range(1, 40);
  EXPECT_EQ(vec(hkdf_extract({}, ikm)), vec(hkdf_extract(std::vector<std::uint8_t>(32, 0), ikm)));
}

TEST(HkdfTest, ShorterOutputIsPrefix) {
  auto c = rfc5869_cases()[1];
  auto okm = hkdf(c.salt, c.ikm, c.info, 33);
  ASSERT_TRUE(okm.has_value());
  EXPECT_EQ(vec(*okm), std::vector<std::uint8_t>(c.okm.begin(), c.okm.begin() + 33));
}

TEST(HkdfTest, LengthBounds) {
  std::vector<std::uint8_t> prk(32, 0x42);
  auto zero = hkdf_expand(prk, {}, 0);
  ASSERT_FALSE(zero.has_value());
  EXPECT_EQ(zero.error().code, ErrorCode::kInvalidParameter);
  auto too_long = hkdf_expand(prk, {}, 255 * 32 + 1);
  ASSERT_FALSE(too_long.has_value());
  EXPECT_EQ(too_long.error().code, ErrorCode::kInvalidParameter);
  auto max = hkdf_expand(prk, {}, 255 * 32);
  ASSERT_TRUE(max.has_value());
  EXPECT_EQ(max->size(), 255u * 32u);
}

TEST(HkdfTest, RejectsShortPrk) {
  std::vector<std::uint8_t> prk(31, 0x42);
  auto okm = hkdf_expand(prk, {}, 32);
  ASSERT_FALSE(okm.has_value());
  EXPECT_EQ(okm.error().code, ErrorCode::kInvalidParameter);
}

}  // namespace
}  // namespace buckwild::crypto

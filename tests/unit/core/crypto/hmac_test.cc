#include "core/crypto/hmac.h"

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

std::vector<std::uint8_t> text(std::string_view s) {
  return {s.begin(), s.end()};
}

std::vector<std::uint8_t> repeat(std::uint8_t b, std::size_t n) {
  return std::vector<std::uint8_t>(n, b);
}

struct Rfc4231Case {
  const char* name;
  std::vector<std::uint8_t> key;
  std::vector<std::uint8_t> data;
  std::vector<std::uint8_t> mac;  // full 32 bytes, or 16 for the truncation case
};

std::vector<Rfc4231Case> rfc4231_cases() {
  return {
      {"1", repeat(0x0b, 20), text("Hi There"),
       hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")},
      {"2", text("Jefe"), text("what do ya want for nothing?"),
       hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")},
      {"3", repeat(0xaa, 20), repeat(0xdd, 50),
       hex("773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe")},
      {"4", hex("0102030405060708090a0b0c0d0e0f10111213141516171819"), repeat(0xcd, 50),
       hex("82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b")},
      {"5", repeat(0x0c, 20), text("Test With Truncation"),
       hex("a3b6167473100ee06e0c796c2955552b")},
      {"6", repeat(0xaa, 131), text("Test Using Larger Than Block-Size Key - Hash Key First"),
       hex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")},
      {"7", repeat(0xaa, 131),
       text("This is a test using a larger than block-size key and a larger than block-size "
            "data. The key needs to be hashed before being used by the HMAC algorithm."),
       hex("9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2")},
  };
}

std::vector<std::uint8_t> prefix(const Digest& d, std::size_t n) {
  return {d.begin(), d.begin() + n};
}

TEST(HmacTest, Rfc4231OneShot) {
  for (const auto& c : rfc4231_cases()) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(prefix(hmac_sha256(c.key, {c.data}), c.mac.size()), c.mac);
  }
}

TEST(HmacTest, Rfc4231Case5TruncatesTo128Bits) {
  auto c = rfc4231_cases()[4];
  ASSERT_EQ(c.mac.size(), kHmac128Size);
  EXPECT_EQ(prefix(hmac_sha256(c.key, {c.data}), kHmac128Size), c.mac);
}

TEST(HmacTest, Rfc4231KeyedContextReusedAcrossMessages) {
  for (const auto& c : rfc4231_cases()) {
    SCOPED_TRACE(c.name);
    auto mac = HmacSha256::create(c.key);
    ASSERT_TRUE(mac.has_value());
    // Several messages through one context: the key must survive re-init.
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(prefix(mac->compute({c.data}), c.mac.size()), c.mac);
      mac->compute({text("interleaved other message")});
    }
  }
}

TEST(HmacTest, PartsAreConcatenated) {
  auto c = rfc4231_cases()[6];
  Bytes all(c.data);
  Digest split = hmac_sha256(c.key, {all.first(7), Bytes{}, all.subspan(7, 50), all.subspan(57)});
  EXPECT_EQ(prefix(split, 32), c.mac);
}

TEST(HmacTest, MovedContextStillWorks) {
  auto c = rfc4231_cases()[1];
  auto mac = HmacSha256::create(c.key);
  ASSERT_TRUE(mac.has_value());
  HmacSha256 moved = std::move(*mac);
  EXPECT_EQ(prefix(moved.compute({c.data}), 32), c.mac);
  auto other = HmacSha256::create(text("another key"));
  ASSERT_TRUE(other.has_value());
  *other = std::move(moved);
  EXPECT_EQ(prefix(other->compute({c.data}), 32), c.mac);
}

TEST(HmacTest, EmptyKeyAndMessage) {
  // HMAC-SHA256("", "") — a widely published value.
  EXPECT_EQ(prefix(hmac_sha256({}, {}), 32),
            hex("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"));
}

TEST(HmacTest, Sha256KnownAnswers) {
  // FIPS 180-2 examples.
  EXPECT_EQ(prefix(sha256({text("abc")}), 32),
            hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  EXPECT_EQ(prefix(sha256({}), 32),
            hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
  auto msg = text("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq");
  Bytes m(msg);
  EXPECT_EQ(prefix(sha256({m.first(10), m.subspan(10)}), 32),
            hex("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
}

}  // namespace
}  // namespace buckwild::crypto

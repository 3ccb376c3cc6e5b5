#include "core/crypto/aead.h"

#include <gtest/gtest.h>

#include <algorithm>
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

template <std::size_t N>
std::array<std::uint8_t, N> arr(std::string_view s) {
  auto v = hex(s);
  std::array<std::uint8_t, N> out{};
  EXPECT_EQ(v.size(), N);
  std::copy_n(v.begin(), std::min(N, v.size()), out.begin());
  return out;
}

std::vector<std::uint8_t> vec(const AeadTag& t) {
  return {t.begin(), t.end()};
}

Aead make(AeadAlgorithm algorithm, Bytes key) {
  auto aead = Aead::create(algorithm, key);
  EXPECT_TRUE(aead.has_value());
  return std::move(*aead);
}

// RFC 8439 §2.8.2.
constexpr std::string_view kRfc8439Plaintext =
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
    "sunscreen would be it.";

TEST(AeadTest, ChaCha20Poly1305Rfc8439) {
  auto key = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
  auto nonce = arr<12>("070000004041424344454647");
  auto aad = hex("50515253c0c1c2c3c4c5c6c7");
  auto expected_ct =
      hex("d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
          "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
          "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
          "3ff4def08e4b7a9de576d26586cec64b6116");
  auto expected_tag = hex("1ae10b594f09e26a7e902ecbd0600691");

  Aead aead = make(AeadAlgorithm::kChaCha20Poly1305, key);
  std::vector<std::uint8_t> data(kRfc8439Plaintext.begin(), kRfc8439Plaintext.end());
  ASSERT_EQ(data.size(), 114u);
  AeadTag tag{};
  ASSERT_TRUE(aead.seal(nonce, aad, data, tag).has_value());
  EXPECT_EQ(data, expected_ct);
  EXPECT_EQ(vec(tag), expected_tag);

  ASSERT_TRUE(aead.open(nonce, aad, data, tag).has_value());
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()),
            kRfc8439Plaintext);
}

// McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16
// (256-bit key, 96-bit IV, 60-byte plaintext, 20-byte AAD).
TEST(AeadTest, Aes256GcmKnownAnswer) {
  auto key = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  auto nonce = arr<12>("cafebabefacedbaddecaf888");
  auto aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  auto plaintext =
      hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
          "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
  auto expected_ct =
      hex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
          "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662");
  auto expected_tag = hex("76fc6ece0f4e1768cddf8853bb2d551b");

  Aead aead = make(AeadAlgorithm::kAes256Gcm, key);
  auto data = plaintext;
  AeadTag tag{};
  ASSERT_TRUE(aead.seal(nonce, aad, data, tag).has_value());
  EXPECT_EQ(data, expected_ct);
  EXPECT_EQ(vec(tag), expected_tag);
  ASSERT_TRUE(aead.open(nonce, aad, data, tag).has_value());
  EXPECT_EQ(data, plaintext);
}

class AeadBothTest : public ::testing::TestWithParam<AeadAlgorithm> {
 protected:
  std::vector<std::uint8_t> key_ =
      hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  AeadNonce nonce_ = arr<12>("0f0e0d0c0b0a090807060504");
  std::vector<std::uint8_t> aad_ = hex("a0a1a2a3a4a5");
  std::vector<std::uint8_t> plaintext_ =
      hex("48656c6c6f2c2062756c6c776869702074756e6e656c21212121");
};

TEST_P(AeadBothTest, RoundTripAcrossManyNonces) {
  Aead aead = make(GetParam(), key_);
  EXPECT_EQ(aead.algorithm(), GetParam());
  std::vector<std::uint8_t> previous;
  for (std::uint8_t i = 0; i < 5; ++i) {
    AeadNonce nonce = nonce_;
    nonce[11] = i;
    auto data = plaintext_;
    AeadTag tag{};
    ASSERT_TRUE(aead.seal(nonce, aad_, data, tag).has_value());
    EXPECT_NE(data, plaintext_);
    EXPECT_NE(data, previous);  // a fresh nonce gives a fresh keystream
    previous = data;
    ASSERT_TRUE(aead.open(nonce, aad_, data, tag).has_value());
    EXPECT_EQ(data, plaintext_);
  }
}

TEST_P(AeadBothTest, EmptyPlaintextAndAad) {
  Aead aead = make(GetParam(), key_);
  std::vector<std::uint8_t> empty;
  AeadTag tag{};
  ASSERT_TRUE(aead.seal(nonce_, {}, empty, tag).has_value());
  EXPECT_NE(vec(tag), std::vector<std::uint8_t>(16, 0));
  EXPECT_TRUE(aead.open(nonce_, {}, empty, tag).has_value());
  tag[0] ^= 1;
  auto bad = aead.open(nonce_, {}, empty, tag);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, ErrorCode::kAuthenticationFailed);
}

TEST_P(AeadBothTest, TamperingIsDetected) {
  Aead aead = make(GetParam(), key_);
  auto sealed = plaintext_;
  AeadTag tag{};
  ASSERT_TRUE(aead.seal(nonce_, aad_, sealed, tag).has_value());

  auto expect_rejected = [&](AeadNonce nonce, std::vector<std::uint8_t> aad,
                             std::vector<std::uint8_t> data, AeadTag t) {
    auto r = aead.open(nonce, aad, data, t);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::kAuthenticationFailed);
  };
  {
    SCOPED_TRACE("ciphertext");
    auto data = sealed;
    data[3] ^= 0x10;
    expect_rejected(nonce_, aad_, data, tag);
  }
  {
    SCOPED_TRACE("aad");
    auto aad = aad_;
    aad[0] ^= 0x01;
    expect_rejected(nonce_, aad, sealed, tag);
  }
  {
    SCOPED_TRACE("tag");
    AeadTag t = tag;
    t[15] ^= 0x80;
    expect_rejected(nonce_, aad_, sealed, t);
  }
  {
    SCOPED_TRACE("nonce");
    AeadNonce n = nonce_;
    n[0] ^= 0x01;
    expect_rejected(n, aad_, sealed, tag);
  }
  // A failed open leaves the context usable for the genuine message.
  auto data = sealed;
  ASSERT_TRUE(aead.open(nonce_, aad_, data, tag).has_value());
  EXPECT_EQ(data, plaintext_);
}

TEST_P(AeadBothTest, WrongKeyIsRejected) {
  Aead aead = make(GetParam(), key_);
  auto data = plaintext_;
  AeadTag tag{};
  ASSERT_TRUE(aead.seal(nonce_, aad_, data, tag).has_value());
  auto other_key = key_;
  other_key[31] ^= 1;
  Aead other = make(GetParam(), other_key);
  auto r = other.open(nonce_, aad_, data, tag);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kAuthenticationFailed);
}

TEST_P(AeadBothTest, MoveKeepsKey) {
  Aead aead = make(GetParam(), key_);
  auto data = plaintext_;
  AeadTag tag{};
  ASSERT_TRUE(aead.seal(nonce_, aad_, data, tag).has_value());
  Aead moved = std::move(aead);
  Aead assigned =
      make(GetParam(), hex("ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00"));
  assigned = std::move(moved);
  ASSERT_TRUE(assigned.open(nonce_, aad_, data, tag).has_value());
  EXPECT_EQ(data, plaintext_);
}

TEST_P(AeadBothTest, RejectsWrongKeySize) {
  for (std::size_t n : {0u, 16u, 31u, 33u}) {
    std::vector<std::uint8_t> key(n, 0x11);
    auto r = Aead::create(GetParam(), key);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidParameter);
  }
}

INSTANTIATE_TEST_SUITE_P(Algorithms, AeadBothTest,
                         ::testing::Values(AeadAlgorithm::kChaCha20Poly1305,
                                           AeadAlgorithm::kAes256Gcm),
                         [](const auto& p) {
                           return p.param == AeadAlgorithm::kAes256Gcm
                                      ? std::string("Aes256Gcm")
                                      : std::string("ChaCha20Poly1305");
                         });

}  // namespace
}  // namespace buckwild::crypto

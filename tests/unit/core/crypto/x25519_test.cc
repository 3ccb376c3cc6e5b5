#include "core/crypto/x25519.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "core/crypto/random.h"

namespace buckwild::crypto {
namespace {

std::vector<std::uint8_t> hex(std::string_view s) {
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i + 1 < s.size(); i += 2) {
    out.push_back(static_cast<std::uint8_t>(std::stoi(std::string(s.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

std::vector<std::uint8_t> vec(const SecretBytes& s) {
  return {s.data(), s.data() + s.size()};
}
std::vector<std::uint8_t> vec(const X25519PublicKey& k) {
  return {k.begin(), k.end()};
}

// RFC 7748 §5.2, the two single-iteration vectors.
TEST(X25519Test, Rfc7748ScalarMultiplication) {
  struct Case {
    const char* scalar;
    const char* u;
    const char* out;
  };
  const Case cases[] = {
      {"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
       "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
       "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
      {"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
       "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
       "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.scalar);
    auto shared = x25519_shared(hex(c.scalar), hex(c.u));
    ASSERT_TRUE(shared.has_value());
    EXPECT_EQ(vec(*shared), hex(c.out));
  }
}

// RFC 7748 §6.1.
TEST(X25519Test, Rfc7748DiffieHellman) {
  auto alice_private = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  auto alice_public = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  auto bob_private = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  auto bob_public = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  auto expected = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");

  auto a_pub = x25519_public_from_private(alice_private);
  auto b_pub = x25519_public_from_private(bob_private);
  ASSERT_TRUE(a_pub.has_value());
  ASSERT_TRUE(b_pub.has_value());
  EXPECT_EQ(vec(*a_pub), alice_public);
  EXPECT_EQ(vec(*b_pub), bob_public);

  auto k_alice = x25519_shared(alice_private, bob_public);
  auto k_bob = x25519_shared(bob_private, alice_public);
  ASSERT_TRUE(k_alice.has_value());
  ASSERT_TRUE(k_bob.has_value());
  EXPECT_EQ(vec(*k_alice), expected);
  EXPECT_EQ(vec(*k_bob), expected);
}

TEST(X25519Test, GeneratedPairsAgree) {
  DeterministicRandom rng(7);
  X25519KeyPair a = x25519_generate(rng);
  X25519KeyPair b = x25519_generate(rng);
  ASSERT_EQ(a.private_key.size(), kX25519KeySize);
  EXPECT_FALSE(a.private_key.equals(b.private_key.view()));
  EXPECT_NE(a.public_key, b.public_key);
  auto a_pub = x25519_public_from_private(a.private_key.view());
  ASSERT_TRUE(a_pub.has_value());
  EXPECT_EQ(*a_pub, a.public_key);

  auto ab = x25519_shared(a.private_key.view(), b.public_key);
  auto ba = x25519_shared(b.private_key.view(), a.public_key);
  ASSERT_TRUE(ab.has_value());
  ASSERT_TRUE(ba.has_value());
  EXPECT_TRUE(ab->equals(ba->view()));
}

TEST(X25519Test, RejectsLowOrderPeer) {
  auto priv = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  // u = 0 and u = 1 are points of small order: the shared secret is all zeros.
  std::vector<std::uint8_t> zero(32, 0);
  std::vector<std::uint8_t> one(32, 0);
  one[0] = 1;
  for (const auto& peer : {zero, one}) {
    auto shared = x25519_shared(priv, peer);
    ASSERT_FALSE(shared.has_value());
    EXPECT_EQ(shared.error().code, ErrorCode::kAuthenticationFailed);
  }
}

TEST(X25519Test, RejectsWrongSizes) {
  std::vector<std::uint8_t> good(32, 0x42);
  std::vector<std::uint8_t> short_key(31, 0x42);
  std::vector<std::uint8_t> long_key(33, 0x42);
  EXPECT_EQ(x25519_public_from_private(short_key).error().code, ErrorCode::kInvalidParameter);
  EXPECT_EQ(x25519_public_from_private(long_key).error().code, ErrorCode::kInvalidParameter);
  EXPECT_EQ(x25519_shared(short_key, good).error().code, ErrorCode::kInvalidParameter);
  EXPECT_EQ(x25519_shared(good, long_key).error().code, ErrorCode::kInvalidParameter);
  EXPECT_EQ(x25519_shared({}, {}).error().code, ErrorCode::kInvalidParameter);
}

}  // namespace
}  // namespace buckwild::crypto

#include "daemon/config/secret_base64.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace buckwild::daemon {
namespace {

Bytes text(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string as_string(const crypto::SecretBytes& s) {
  return std::string(reinterpret_cast<const char*>(s.data()), s.size());
}

TEST(SecretBase64Test, EncodesRfc4648Vectors) {
  EXPECT_EQ(as_string(encode_base64_secret(text(""))), "");
  EXPECT_EQ(as_string(encode_base64_secret(text("f"))), "Zg==");
  EXPECT_EQ(as_string(encode_base64_secret(text("fo"))), "Zm8=");
  EXPECT_EQ(as_string(encode_base64_secret(text("foo"))), "Zm9v");
  EXPECT_EQ(as_string(encode_base64_secret(text("foobar"))), "Zm9vYmFy");
}

TEST(SecretBase64Test, DecodesWithAndWithoutPadding) {
  auto a = decode_base64_secret(text("Zm9vYg=="));
  ASSERT_TRUE(a);
  EXPECT_EQ(as_string(*a), "foob");
  auto b = decode_base64_secret(text("Zm9vYg"));
  ASSERT_TRUE(b);
  EXPECT_EQ(as_string(*b), "foob");
  auto c = decode_base64_secret(text("Zm9vYmFy"));
  ASSERT_TRUE(c);
  EXPECT_EQ(as_string(*c), "foobar");
}

// Found by fuzz_psk: libsodium 1.0.18 takes bytes from 0x80 up for base64
// characters, so a key with one stray non-ASCII byte decoded to some other key.
TEST(SecretBase64Test, RefusesBytesAboveAscii) {
  for (std::string bad : {std::string("Zm9v\xc2mFy"), std::string("Zm9vYmF\xff"), std::string("\x80\x80\x80\x80")}) {
    auto r = decode_base64_secret(text(bad));
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error(), Base64Problem::kInvalid);
  }
}

TEST(SecretBase64Test, TrimsOuterWhitespaceOnly) {
  auto a = decode_base64_secret(text("  Zm9vYmFy\n"));
  ASSERT_TRUE(a);
  EXPECT_EQ(as_string(*a), "foobar");
  auto b = decode_base64_secret(text("Zm9v YmFy"));
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error(), Base64Problem::kInvalid);
}

TEST(SecretBase64Test, RejectsBadInput) {
  EXPECT_EQ(decode_base64_secret(text("")).error(), Base64Problem::kEmpty);
  EXPECT_EQ(decode_base64_secret(text(" \n")).error(), Base64Problem::kEmpty);
  EXPECT_EQ(decode_base64_secret(text("Zm9v!mFy")).error(), Base64Problem::kInvalid);
  EXPECT_EQ(decode_base64_secret(text("Zm9vY")).error(), Base64Problem::kInvalid);    // 5 chars
  EXPECT_EQ(decode_base64_secret(text("Zm9vYg=")).error(), Base64Problem::kInvalid);  // bad padding
  EXPECT_EQ(decode_base64_secret(text("Zm9vYmFy-_")).error(),
            Base64Problem::kInvalid);  // URL alphabet
}

TEST(SecretBase64Test, RoundTripsRandomKeys) {
  for (std::size_t n : {16u, 31u, 32u, 33u, 64u}) {
    std::vector<std::uint8_t> key(n);
    for (std::size_t i = 0; i < n; ++i) key[i] = static_cast<std::uint8_t>(i * 37 + n);
    auto encoded = encode_base64_secret(key);
    auto decoded = decode_base64_secret(encoded.view());
    ASSERT_TRUE(decoded);
    EXPECT_TRUE(decoded->equals(key)) << n;
  }
}

}  // namespace
}  // namespace buckwild::daemon

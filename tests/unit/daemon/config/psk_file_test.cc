#include "daemon/config/psk_file.h"

#include <gtest/gtest.h>

#include <string>

#include "support/daemon_test_support.h"

namespace buckwild::daemon {
namespace {

using testing::TempDir;

constexpr const char* kKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

Bytes text(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

TEST(PskFileTest, DecodesKeysOf16To64Bytes) {
  auto k = decode_psk(text(kKey));
  ASSERT_TRUE(k);
  EXPECT_EQ(k->size(), 32u);
  EXPECT_TRUE(decode_psk(text(std::string(22, 'A'))));  // 16 bytes
  EXPECT_TRUE(decode_psk(text(std::string(86, 'A'))));  // 64 bytes
  EXPECT_EQ(decode_psk(text(std::string(20, 'A'))).error(),
            "decodes to 15 bytes; a PSK must be 16..64 bytes (buckwild genpsk makes 32)");
  EXPECT_EQ(decode_psk(text(std::string(88, 'A'))).error(),
            "decodes to 66 bytes; a PSK must be 16..64 bytes (buckwild genpsk makes 32)");
  EXPECT_EQ(decode_psk(text("")).error(), "is empty");
  EXPECT_EQ(decode_psk(text("not*base64")).error(), "is not valid base64 (standard alphabet)");
}

TEST(PskFileTest, ReadsAPrivateKeyFile) {
  TempDir dir;
  std::string path = dir.write("psk", std::string(kKey) + "\n", 0600);
  auto k = read_psk_file(path);
  ASSERT_TRUE(k) << k.error();
  EXPECT_EQ(k->size(), 32u);
  EXPECT_EQ(k->data()[5], 5);
  ASSERT_EQ(::chmod(path.c_str(), 0400), 0);
  EXPECT_TRUE(read_psk_file(path));
}

TEST(PskFileTest, RefusesFilesOthersCanReachAndSaysHowToFixIt) {
  TempDir dir;
  for (mode_t mode : {0644, 0640, 0604, 0660, 0610, 0601}) {
    std::string path = dir.write("psk", std::string(kKey) + "\n", mode);
    ::chmod(path.c_str(), mode);
    auto k = read_psk_file(path);
    ASSERT_FALSE(k) << std::oct << mode;
    char m[8];
    std::snprintf(m, sizeof m, "%04o", static_cast<unsigned>(mode));
    EXPECT_EQ(k.error(),
              path + " is accessible by group or others (mode " + m + "); run: chmod 600 " + path);
  }
}

TEST(PskFileTest, OtherProblemsNameThePathButNeverTheKey) {
  TempDir dir;
  EXPECT_EQ(read_psk_file(dir.path() + "/absent").error(),
            "cannot open " + dir.path() + "/absent: No such file or directory");
  EXPECT_EQ(read_psk_file(dir.path()).error(), dir.path() + " is not a regular file");
  std::string big = dir.write("big", std::string(5000, 'A'), 0600);
  EXPECT_EQ(read_psk_file(big).error(), big + " is larger than 4 KiB; that is not a key file");
  std::string secret = "MySecretPassphraseNotBase64!";
  std::string bad = dir.write("bad", secret + "\n", 0600);
  auto k = read_psk_file(bad);
  ASSERT_FALSE(k);
  EXPECT_EQ(k.error(), "the key in " + bad + " is not valid base64 (standard alphabet)");
  EXPECT_EQ(k.error().find("MySecret"), std::string::npos);
}

}  // namespace
}  // namespace buckwild::daemon

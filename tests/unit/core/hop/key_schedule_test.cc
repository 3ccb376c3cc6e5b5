#include "core/hop/key_schedule.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace buckwild::hop {
namespace {

// Known answers from tests/vectors/gen_hop_vectors.py, an independent Python
// implementation (hashlib/hmac only). Inputs: PSK = 00..1f, day 20417
// (2025-11-25), session id 0x0123456789abcdef, nonce = a0..bf, dh_shared = 40..5f.
constexpr std::int64_t kVectorDay = 20417;  // 2025-11-25
constexpr std::uint64_t kVectorSessionId = 0x0123456789abcdefULL;
constexpr const char* kDailyKeyHex =
    "cd47ac6b42f203b93e1dacca4a926fc5828cf5932b92a6cd442a4358727ff040";
constexpr const char* kSessionKeyDhHex =
    "a7e5d146c7376879bfc7d09156e08c9abc4e40746a28523f40aca7467ff2c3de";
constexpr const char* kSessionKeyNoDhHex =
    "9458631f1b155c2b1dc01f79a72f7e3ee400a7e033d5d7013a8ae762eba04a63";
constexpr const char* kI2rPacketKeyHex =
    "dfa07904f6297e97b5dc6c8b842aec70be33824e264889c41c53d4d442bda3f9";
constexpr const char* kI2rPacketIvHex = "fb2ec9570580c065f58acb56";
constexpr const char* kI2rMacKeyHex =
    "4a1890d0d25aa30cc88156940900ff9609ced1e857861de0e13c3af3da862e79";

std::vector<std::uint8_t> range_bytes(std::uint8_t first, std::size_t n) {
  std::vector<std::uint8_t> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(first + i);
  return out;
}

std::string hex(Bytes b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::uint8_t v : b) {
    out.push_back(kDigits[v >> 4]);
    out.push_back(kDigits[v & 0xF]);
  }
  return out;
}

crypto::SecretBytes must(Result<crypto::SecretBytes> r) {
  EXPECT_TRUE(r.has_value());
  return r ? std::move(*r) : crypto::SecretBytes();
}

TEST(KeyScheduleTest, DailyKeyKnownAnswer) {
  const auto psk = range_bytes(0x00, 32);
  const auto key = must(daily_key(psk, kVectorDay));
  EXPECT_EQ(key.size(), kDailyKeySize);
  EXPECT_EQ(hex(key.view()), kDailyKeyHex);
}

TEST(KeyScheduleTest, SessionKeyKnownAnswers) {
  const auto psk = range_bytes(0x00, 32);
  const auto nonce = range_bytes(0xA0, 32);
  const auto dh = range_bytes(0x40, 32);
  const auto dkey = must(daily_key(psk, kVectorDay));
  const auto with_dh = must(session_key(dkey.view(), kVectorSessionId, nonce, dh));
  const auto without_dh = must(session_key(dkey.view(), kVectorSessionId, nonce, {}));
  EXPECT_EQ(hex(with_dh.view()), kSessionKeyDhHex);
  EXPECT_EQ(hex(without_dh.view()), kSessionKeyNoDhHex);
}

TEST(KeyScheduleTest, DirectionKeysKnownAnswer) {
  const auto psk = range_bytes(0x00, 32);
  const auto nonce = range_bytes(0xA0, 32);
  const auto dh = range_bytes(0x40, 32);
  const auto dkey = must(daily_key(psk, kVectorDay));
  const auto skey = must(session_key(dkey.view(), kVectorSessionId, nonce, dh));
  auto keys = derive_direction_keys(skey, Direction::kInitiatorToResponder);
  ASSERT_TRUE(keys.has_value());
  EXPECT_EQ(keys->packet_key.size(), kPacketKeySize);
  EXPECT_EQ(keys->packet_iv.size(), kPacketIvSize);
  EXPECT_EQ(keys->mac_key.size(), kMacKeySize);
  EXPECT_EQ(hex(keys->packet_key.view()), kI2rPacketKeyHex);
  EXPECT_EQ(hex(keys->packet_iv.view()), kI2rPacketIvHex);
  EXPECT_EQ(hex(keys->mac_key.view()), kI2rMacKeyHex);
}

TEST(KeyScheduleTest, DailyKeyDiffersPerDayAndPerPsk) {
  const auto psk = range_bytes(0x00, 32);
  const auto other_psk = range_bytes(0x01, 32);
  const auto today = must(daily_key(psk, kVectorDay));
  const auto tomorrow = must(daily_key(psk, kVectorDay + 1));
  const auto other = must(daily_key(other_psk, kVectorDay));
  const auto again = must(daily_key(psk, kVectorDay));
  EXPECT_FALSE(today.equals(tomorrow.view()));
  EXPECT_FALSE(today.equals(other.view()));
  EXPECT_TRUE(today.equals(again.view()));
}

TEST(KeyScheduleTest, DailyKeyRejectsBadPskLength) {
  for (std::size_t n : {0, 1, 15, 65, 128}) {
    const auto psk = range_bytes(0x00, n);
    auto r = daily_key(psk, kVectorDay);
    ASSERT_FALSE(r.has_value()) << n;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidParameter);
  }
  for (std::size_t n : {16, 33, 64}) {
    const auto psk = range_bytes(0x00, n);
    EXPECT_TRUE(daily_key(psk, kVectorDay).has_value()) << n;
  }
}

TEST(KeyScheduleTest, SessionKeyDependsOnEveryInput) {
  const auto dkey = must(daily_key(range_bytes(0x00, 32), kVectorDay));
  const auto dkey2 = must(daily_key(range_bytes(0x00, 32), kVectorDay + 1));
  const auto nonce = range_bytes(0xA0, 32);
  const auto nonce2 = range_bytes(0xA1, 32);
  const auto dh = range_bytes(0x40, 32);
  const auto base = must(session_key(dkey.view(), kVectorSessionId, nonce, dh));
  const auto no_dh = must(session_key(dkey.view(), kVectorSessionId, nonce, {}));
  const auto other_sid = must(session_key(dkey.view(), kVectorSessionId + 1, nonce, dh));
  const auto other_nonce = must(session_key(dkey.view(), kVectorSessionId, nonce2, dh));
  const auto other_day = must(session_key(dkey2.view(), kVectorSessionId, nonce, dh));
  const auto empty_nonce = must(session_key(dkey.view(), kVectorSessionId, {}, dh));
  EXPECT_EQ(base.size(), kSessionKeySize);
  EXPECT_FALSE(base.equals(no_dh.view()));
  EXPECT_FALSE(base.equals(other_sid.view()));
  EXPECT_FALSE(base.equals(other_nonce.view()));
  EXPECT_FALSE(base.equals(other_day.view()));
  EXPECT_FALSE(base.equals(empty_nonce.view()));
}

TEST(KeyScheduleTest, SessionKeyRejectsBadInputs) {
  const auto dkey = must(daily_key(range_bytes(0x00, 32), kVectorDay));
  const auto nonce = range_bytes(0xA0, 32);
  const auto short_key = range_bytes(0x00, 31);
  const auto long_nonce = range_bytes(0x00, 65);
  const auto long_dh = range_bytes(0x00, 65);
  EXPECT_FALSE(session_key(short_key, 1, nonce, {}).has_value());
  EXPECT_FALSE(session_key(dkey.view(), 1, long_nonce, {}).has_value());
  EXPECT_FALSE(session_key(dkey.view(), 1, nonce, long_dh).has_value());
  EXPECT_TRUE(session_key(dkey.view(), 1, range_bytes(0, 64), range_bytes(0, 64)).has_value());
}

TEST(KeyScheduleTest, DirectionKeysDifferPerDirection) {
  const auto dkey = must(daily_key(range_bytes(0x00, 32), kVectorDay));
  const auto skey = must(session_key(dkey.view(), kVectorSessionId, range_bytes(0xA0, 32), {}));
  auto i2r = derive_direction_keys(skey, Direction::kInitiatorToResponder);
  auto r2i = derive_direction_keys(skey, Direction::kResponderToInitiator);
  ASSERT_TRUE(i2r.has_value());
  ASSERT_TRUE(r2i.has_value());
  EXPECT_FALSE(i2r->packet_key.equals(r2i->packet_key.view()));
  EXPECT_FALSE(i2r->packet_iv.equals(r2i->packet_iv.view()));
  EXPECT_FALSE(i2r->mac_key.equals(r2i->mac_key.view()));
  EXPECT_FALSE(i2r->packet_key.equals(i2r->mac_key.view()));
  EXPECT_EQ(direction_label(Direction::kInitiatorToResponder), "i2r");
  EXPECT_EQ(direction_label(Direction::kResponderToInitiator), "r2i");
}

TEST(KeyScheduleTest, DirectionKeysRejectShortSessionKey) {
  const auto bad = crypto::SecretBytes::copy_of(range_bytes(0, 16));
  auto r = derive_direction_keys(bad, Direction::kInitiatorToResponder);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidParameter);
}

}  // namespace
}  // namespace buckwild::hop

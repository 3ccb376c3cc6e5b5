#include "core/hop/connection_offset.h"

#include <gtest/gtest.h>

#include <array>
#include <bitset>
#include <cstdint>
#include <vector>

#include "core/hop/key_schedule.h"

namespace buckwild::hop {
namespace {

std::vector<std::uint8_t> range_bytes(std::uint8_t first, std::size_t n) {
  std::vector<std::uint8_t> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(first + i);
  return out;
}

crypto::SecretBytes vector_daily_key(std::int64_t day = 20417) {
  auto key = daily_key(range_bytes(0x00, 32), day);
  EXPECT_TRUE(key.has_value());
  return key ? std::move(*key) : crypto::SecretBytes();
}

std::vector<std::uint16_t> all_offsets(const ConnectionOffsets& offsets) {
  std::vector<std::uint16_t> out(kConnectionIdCount);
  for (std::size_t id = 0; id < kConnectionIdCount; ++id) {
    out[id] = offsets.offset(static_cast<std::uint16_t>(id));
  }
  return out;
}

// Known answer from tests/vectors/gen_hop_vectors.py: daily key of 2025-11-25
// under PSK 00..1f, session id 0x0123456789abcdef.
TEST(ConnectionOffsetTest, KnownAnswer) {
  const auto dkey = vector_daily_key();
  auto offsets = ConnectionOffsets::create(dkey.view(), 0x0123456789abcdefULL);
  ASSERT_TRUE(offsets.has_value());
  const std::array<std::uint16_t, 8> expected = {866, 2249, 924, 494, 2541, 1722, 478, 1170};
  for (std::uint16_t id = 0; id < expected.size(); ++id) {
    EXPECT_EQ(offsets->offset(id), expected[id]) << "id " << id;
  }
}

TEST(ConnectionOffsetTest, IsAPermutationForSeveralSessions) {
  const auto dkey = vector_daily_key();
  const auto dkey2 = vector_daily_key(20418);
  for (const auto* key : {&dkey, &dkey2}) {
    for (std::uint64_t sid : {0ULL, 1ULL, 0x0123456789abcdefULL, 0xFFFFFFFFFFFFFFFFULL}) {
      auto offsets = ConnectionOffsets::create(key->view(), sid);
      ASSERT_TRUE(offsets.has_value());
      std::bitset<kConnectionIdCount> seen;
      for (std::uint16_t off : all_offsets(*offsets)) {
        ASSERT_LE(off, kMaxConnectionOffset);
        EXPECT_FALSE(seen.test(off)) << "offset " << off << " repeats, session " << sid;
        seen.set(off);
      }
      EXPECT_TRUE(seen.all());
    }
  }
}

TEST(ConnectionOffsetTest, DifferentSessionsAndDaysGiveDifferentPermutations) {
  const auto dkey = vector_daily_key();
  const auto dkey2 = vector_daily_key(20418);
  auto a = ConnectionOffsets::create(dkey.view(), 1);
  auto b = ConnectionOffsets::create(dkey.view(), 2);
  auto c = ConnectionOffsets::create(dkey2.view(), 1);
  auto a2 = ConnectionOffsets::create(dkey.view(), 1);
  ASSERT_TRUE(a && b && c && a2);
  const auto pa = all_offsets(*a);
  const auto pb = all_offsets(*b);
  const auto pc = all_offsets(*c);
  EXPECT_NE(pa, pb);
  EXPECT_NE(pa, pc);
  EXPECT_EQ(pa, all_offsets(*a2));
  // Not merely different somewhere: most ids move.
  int same = 0;
  for (std::size_t i = 0; i < kConnectionIdCount; ++i) same += pa[i] == pb[i] ? 1 : 0;
  EXPECT_LT(same, 64);
}

TEST(ConnectionOffsetTest, IsNotTheIdentity) {
  const auto dkey = vector_daily_key();
  auto offsets = ConnectionOffsets::create(dkey.view(), 7);
  ASSERT_TRUE(offsets.has_value());
  int fixed = 0;
  for (std::uint16_t id = 0; id <= kMaxConnectionId; ++id) fixed += offsets->offset(id) == id;
  EXPECT_LT(fixed, 64);
}

TEST(ConnectionOffsetTest, RejectsBadDailyKey) {
  const auto short_key = range_bytes(0, 16);
  auto r = ConnectionOffsets::create(short_key, 1);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidParameter);
}

}  // namespace
}  // namespace buckwild::hop

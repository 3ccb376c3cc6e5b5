#include "core/crypto/replay_guard.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace buckwild::crypto {
namespace {

// Checks, then commits only what check() accepted, as the packet path does.
bool accept(ReplayWindow& w, std::uint64_t pn) {
  if (!w.check(pn)) return false;
  w.commit(pn);
  return true;
}

TEST(ReplayGuardTest, ExpandPacketNumberNearExpected) {
  EXPECT_EQ(expand_packet_number(0, 0), 0u);
  EXPECT_EQ(expand_packet_number(1, 0), 1u);
  EXPECT_EQ(expand_packet_number(5, 4), 5u);
  EXPECT_EQ(expand_packet_number(3, 4), 3u);  // a little late
  // Across a 2^32 boundary, both ways.
  EXPECT_EQ(expand_packet_number(0x00000002, 0xFFFFFFF0ULL), 0x100000002ULL);
  EXPECT_EQ(expand_packet_number(0xFFFFFFF0, 0x100000002ULL), 0xFFFFFFF0ULL);
  EXPECT_EQ(expand_packet_number(0x10, 0x5'0000'0000ULL), 0x5'0000'0010ULL);
  EXPECT_EQ(expand_packet_number(0xFFFFFFFF, 0x5'0000'0000ULL), 0x4'FFFF'FFFFULL);
}

TEST(ReplayGuardTest, ExpandPacketNumberHalfWindowBoundary) {
  // expected = 0x1'0000'0001. A candidate exactly half a window below expected
  // goes up (RFC 9000 §A.3: "candidate <= expected - hwin").
  const std::uint64_t largest = 0x1'0000'0000ULL;
  EXPECT_EQ(expand_packet_number(0x80000001, largest), 0x0'8000'0001ULL + 0x1'0000'0000ULL);
  EXPECT_EQ(expand_packet_number(0x80000002, largest), 0x0'8000'0002ULL);
  EXPECT_EQ(expand_packet_number(0x80000000, largest), 0x1'8000'0000ULL);
}

TEST(ReplayGuardTest, ExpandPacketNumberStaysInRange) {
  // Near 0: the candidate 2^32 below would underflow; the in-range one is used.
  EXPECT_EQ(expand_packet_number(0xFFFFFFFF, 0), 0xFFFFFFFFULL);
  EXPECT_EQ(expand_packet_number(0xFFFFFFF0, 3), 0xFFFFFFF0ULL);
  // Near 2^64: the candidate 2^32 above would overflow.
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  EXPECT_EQ(expand_packet_number(0, kMax - 5), 0xFFFFFFFF'00000000ULL);
  EXPECT_EQ(expand_packet_number(0xFFFFFFFF, kMax - 5), kMax);
  EXPECT_EQ(expand_packet_number(0xFFFFFFFF, kMax), kMax);
  EXPECT_EQ(expand_packet_number(7, kMax), 0xFFFFFFFF'00000007ULL);
}

TEST(ReplayGuardTest, EmptyWindowAcceptsAnything) {
  ReplayWindow w;
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(w.largest(), 0u);
  EXPECT_TRUE(w.check(0));
  EXPECT_TRUE(w.check(123456));
  w.commit(0);  // packet number 0 is valid
  EXPECT_FALSE(w.empty());
  EXPECT_EQ(w.largest(), 0u);
  EXPECT_FALSE(w.check(0));
  EXPECT_TRUE(w.check(1));
}

TEST(ReplayGuardTest, InOrder) {
  ReplayWindow w;
  for (std::uint64_t pn = 0; pn < 10000; ++pn) {
    ASSERT_TRUE(accept(w, pn)) << pn;
    ASSERT_EQ(w.largest(), pn);
  }
  for (std::uint64_t pn = 10000 - 4096; pn < 10000; ++pn) EXPECT_FALSE(w.check(pn)) << pn;
}

TEST(ReplayGuardTest, ReorderWithinWindow) {
  ReplayWindow w;
  ASSERT_TRUE(accept(w, 100));
  ASSERT_TRUE(accept(w, 105));
  ASSERT_TRUE(accept(w, 103));
  ASSERT_TRUE(accept(w, 101));
  EXPECT_EQ(w.largest(), 105u);
  EXPECT_TRUE(accept(w, 104));
  EXPECT_TRUE(accept(w, 102));
  for (std::uint64_t pn = 100; pn <= 105; ++pn) EXPECT_FALSE(w.check(pn)) << pn;
  EXPECT_TRUE(w.check(99));  // never seen, inside the window
}

TEST(ReplayGuardTest, DuplicateRejected) {
  ReplayWindow w;
  ASSERT_TRUE(accept(w, 7));
  EXPECT_FALSE(accept(w, 7));
  ASSERT_TRUE(accept(w, 9));
  EXPECT_FALSE(accept(w, 9));
  EXPECT_FALSE(accept(w, 7));
  EXPECT_TRUE(accept(w, 8));
  EXPECT_FALSE(accept(w, 8));
}

TEST(ReplayGuardTest, CheckDoesNotRecord) {
  ReplayWindow w;
  ASSERT_TRUE(accept(w, 10));
  EXPECT_TRUE(w.check(5));
  EXPECT_TRUE(w.check(5));  // an unauthenticated packet must not burn its number
  EXPECT_TRUE(w.check(20));
  EXPECT_EQ(w.largest(), 10u);
}

TEST(ReplayGuardTest, WindowIsExactly4096Deep) {
  ReplayWindow w;
  const std::uint64_t largest = 10'000;
  ASSERT_TRUE(accept(w, largest));
  EXPECT_TRUE(w.check(largest - 4095));   // oldest number inside the window
  EXPECT_FALSE(w.check(largest - 4096));  // too old
  EXPECT_FALSE(w.check(0));
  // Every number in the window can be used once, whatever its ring alignment.
  for (std::uint64_t pn = largest - 4095; pn < largest; ++pn) ASSERT_TRUE(accept(w, pn)) << pn;
  for (std::uint64_t pn = largest - 4095; pn <= largest; ++pn) ASSERT_FALSE(w.check(pn)) << pn;
}

TEST(ReplayGuardTest, SlidingKeepsOldBitsThatAreStillInWindow) {
  // Numbers that share a ring word with the new largest but are still inside
  // the window must stay marked.
  ReplayWindow w;
  for (std::uint64_t pn = 0; pn < 64; ++pn) ASSERT_TRUE(accept(w, pn));
  ASSERT_TRUE(accept(w, 4096 + 5));  // slides: 0..5 leave the window, 6..63 stay
  for (std::uint64_t pn = 0; pn <= 5; ++pn) EXPECT_FALSE(w.check(pn)) << pn;  // too old
  for (std::uint64_t pn = 6; pn < 64; ++pn) EXPECT_FALSE(w.check(pn)) << pn;  // replay
  for (std::uint64_t pn = 64; pn < 4096 + 5; ++pn) EXPECT_TRUE(w.check(pn)) << pn;
  ASSERT_TRUE(accept(w, 4096 + 6));
  EXPECT_FALSE(w.check(6));  // now too old
  EXPECT_TRUE(w.check(4096 + 4));
}

TEST(ReplayGuardTest, TooOldRejected) {
  ReplayWindow w;
  ASSERT_TRUE(accept(w, 5000));
  EXPECT_FALSE(accept(w, 5000 - 4096));
  EXPECT_FALSE(accept(w, 1));
  w.commit(1);  // committing something too old is a no-op
  EXPECT_EQ(w.largest(), 5000u);
  EXPECT_TRUE(w.check(5000 - 4095));
}

TEST(ReplayGuardTest, JumpLargerThanWindowClearsAll) {
  ReplayWindow w;
  for (std::uint64_t pn = 0; pn < 4096; ++pn) ASSERT_TRUE(accept(w, pn));
  const std::uint64_t far = 4095 + 4096 + 100;
  ASSERT_TRUE(accept(w, far));
  EXPECT_EQ(w.largest(), far);
  // Numbers in the new window whose ring slots were set before the jump are fresh.
  for (std::uint64_t pn = far - 4095; pn < far; ++pn) ASSERT_TRUE(w.check(pn)) << pn;
  EXPECT_FALSE(w.check(far));
  EXPECT_FALSE(w.check(4095));
}

TEST(ReplayGuardTest, JumpOfExactlyWindowSize) {
  ReplayWindow w;
  for (std::uint64_t pn = 0; pn <= 100; ++pn) ASSERT_TRUE(accept(w, pn));
  ASSERT_TRUE(accept(w, 100 + 4096));
  for (std::uint64_t pn = 101; pn < 100 + 4096; ++pn) ASSERT_TRUE(w.check(pn)) << pn;
  EXPECT_FALSE(w.check(100));
}

TEST(ReplayGuardTest, ThirtyTwoBitWrap) {
  ReplayWindow w;
  const std::uint64_t start = 0xFFFFFF00ULL;
  ASSERT_TRUE(accept(w, expand_packet_number(static_cast<std::uint32_t>(start), w.largest())));
  ASSERT_EQ(w.largest(), start);
  // Send 0x200 more packets: the wire numbers wrap past 0xFFFFFFFF to 0.
  std::uint64_t next = start + 1;
  for (int i = 0; i < 0x200; ++i, ++next) {
    const auto wire = static_cast<std::uint32_t>(next);
    const std::uint64_t pn = expand_packet_number(wire, w.largest());
    ASSERT_EQ(pn, next) << "wire " << wire;
    ASSERT_TRUE(accept(w, pn)) << pn;
  }
  EXPECT_EQ(w.largest(), 0x1'0000'0100ULL);  // 0xFFFFFF00 + 0x200
  // Replays of wrapped and unwrapped numbers are rejected.
  for (std::uint32_t wire : {0x00000000u, 0x00000001u, 0x00000100u, 0xFFFFFFFFu, 0xFFFFFF00u}) {
    const std::uint64_t pn = expand_packet_number(wire, w.largest());
    EXPECT_FALSE(w.check(pn)) << "wire " << wire;
  }
  EXPECT_EQ(expand_packet_number(0x00000000u, w.largest()), 0x1'0000'0000ULL);
  EXPECT_EQ(expand_packet_number(0xFFFFFFFFu, w.largest()), 0x0'FFFF'FFFFULL);
  // The next new numbers still go through.
  EXPECT_TRUE(accept(w, expand_packet_number(0x101, w.largest())));
  EXPECT_EQ(w.largest(), 0x1'0000'0101ULL);
}

TEST(ReplayGuardTest, ReorderedAcrossWrap) {
  ReplayWindow w;
  ASSERT_TRUE(accept(w, 0xFFFFFFFEULL));
  // 0x1_0000_0001 arrives before 0xFFFFFFFF and 0x1_0000_0000.
  EXPECT_TRUE(accept(w, expand_packet_number(0x00000001u, w.largest())));
  EXPECT_EQ(w.largest(), 0x1'0000'0001ULL);
  EXPECT_TRUE(accept(w, expand_packet_number(0xFFFFFFFFu, w.largest())));
  EXPECT_TRUE(accept(w, expand_packet_number(0x00000000u, w.largest())));
  EXPECT_FALSE(accept(w, expand_packet_number(0xFFFFFFFFu, w.largest())));
  EXPECT_FALSE(accept(w, expand_packet_number(0x00000000u, w.largest())));
  EXPECT_FALSE(accept(w, expand_packet_number(0x00000001u, w.largest())));
  EXPECT_EQ(w.largest(), 0x1'0000'0001ULL);
}

}  // namespace
}  // namespace buckwild::crypto

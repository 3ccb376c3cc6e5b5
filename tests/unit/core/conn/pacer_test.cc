#include "core/conn/pacer.h"

#include <gtest/gtest.h>

namespace buckwild::conn {
namespace {

TEST(PacerTest, ZeroRateNeverHoldsBack) {
  Pacer p;
  p.update(0, 0, 1000);
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(p.can_send(1000));
    p.on_sent(1000);
  }
}

TEST(PacerTest, SpreadsSegmentsAtTheRate) {
  Pacer p;
  const std::uint64_t rate = 1'000'000;  // bytes/s: 1000-byte segments every 1 ms
  p.update(0, rate, 1000);
  // The burst allowance (at least four segments) goes at once.
  int burst = 0;
  while (p.can_send(1000)) {
    p.on_sent(1000);
    ++burst;
  }
  EXPECT_EQ(burst, static_cast<int>(Pacer::kMinBurstSegments));
  const TimePoint next = p.next_send_time(0, 1000);
  EXPECT_EQ(next, milliseconds(1));
  p.update(next, rate, 1000);
  EXPECT_TRUE(p.can_send(1000));
  p.on_sent(1000);
  EXPECT_FALSE(p.can_send(1000));
  // Over a long idle period tokens do not accumulate past the burst.
  p.update(seconds(10), rate, 1000);
  EXPECT_LE(p.burst(), 16 * 1000.0);
}

TEST(PacerTest, BurstScalesWithRateWithinBounds) {
  Pacer p;
  p.update(0, 1'000'000'000, 1000);  // 1 GB/s: 1 ms is 1 MB, capped at 16 segments
  EXPECT_DOUBLE_EQ(p.burst(), 16 * 1000.0);
  p.update(1, 10'000, 1000);  // slow: at least the minimum burst
  EXPECT_DOUBLE_EQ(p.burst(), Pacer::kMinBurstSegments * 1000.0);
}

}  // namespace
}  // namespace buckwild::conn

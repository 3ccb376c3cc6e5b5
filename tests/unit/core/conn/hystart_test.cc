#include "core/conn/hystart.h"

#include <gtest/gtest.h>

namespace buckwild::conn {
namespace {

// One round: `samples` ACKs all with RTT `rtt`, the first covering data sent
// after the previous round began.
void round(HyStart& h, TimePoint& now, Duration rtt, int samples = 8) {
  now += milliseconds(50);
  for (int i = 0; i < samples; ++i) h.on_ack(now, now - milliseconds(10), rtt);
}

TEST(HyStartTest, StaysInSlowStartWhileDelayIsFlat) {
  HyStart h;
  TimePoint now = 0;
  for (int r = 0; r < 10; ++r) round(h, now, milliseconds(40));
  EXPECT_EQ(h.phase(), HyStart::Phase::kSlowStart);
  EXPECT_EQ(h.growth_divisor(), 1u);
}

TEST(HyStartTest, RisingDelayEntersConservativeSlowStartThenEnds) {
  HyStart h;
  TimePoint now = 0;
  round(h, now, milliseconds(40));
  round(h, now, milliseconds(40));
  // +5 ms over 40 ms: above max(4 ms, min(40 / 8, 16 ms)) = 5 ms.
  round(h, now, milliseconds(46));
  EXPECT_EQ(h.phase(), HyStart::Phase::kConservative);
  EXPECT_EQ(h.growth_divisor(), HyStart::kCssGrowthDivisor);
  for (unsigned r = 0; r < HyStart::kCssRounds; ++r) round(h, now, milliseconds(47));
  EXPECT_EQ(h.phase(), HyStart::Phase::kDone);
}

TEST(HyStartTest, SpuriousIncreaseReturnsToSlowStart) {
  HyStart h;
  TimePoint now = 0;
  round(h, now, milliseconds(40));
  round(h, now, milliseconds(40));
  round(h, now, milliseconds(50));
  ASSERT_EQ(h.phase(), HyStart::Phase::kConservative);
  round(h, now, milliseconds(41));  // below the CSS baseline
  EXPECT_EQ(h.phase(), HyStart::Phase::kSlowStart);
}

TEST(HyStartTest, TooFewSamplesDecideNothing) {
  HyStart h;
  TimePoint now = 0;
  round(h, now, milliseconds(40));
  round(h, now, milliseconds(40));
  round(h, now, milliseconds(80), 3);
  EXPECT_EQ(h.phase(), HyStart::Phase::kSlowStart);
}

}  // namespace
}  // namespace buckwild::conn

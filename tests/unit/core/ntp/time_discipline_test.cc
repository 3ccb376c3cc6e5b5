#include "core/ntp/time_discipline.h"

#include <gtest/gtest.h>

namespace buckwild::ntp {
namespace {

TEST(TimeDisciplineTest, FirstMeasurementSteps) {
  TimeDiscipline d;
  EXPECT_FALSE(d.synchronized());
  EXPECT_EQ(d.correction_us(seconds(1)), 0);
  auto a = d.on_offset(-3'000'000, seconds(1));
  EXPECT_EQ(a.action, TimeDiscipline::Action::kStep);
  EXPECT_TRUE(d.synchronized());
  EXPECT_EQ(d.correction_us(seconds(1)), -3'000'000);
  EXPECT_EQ(d.correction_us(seconds(100)), -3'000'000);
}

TEST(TimeDisciplineTest, SmallErrorsAreSlewedAtABoundedRate) {
  TimeDiscipline d;
  d.on_offset(0, 0);
  auto a = d.on_offset(50'000, seconds(10));
  EXPECT_EQ(a.action, TimeDiscipline::Action::kSlew);
  EXPECT_EQ(d.correction_us(seconds(10)), 0);
  // 5 ms per second: 25 ms after 5 s, all 50 ms after 10 s, no further.
  EXPECT_EQ(d.correction_us(seconds(15)), 25'000);
  EXPECT_EQ(d.slew_remaining_us(seconds(15)), 25'000);
  EXPECT_EQ(d.correction_us(seconds(20)), 50'000);
  EXPECT_EQ(d.correction_us(seconds(60)), 50'000);
  // Never more than one window's worth in a window: a hop is never skipped.
  EXPECT_LE(d.correction_us(seconds(10) + milliseconds(250)) - d.correction_us(seconds(10)), 1'250);
}

TEST(TimeDisciplineTest, AOneSecondStepIsSteppedNotSlewed) {
  TimeDiscipline d;
  d.on_offset(0, 0);
  auto a = d.on_offset(1'000'000, seconds(64));
  EXPECT_EQ(a.action, TimeDiscipline::Action::kStep);
  EXPECT_EQ(d.correction_us(seconds(64)), 1'000'000);
}

TEST(TimeDisciplineTest, ANewMeasurementReplacesTheSlewUnderWay) {
  TimeDiscipline d;
  d.on_offset(0, 0);
  d.on_offset(100'000, seconds(1));              // slew 100 ms
  EXPECT_EQ(d.correction_us(seconds(3)), 10'000);  // 10 ms done
  // Measured after that: 90 ms still wrong; the slew continues from there.
  d.on_offset(90'000, seconds(3));
  EXPECT_EQ(d.correction_us(seconds(21)), 100'000);
}

TEST(TimeDisciplineTest, EstimatesAndAppliesTheRawClocksFrequency) {
  // The raw clock runs 100 ppm slow: each 16 s it falls 1.6 ms behind.
  TimeDiscipline d;
  std::int64_t raw_error = 0;
  for (int i = 0; i <= 8; ++i) {
    const TimePoint t = seconds(16) * i;
    raw_error = 100 * (t / 1'000'000);  // µs behind
    d.on_offset(raw_error - d.correction_us(t), t);
  }
  EXPECT_NEAR(d.frequency_ppm(), 100.0, 1.0);
  // With no more measurements (every server gone), the correction keeps up.
  const TimePoint later = seconds(16) * 8 + seconds(600);
  EXPECT_NEAR(static_cast<double>(d.correction_us(later)), 100.0 * 728, 1'000.0);
}

TEST(TimeDisciplineTest, FrequencyIsBounded) {
  TimeDiscipline d;
  for (int i = 0; i <= 8; ++i) {
    const TimePoint t = seconds(16) * i;
    d.on_offset(100'000 * i - d.correction_us(t), t);  // 6250 ppm: not a clock, a fault
  }
  EXPECT_LE(d.frequency_ppm(), kMaxFrequencyPpm);
}

}  // namespace
}  // namespace buckwild::ntp

#include "daemon/clock.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace buckwild::daemon {
namespace {

TEST(SystemClockTest, OffsetShiftsUtcButNotMonotonic) {
  SystemClock plain;
  SystemClock ahead(40);
  SystemClock behind(-86'400'000);
  std::int64_t a = plain.unix_ms();
  std::int64_t b = ahead.unix_ms();
  std::int64_t c = behind.unix_ms();
  EXPECT_NEAR(static_cast<double>(b - a), 40.0, 20.0);
  EXPECT_NEAR(static_cast<double>(a - c), 86'400'000.0, 20.0);
  EXPECT_EQ(ahead.offset_ms(), 40);
  TimePoint m1 = plain.monotonic();
  TimePoint m2 = ahead.monotonic();
  EXPECT_GE(m2, m1);
  EXPECT_LT(m2 - m1, seconds(1));
}

TEST(SystemClockTest, UtcIsPlausibleAndMonotonicAdvances) {
  SystemClock clock;
  EXPECT_GT(clock.unix_ms(), 1'700'000'000'000);  // after November 2023
  TimePoint t1 = clock.monotonic();
  TimePoint t2 = clock.monotonic();
  EXPECT_GE(t2, t1);
  EXPECT_LT(clock.ms_since_midnight(), 86'400'000u);
}

TEST(SystemClockTest, MsSinceMidnightFollowsTheOffset) {
  SystemClock plain;
  SystemClock ahead(3'600'000);  // one hour
  std::int64_t diff =
      static_cast<std::int64_t>(ahead.ms_since_midnight()) - plain.ms_since_midnight();
  if (diff < 0) diff += 86'400'000;  // the shifted clock crossed midnight
  EXPECT_NEAR(static_cast<double>(diff), 3'600'000.0, 20.0);
}

TEST(FakeClockTest, AdvancesBothReadings) {
  FakeClock clock(1'000, 86'400'000 * 2 + 5'000);
  EXPECT_EQ(clock.monotonic(), 1'000);
  EXPECT_EQ(clock.unix_ms(), 86'400'000 * 2 + 5'000);
  EXPECT_EQ(clock.ms_since_midnight(), 5'000u);
  clock.advance(milliseconds(250));
  EXPECT_EQ(clock.monotonic(), 1'000 + 250'000);
  EXPECT_EQ(clock.ms_since_midnight(), 5'250u);
  clock.advance(999);  // sub-millisecond steps accumulate
  EXPECT_EQ(clock.ms_since_midnight(), 5'250u);
  clock.advance(1);
  EXPECT_EQ(clock.ms_since_midnight(), 5'251u);
}

TEST(FakeClockTest, StepsUtcAloneAndWrapsAtMidnight) {
  FakeClock clock(0, 86'400'000 - 10);
  EXPECT_EQ(clock.ms_since_midnight(), 86'399'990u);
  clock.step_unix_ms(20);
  EXPECT_EQ(clock.monotonic(), 0);
  EXPECT_EQ(clock.ms_since_midnight(), 10u);
  clock.step_unix_ms(-86'400'000 - 20);  // before the epoch
  EXPECT_EQ(clock.unix_ms(), -10);
  EXPECT_EQ(clock.ms_since_midnight(), 86'399'990u);
}

}  // namespace
}  // namespace buckwild::daemon

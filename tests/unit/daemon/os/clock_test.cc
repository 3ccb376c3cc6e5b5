#include "daemon/os/clock.h"

#include <gtest/gtest.h>

namespace buckwild::daemon {
namespace {

TEST(SystemClockTest, OffsetShiftsUtc) {
  SystemClock plain;
  SystemClock ahead(40);
  SystemClock behind(-86'400'000);
  std::int64_t a = plain.unix_ms();
  std::int64_t b = ahead.unix_ms();
  std::int64_t c = behind.unix_ms();
  EXPECT_NEAR(static_cast<double>(b - a), 40.0, 20.0);
  EXPECT_NEAR(static_cast<double>(a - c), 86'400'000.0, 20.0);
  EXPECT_EQ(ahead.offset_ms(), 40);
}

TEST(SystemClockTest, UtcIsPlausible) {
  SystemClock clock;
  EXPECT_GT(clock.unix_ms(), 1'700'000'000'000);  // after November 2023
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

}  // namespace
}  // namespace buckwild::daemon

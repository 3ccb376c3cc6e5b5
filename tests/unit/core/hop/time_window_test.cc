#include "core/hop/time_window.h"

#include <gtest/gtest.h>

namespace buckwild::hop {
namespace {

TEST(TimeWindowTest, WindowAtFloorsAlsoForNegativeTimes) {
  EXPECT_EQ(window_at(0), 0);
  EXPECT_EQ(window_at(249), 0);
  EXPECT_EQ(window_at(250), 1);
  EXPECT_EQ(window_at(-1), -1);
  EXPECT_EQ(window_at(-250), -1);
  EXPECT_EQ(window_at(-251), -2);
  EXPECT_EQ(window_at(1'764'028'800'123), 7'056'115'200);  // 2025-11-25T00:00:00.123Z
}

TEST(TimeWindowTest, DayAndWindowOfDaySplitAbsoluteWindow) {
  EXPECT_EQ(day_of_window(0), 0);
  EXPECT_EQ(window_of_day(0), 0u);
  EXPECT_EQ(day_of_window(kWindowsPerDay - 1), 0);
  EXPECT_EQ(window_of_day(kWindowsPerDay - 1), 345'599u);
  EXPECT_EQ(day_of_window(kWindowsPerDay), 1);
  EXPECT_EQ(window_of_day(kWindowsPerDay), 0u);
  EXPECT_EQ(day_of_window(-1), -1);
  EXPECT_EQ(window_of_day(-1), 345'599u);
  EXPECT_EQ(day_of_window(-kWindowsPerDay), -1);
  EXPECT_EQ(window_of_day(-kWindowsPerDay), 0u);
  const std::int64_t w = 20417 * kWindowsPerDay + 1234;
  EXPECT_EQ(day_of_window(w), 20417);
  EXPECT_EQ(window_of_day(w), 1234u);
}

TEST(TimeWindowTest, WindowOfDayCountsFromUtcMidnight) {
  // 2025-11-25T00:00:00.250Z is the second window of its day.
  const std::int64_t midnight_ms = 20417 * kMsPerDay;
  EXPECT_EQ(window_of_day(window_at(midnight_ms + 250)), 1u);
  EXPECT_EQ(window_of_day(window_at(midnight_ms - 1)), 345'599u);
  EXPECT_EQ(day_of_window(window_at(midnight_ms - 1)), 20416);
}

TEST(TimeWindowTest, WindowStartMs) {
  EXPECT_EQ(window_start_ms(0), 0);
  EXPECT_EQ(window_start_ms(1), 250);
  EXPECT_EQ(window_start_ms(-1), -250);
  for (std::int64_t ms : {-1'000'001LL, -1LL, 0LL, 7LL, 1'764'028'800'123LL}) {
    const std::int64_t w = window_at(ms);
    EXPECT_LE(window_start_ms(w), ms);
    EXPECT_GT(window_start_ms(w + 1), ms);
  }
}

TEST(TimeWindowTest, MsSinceMidnight) {
  EXPECT_EQ(ms_since_midnight(0), 0u);
  EXPECT_EQ(ms_since_midnight(kMsPerDay - 1), 86'399'999u);
  EXPECT_EQ(ms_since_midnight(kMsPerDay), 0u);
  EXPECT_EQ(ms_since_midnight(-1), 86'399'999u);
  EXPECT_EQ(ms_since_midnight(20417 * kMsPerDay + 12'345), 12'345u);
}

TEST(TimeWindowTest, UtcDateString) {
  EXPECT_EQ(utc_date_string(0), "1970-01-01");
  EXPECT_EQ(utc_date_string(-1), "1969-12-31");
  EXPECT_EQ(utc_date_string(11016), "2000-02-29");
  EXPECT_EQ(utc_date_string(11017), "2000-03-01");
  EXPECT_EQ(utc_date_string(20417), "2025-11-25");
  EXPECT_EQ(utc_date_string(20782), "2026-11-25");
  EXPECT_EQ(utc_date_string(47540), "2100-02-28");  // 2100 is not a leap year
  EXPECT_EQ(utc_date_string(47541), "2100-03-01");
  EXPECT_EQ(utc_date_string(-719468), "0000-03-01");
}

TEST(TimeWindowTest, CircularDelta) {
  EXPECT_EQ(circular_delta_ms(10, 5), 5);
  EXPECT_EQ(circular_delta_ms(5, 10), -5);
  EXPECT_EQ(circular_delta_ms(5, 86'399'990), 15);
  EXPECT_EQ(circular_delta_ms(86'399'990, 5), -15);
  EXPECT_EQ(circular_delta_ms(43'200'000, 0), 43'200'000);  // half a day is positive
  EXPECT_EQ(circular_delta_ms(0, 43'200'000), 43'200'000);
  EXPECT_EQ(circular_delta_ms(0, 43'199'999), -43'199'999);
  EXPECT_EQ(circular_delta_ms(7, 7), 0);
}

TEST(TimeWindowTest, TimestampFreshAcrossMidnight) {
  EXPECT_TRUE(timestamp_fresh(86'399'990, 5, 15));
  EXPECT_FALSE(timestamp_fresh(86'399'990, 5, 14));
  EXPECT_TRUE(timestamp_fresh(5, 86'399'990, 15));
  EXPECT_FALSE(timestamp_fresh(5, 86'399'990, 14));
  EXPECT_TRUE(timestamp_fresh(86'390'000, 20'000, kTimestampWindowMs));
  EXPECT_FALSE(timestamp_fresh(86'360'000, 30'001, kTimestampWindowMs));
}

TEST(TimeWindowTest, TimestampFreshWithinDay) {
  EXPECT_TRUE(timestamp_fresh(1'000'000, 1'000'000, 0));
  EXPECT_TRUE(timestamp_fresh(1'030'000, 1'000'000, kTimestampWindowMs));
  EXPECT_FALSE(timestamp_fresh(1'030'001, 1'000'000, kTimestampWindowMs));
  EXPECT_TRUE(timestamp_fresh(970'000, 1'000'000, kTimestampWindowMs));
  EXPECT_FALSE(timestamp_fresh(969'999, 1'000'000, kTimestampWindowMs));
  EXPECT_FALSE(timestamp_fresh(43'200'000, 0, kTimestampWindowMs));
}

TEST(TimeWindowTest, TimestampOutsideDayIsNeverFresh) {
  EXPECT_FALSE(timestamp_fresh(86'400'000, 0, kTimestampWindowMs));
  EXPECT_FALSE(timestamp_fresh(0xFFFFFFFFu, 5, 0xFFFFFFFFu));
}

}  // namespace
}  // namespace buckwild::hop

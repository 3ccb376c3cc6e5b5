#include "core/ntp/clock_filter.h"

#include <gtest/gtest.h>

namespace buckwild::ntp {
namespace {

Sample sample(std::int64_t offset, std::int64_t delay) {
  return Sample{.offset_us = offset, .delay_us = delay, .root_distance_us = 100, .stratum = 2};
}

TEST(ClockFilterTest, EmptyHasNoEstimate) {
  ClockFilter f;
  EXPECT_FALSE(f.estimate(0));
}

TEST(ClockFilterTest, LeastDelayWins) {
  ClockFilter f;
  f.add(sample(5'000, 30'000), seconds(1));
  f.add(sample(1'000, 2'000), seconds(2));  // the least queued
  f.add(sample(9'000, 40'000), seconds(3));
  auto e = f.estimate(seconds(4));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->offset_us, 1'000);
  EXPECT_EQ(e->delay_us, 2'000);
  EXPECT_EQ(e->at, seconds(2));
  EXPECT_EQ(e->samples, 3u);
  EXPECT_GT(e->jitter_us, 4'000);
}

TEST(ClockFilterTest, KeepsOnlyTheLastEight) {
  ClockFilter f;
  f.add(sample(-1, 1), 0);  // best, but pushed out by eight newer ones
  for (int i = 1; i <= 8; ++i) f.add(sample(i * 10, 100 + i), seconds(i));
  auto e = f.estimate(seconds(9));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->offset_us, 10);
  EXPECT_EQ(f.size(), kFilterSamples);
}

TEST(ClockFilterTest, OldSamplesStopSpeaking) {
  ClockFilter f;
  f.add(sample(7, 1), 0);
  EXPECT_TRUE(f.estimate(kFilterMaxAge));
  EXPECT_FALSE(f.estimate(kFilterMaxAge + 1));
}

TEST(ClockFilterTest, FollowsAOneSecondStepOfTheServer) {
  ClockFilter f;
  TimePoint t = 0;
  for (int i = 0; i < 8; ++i) f.add(sample(0, 10'000 + (i % 3) * 100), t += seconds(16));
  EXPECT_EQ(f.estimate(t)->offset_us, 0);
  // The server steps by 1 s; within eight polls every old sample is gone.
  int polls = 0;
  while (f.estimate(t)->offset_us != 1'000'000 && polls < 20) {
    f.add(sample(1'000'000, 10'000 + (polls % 3) * 100), t += seconds(16));
    ++polls;
  }
  EXPECT_LE(polls, 8);
  EXPECT_EQ(f.estimate(t)->offset_us, 1'000'000);
}

}  // namespace
}  // namespace buckwild::ntp

#include "daemon/log/attack_watch.h"

#include <gtest/gtest.h>

namespace buckwild::daemon {
namespace {

using Kind = AttackWatch::Kind;

TEST(AttackWatchTest, TheFirstSampleIsOnlyTheBaseline) {
  AttackWatch w({10, 10});
  EXPECT_TRUE(w.sample(seconds(1), {1'000'000, 1'000'000}).empty());
  EXPECT_TRUE(w.sample(seconds(2), {1'000'005, 1'000'005}).empty());
}

TEST(AttackWatchTest, StartsOverTheThresholdOnceAndEndsAfterTenQuietSeconds) {
  AttackWatch w({100, 0});
  std::uint64_t drops = 0;
  TimePoint t = seconds(1);
  w.sample(t, {drops, 0});
  // 100/s is not over 100/s.
  drops += 100;
  t += seconds(1);
  EXPECT_TRUE(w.sample(t, {drops, 0}).empty());
  drops += 101;
  t += seconds(1);
  auto c = w.sample(t, {drops, 0});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].kind, Kind::kFilterDrops);
  EXPECT_TRUE(c[0].started);
  EXPECT_EQ(c[0].rate, 101u);
  EXPECT_EQ(c[0].threshold, 100u);
  // Going on, and higher: no new report.
  drops += 5000;
  t += seconds(1);
  EXPECT_TRUE(w.sample(t, {drops, 0}).empty());
  // Quiet for nine seconds, then loud again: still the same attack.
  for (int i = 0; i < 9; ++i) {
    t += seconds(1);
    EXPECT_TRUE(w.sample(t, {drops, 0}).empty());
  }
  drops += 1000;
  t += seconds(1);
  EXPECT_TRUE(w.sample(t, {drops, 0}).empty());
  for (int i = 0; i < 9; ++i) {
    t += seconds(1);
    EXPECT_TRUE(w.sample(t, {drops, 0}).empty());
  }
  t += seconds(1);
  c = w.sample(t, {drops, 0});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_FALSE(c[0].started);
  EXPECT_EQ(c[0].rate, 5000u);  // the peak
}

TEST(AttackWatchTest, RatesAreOverTheTimeBetweenSamples) {
  AttackWatch w({0, 50});
  w.sample(seconds(10), {0, 0});
  // 90 refusals over 2 s is 45/s: under 50/s.
  EXPECT_TRUE(w.sample(seconds(12), {0, 90}).empty());
  auto c = w.sample(seconds(12) + milliseconds(500), {0, 120});  // 60/s
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].kind, Kind::kDiscoveryRefusals);
  EXPECT_EQ(c[0].rate, 60u);
}

TEST(AttackWatchTest, ZeroWatchesNothingAndTurningItOffEndsAnAttack) {
  AttackWatch w({0, 0});
  w.sample(seconds(1), {0, 0});
  EXPECT_TRUE(w.sample(seconds(2), {1'000'000, 1'000'000}).empty());
  w.set_thresholds({10, 0});
  ASSERT_EQ(w.sample(seconds(3), {2'000'000, 1'000'000}).size(), 1u);
  w.set_thresholds({0, 0});
  auto c = w.sample(seconds(4), {3'000'000, 1'000'000});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_FALSE(c[0].started);
}

TEST(AttackWatchTest, CountersThatGoBackwardsStartANewBaseline) {
  AttackWatch w({10, 10});
  w.sample(seconds(1), {5000, 0});
  // The eBPF path was restarted: its counters start again from 0.
  EXPECT_TRUE(w.sample(seconds(2), {3, 0}).empty());
  EXPECT_TRUE(w.sample(seconds(3), {8, 0}).empty());
  EXPECT_EQ(w.sample(seconds(4), {100, 0}).size(), 1u);
}

}  // namespace
}  // namespace buckwild::daemon

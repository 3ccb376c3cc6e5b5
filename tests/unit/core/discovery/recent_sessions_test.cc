#include "core/discovery/recent_sessions.h"

#include <gtest/gtest.h>

namespace buckwild::discovery {
namespace {

constexpr Duration kLifetime = seconds(60);
constexpr TimePoint kT0 = seconds(1000);

TEST(RecentSessionsTest, RemembersForItsLifetimeAndRefusesWhenFull) {
  RecentSessions memory(kLifetime, 3);
  EXPECT_TRUE(memory.remember(1, kT0));
  EXPECT_TRUE(memory.remember(2, kT0 + seconds(10)));
  EXPECT_TRUE(memory.remember(3, kT0 + seconds(20)));
  EXPECT_FALSE(memory.remember(4, kT0 + seconds(30)));  // full of live entries
  EXPECT_FALSE(memory.contains(4, kT0 + seconds(30)));
  EXPECT_TRUE(memory.contains(1, kT0 + kLifetime));
  EXPECT_FALSE(memory.contains(1, kT0 + kLifetime + 1));
  EXPECT_TRUE(memory.remember(4, kT0 + kLifetime + 1));
  EXPECT_EQ(memory.size(), 3u);
}

TEST(RecentSessionsTest, LoweringTheCapacityForgetsNothingEarly) {
  RecentSessions memory(kLifetime, 3);
  ASSERT_TRUE(memory.remember(1, kT0));
  ASSERT_TRUE(memory.remember(2, kT0 + seconds(1)));
  ASSERT_TRUE(memory.remember(3, kT0 + seconds(2)));
  memory.set_capacity(1);
  EXPECT_TRUE(memory.contains(1, kT0 + seconds(3)));
  EXPECT_TRUE(memory.contains(3, kT0 + seconds(3)));
  EXPECT_FALSE(memory.remember(4, kT0 + seconds(3)));
  // Capacity 1: room only once all but one have expired.
  EXPECT_FALSE(memory.remember(4, kT0 + kLifetime + seconds(1) + 1));
  EXPECT_TRUE(memory.remember(4, kT0 + kLifetime + seconds(2) + 1));
}

}  // namespace
}  // namespace buckwild::discovery

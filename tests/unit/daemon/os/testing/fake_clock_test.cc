#include "daemon/os/testing/fake_clock.h"

#include <gtest/gtest.h>

namespace buckwild::daemon {
namespace {

TEST(FakeClockTest, FollowsTheLoop) {
  ManualEventLoop loop(1'000);
  FakeClock clock(loop, 86'400'000 * 2 + 5'000);
  EXPECT_EQ(clock.unix_ms(), 86'400'000 * 2 + 5'000 + 1);
  EXPECT_EQ(clock.ms_since_midnight(), 5'001u);
  loop.run_for(milliseconds(250));
  EXPECT_EQ(clock.ms_since_midnight(), 5'251u);
  loop.run_for(999);  // sub-millisecond steps accumulate
  EXPECT_EQ(clock.ms_since_midnight(), 5'251u);
  loop.run_for(1);
  EXPECT_EQ(clock.ms_since_midnight(), 5'252u);
}

TEST(FakeClockTest, StepsUtcAloneAndWrapsAtMidnight) {
  ManualEventLoop loop(0);
  FakeClock clock(loop, 86'400'000 - 10);
  EXPECT_EQ(clock.ms_since_midnight(), 86'399'990u);
  clock.step_unix_ms(20);
  EXPECT_EQ(loop.now(), 0);
  EXPECT_EQ(clock.ms_since_midnight(), 10u);
  clock.step_unix_ms(-86'400'000 - 20);  // before the epoch
  EXPECT_EQ(clock.unix_ms(), -10);
  EXPECT_EQ(clock.ms_since_midnight(), 86'399'990u);
}

}  // namespace
}  // namespace buckwild::daemon

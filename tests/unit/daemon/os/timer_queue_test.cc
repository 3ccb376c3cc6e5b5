#include "daemon/os/timer_queue.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace buckwild::daemon {
namespace {

TEST(TimerQueueTest, FiresInDeadlineOrderWithTiesInAddOrder) {
  TimerQueue q;
  std::vector<std::string> fired;
  q.add(30, 0, [&] { fired.push_back("c30"); });
  q.add(10, 0, [&] { fired.push_back("a10"); });
  q.add(20, 0, [&] { fired.push_back("b20"); });
  q.add(20, 0, [&] { fired.push_back("b20-second"); });
  EXPECT_EQ(q.next_deadline(), 10);
  EXPECT_EQ(q.run_due(9), 0u);
  EXPECT_EQ(q.run_due(20), 3u);
  EXPECT_EQ(fired, (std::vector<std::string>{"a10", "b20", "b20-second"}));
  EXPECT_EQ(q.next_deadline(), 30);
  EXPECT_EQ(q.run_due(100), 1u);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.next_deadline(), kNever);
}

TEST(TimerQueueTest, CancelPreventsFiring) {
  TimerQueue q;
  int fired = 0;
  TimerId a = q.add(10, 0, [&] { ++fired; });
  TimerId b = q.add(10, 0, [&] { ++fired; });
  EXPECT_NE(a, kNoTimer);
  EXPECT_NE(a, b);
  EXPECT_TRUE(q.cancel(a));
  EXPECT_FALSE(q.cancel(a));
  EXPECT_EQ(q.run_due(10), 1u);
  EXPECT_EQ(fired, 1);
  EXPECT_FALSE(q.cancel(b));  // already fired
}

TEST(TimerQueueTest, PeriodicKeepsPhaseAndCoalescesMissedTicks) {
  TimerQueue q;
  std::vector<TimePoint> at;
  TimePoint now = 0;
  q.add(100, 100, [&] { at.push_back(now); });
  now = 100;
  q.run_due(now);
  now = 250;
  q.run_due(now);
  EXPECT_EQ(q.next_deadline(), 300);
  now = 1'050;  // missed 300..1000: one call, next at 1100
  EXPECT_EQ(q.run_due(now), 1u);
  EXPECT_EQ(q.next_deadline(), 1'100);
  EXPECT_EQ(at, (std::vector<TimePoint>{100, 250, 1'050}));
}

TEST(TimerQueueTest, CallbackMayCancelItsOwnPeriodicTimer) {
  TimerQueue q;
  int fired = 0;
  TimerId id = kNoTimer;
  id = q.add(10, 10, [&] {
    if (++fired == 3) {
      EXPECT_TRUE(q.cancel(id));
    }
  });
  for (TimePoint t = 10; t <= 100; t += 10) q.run_due(t);
  EXPECT_EQ(fired, 3);
  EXPECT_TRUE(q.empty());
}

TEST(TimerQueueTest, CallbackMayCancelAnotherDueTimer) {
  TimerQueue q;
  std::vector<int> fired;
  TimerId second = kNoTimer;
  q.add(5, 0, [&] {
    fired.push_back(1);
    EXPECT_TRUE(q.cancel(second));
  });
  second = q.add(5, 0, [&] { fired.push_back(2); });
  q.add(6, 0, [&] { fired.push_back(3); });
  EXPECT_EQ(q.run_due(10), 2u);
  EXPECT_EQ(fired, (std::vector<int>{1, 3}));
}

TEST(TimerQueueTest, TimersAddedByCallbacksWaitForTheNextRun) {
  TimerQueue q;
  int chained = 0;
  std::function<void()> again = [&] {
    ++chained;
    q.add(0, 0, again);  // already due, but must not run in the same call
  };
  q.add(0, 0, again);
  EXPECT_EQ(q.run_due(0), 1u);
  EXPECT_EQ(chained, 1);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.run_due(0), 1u);
  EXPECT_EQ(chained, 2);
}

TEST(TimerQueueTest, PeriodicTimerKeepsItsCallbackAcrossRuns) {
  TimerQueue q;
  int fired = 0;
  q.add(1, 1, [&] { ++fired; });
  for (TimePoint t = 1; t <= 50; ++t) q.run_due(t);
  EXPECT_EQ(fired, 50);
  EXPECT_EQ(q.size(), 1u);
}

}  // namespace
}  // namespace buckwild::daemon

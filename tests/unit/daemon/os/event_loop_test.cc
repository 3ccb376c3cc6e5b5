#include "daemon/os/event_loop.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

namespace buckwild::daemon {
namespace {

struct Pipe {
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) std::abort();
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
  }
  void put(char c) const { ASSERT_EQ(::write(write_end.get(), &c, 1), 1); }
  UniqueFd read_end;
  UniqueFd write_end;
};

std::unique_ptr<EpollEventLoop> make_loop() {
  auto loop = EpollEventLoop::create();
  if (!loop) ADD_FAILURE() << loop.error().message;
  return loop ? std::move(*loop) : nullptr;
}

// A watchdog so a broken loop fails the test instead of hanging it.
void guard(EventLoop& loop, Duration limit = seconds(5)) {
  loop.add_timer(limit, [&loop] {
    ADD_FAILURE() << "event loop test timed out";
    loop.stop();
  });
}

bool signal_blocked(int signo) {
  sigset_t current;
  ::pthread_sigmask(SIG_BLOCK, nullptr, &current);
  return sigismember(&current, signo) == 1;
}

TEST(EpollEventLoopTest, TimersFireInDeadlineOrder) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  guard(*loop);
  std::vector<int> order;
  // The deadlines are counted from `start`, so the run cannot end before it
  // plus 4 ms (reading the clock after arming them made the bound flaky).
  const TimePoint start = loop->now();
  loop->add_timer(milliseconds(3), [&] { order.push_back(3); });
  loop->add_timer(milliseconds(1), [&] { order.push_back(1); });
  loop->add_timer(milliseconds(2), [&] { order.push_back(2); });
  const TimePoint same = start + milliseconds(4);
  loop->add_timer_at(same, [&] { order.push_back(4); });
  loop->add_timer_at(same, [&] {
    order.push_back(5);
    loop->stop();
  });
  ASSERT_TRUE(loop->run());
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_GE(loop->now() - start, milliseconds(4));
}

TEST(EpollEventLoopTest, PeriodicTimerRepeatsUntilCancelled) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  guard(*loop);
  int ticks = 0;
  std::vector<TimePoint> at;
  TimerId id = kNoTimer;
  TimePoint start = loop->now();
  id = loop->add_periodic_timer(milliseconds(2), [&] {
    at.push_back(loop->now());
    if (++ticks == 5) {
      EXPECT_TRUE(loop->cancel_timer(id));
      loop->add_timer(milliseconds(10), [&] { loop->stop(); });
    }
  });
  ASSERT_TRUE(loop->run());
  EXPECT_EQ(ticks, 5);
  ASSERT_EQ(at.size(), 5u);
  EXPECT_GE(at[0] - start, milliseconds(2));
  for (std::size_t i = 1; i < at.size(); ++i) EXPECT_GT(at[i], at[i - 1]);
}

TEST(EpollEventLoopTest, CancelledTimerNeverFires) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  guard(*loop);
  bool fired = false;
  TimerId id = loop->add_timer(milliseconds(1), [&] { fired = true; });
  EXPECT_TRUE(loop->cancel_timer(id));
  loop->add_timer(milliseconds(5), [&] { loop->stop(); });
  ASSERT_TRUE(loop->run());
  EXPECT_FALSE(fired);
}

TEST(EpollEventLoopTest, ZeroDelayTimerAddedByATimerRunsOnTheNextTurn) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  guard(*loop);
  int count = 0;
  std::function<void()> tick = [&] {
    if (++count < 100) {
      loop->add_timer(0, tick);
    } else {
      loop->stop();
    }
  };
  loop->add_timer(0, tick);
  ASSERT_TRUE(loop->run());
  EXPECT_EQ(count, 100);
}

TEST(EpollEventLoopTest, PipeReadinessIsLevelTriggered) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  guard(*loop);
  Pipe p;
  int calls = 0;
  std::string got;
  ASSERT_TRUE(loop->watch_fd(p.read_end.get(), kReadable, [&](std::uint32_t events) {
    EXPECT_TRUE(events & kReadable);
    ++calls;
    // Read one byte per call: the rest must wake us again (level-triggered).
    char c;
    if (::read(p.read_end.get(), &c, 1) == 1) got.push_back(c);
    if (got == "abc") loop->stop();
  }));
  p.put('a');
  p.put('b');
  p.put('c');
  ASSERT_TRUE(loop->run());
  EXPECT_EQ(got, "abc");
  EXPECT_EQ(calls, 3);
}

// Turn-end callbacks run once per turn, after every descriptor callback and
// timer of that turn: two ready pipes and a due timer make one turn, and the
// callback sees all three done; a removed one runs no more.
TEST(EpollEventLoopTest, TurnEndCallbacksRunAfterEachTurnsCallbacks) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  Pipe a, b;
  std::vector<std::string> log;
  ASSERT_TRUE(loop->watch_fd(a.read_end.get(), kReadable, [&](std::uint32_t) {
    char c;
    if (::read(a.read_end.get(), &c, 1) == 1) log.emplace_back("a");
  }));
  ASSERT_TRUE(loop->watch_fd(b.read_end.get(), kReadable, [&](std::uint32_t) {
    char c;
    if (::read(b.read_end.get(), &c, 1) == 1) log.emplace_back("b");
  }));
  loop->add_timer(0, [&] { log.emplace_back("timer"); });
  const TurnEndId first = loop->add_turn_end([&] { log.emplace_back("end1"); });
  loop->add_turn_end([&] { log.emplace_back("end2"); });
  a.put('x');
  b.put('y');
  ASSERT_TRUE(loop->run_once(0));
  ASSERT_EQ(log.size(), 5u);
  EXPECT_EQ(std::vector<std::string>(log.end() - 2, log.end()),
            (std::vector<std::string>{"end1", "end2"}));
  EXPECT_EQ(std::count(log.begin(), log.end(), "timer"), 1);
  log.clear();
  loop->remove_turn_end(first);
  ASSERT_TRUE(loop->run_once(0));  // nothing ready: still a turn
  EXPECT_EQ(log, (std::vector<std::string>{"end2"}));
}

TEST(EpollEventLoopTest, WritableInterestAndUpdate) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  guard(*loop);
  Pipe p;
  int writable = 0;
  ASSERT_TRUE(loop->watch_fd(p.write_end.get(), kWritable, [&](std::uint32_t events) {
    EXPECT_TRUE(events & kWritable);
    if (++writable == 2) {
      // Stop asking: no more calls, so the timer below ends the test.
      ASSERT_TRUE(loop->update_fd(p.write_end.get(), 0));
      loop->add_timer(milliseconds(5), [&] { loop->stop(); });
    }
  }));
  ASSERT_TRUE(loop->run());
  EXPECT_EQ(writable, 2);
  EXPECT_FALSE(loop->update_fd(12345, kReadable));
  EXPECT_EQ(loop->update_fd(12345, kReadable).error().sys_errno, ENOENT);
}

TEST(EpollEventLoopTest, HangupIsReported) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  guard(*loop);
  Pipe p;
  std::uint32_t seen = 0;
  ASSERT_TRUE(loop->watch_fd(p.read_end.get(), kReadable, [&](std::uint32_t events) {
    seen = events;
    loop->unwatch_fd(p.read_end.get());
    loop->stop();
  }));
  p.write_end.reset();
  ASSERT_TRUE(loop->run());
  EXPECT_TRUE(seen & kHangup);
}

TEST(EpollEventLoopTest, WatchingTwiceFails) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  Pipe p;
  ASSERT_TRUE(loop->watch_fd(p.read_end.get(), kReadable, [](std::uint32_t) {}));
  auto again = loop->watch_fd(p.read_end.get(), kReadable, [](std::uint32_t) {});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().sys_errno, EEXIST);
  auto bad = loop->watch_fd(-1, kReadable, [](std::uint32_t) {});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().sys_errno, EBADF);
}

TEST(EpollEventLoopTest, CallbackMayUnwatchItselfAndOthers) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  guard(*loop);
  Pipe a;
  Pipe b;
  int a_calls = 0;
  int b_calls = 0;
  std::string big_capture(256, 'x');  // forces the callable onto the heap
  ASSERT_TRUE(loop->watch_fd(a.read_end.get(), kReadable, [&, big_capture](std::uint32_t) {
    ++a_calls;
    loop->unwatch_fd(a.read_end.get());
    loop->unwatch_fd(b.read_end.get());
    // Touch the captures after unwatching: the callable must still be alive.
    EXPECT_EQ(big_capture.size(), 256u);
    loop->add_timer(milliseconds(5), [&] { loop->stop(); });
  }));
  ASSERT_TRUE(loop->watch_fd(b.read_end.get(), kReadable, [&](std::uint32_t) {
    ++b_calls;
    loop->unwatch_fd(a.read_end.get());
    loop->unwatch_fd(b.read_end.get());
    loop->add_timer(milliseconds(5), [&] { loop->stop(); });
  }));
  a.put('1');
  b.put('2');
  ASSERT_TRUE(loop->run());
  // Whichever ran first removed the other, in the same turn.
  EXPECT_EQ(a_calls + b_calls, 1);
}

TEST(EpollEventLoopTest, RunOnceWaitsAtMostTheTimeout) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  TimePoint start = loop->now();
  ASSERT_TRUE(loop->run_once(milliseconds(20)));
  TimePoint waited = loop->now() - start;
  EXPECT_GE(waited, milliseconds(19));
  EXPECT_LT(waited, seconds(2));
}

TEST(EpollEventLoopTest, SignalsArriveAsCallbacks) {
  ASSERT_FALSE(signal_blocked(SIGHUP));
  {
    auto loop = make_loop();
    ASSERT_TRUE(loop);
    guard(*loop);
    std::vector<int> got;
    auto on_signal = [&](int signo) {
      got.push_back(signo);
      if (got.size() == 3) loop->stop();
    };
    ASSERT_TRUE(loop->watch_signal(SIGHUP, on_signal));
    ASSERT_TRUE(loop->watch_signal(SIGTERM, on_signal));
    ASSERT_TRUE(loop->watch_signal(SIGINT, on_signal));
    EXPECT_TRUE(signal_blocked(SIGHUP));
    // Blocked now, so raise() leaves them pending for the signalfd instead of
    // running the default action (which would end the test process).
    ASSERT_EQ(::raise(SIGHUP), 0);
    ASSERT_EQ(::raise(SIGTERM), 0);
    ASSERT_EQ(::raise(SIGINT), 0);
    ASSERT_TRUE(loop->run());
    ASSERT_EQ(got.size(), 3u);
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, (std::vector<int>{SIGHUP, SIGINT, SIGTERM}));
    // Pending but unhandled when the loop goes away: consumed, not delivered.
    ASSERT_EQ(::raise(SIGHUP), 0);
  }
  EXPECT_FALSE(signal_blocked(SIGHUP));
  EXPECT_FALSE(signal_blocked(SIGTERM));
  EXPECT_FALSE(signal_blocked(SIGINT));
}

TEST(EpollEventLoopTest, SecondSignalWatchReplacesTheFirst) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  guard(*loop);
  int first = 0;
  int second = 0;
  ASSERT_TRUE(loop->watch_signal(SIGHUP, [&](int) { ++first; }));
  ASSERT_TRUE(loop->watch_signal(SIGHUP, [&](int) {
    ++second;
    loop->stop();
  }));
  ASSERT_EQ(::raise(SIGHUP), 0);
  ASSERT_TRUE(loop->run());
  EXPECT_EQ(first, 0);
  EXPECT_EQ(second, 1);
}

TEST(EpollEventLoopTest, StopEndsRunAndRunCanResume) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  guard(*loop, seconds(10));
  int runs = 0;
  loop->add_timer(milliseconds(1), [&] {
    ++runs;
    loop->stop();
  });
  ASSERT_TRUE(loop->run());
  loop->add_timer(milliseconds(1), [&] {
    ++runs;
    loop->stop();
  });
  ASSERT_TRUE(loop->run());
  EXPECT_EQ(runs, 2);
}

TEST(EpollEventLoopTest, NowIsMonotonicMicroseconds) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  TimePoint a = loop->now();
  ::usleep(2000);
  TimePoint b = loop->now();
  EXPECT_GE(b - a, 2000);
  EXPECT_LT(b - a, 2'000'000);
}

}  // namespace
}  // namespace buckwild::daemon

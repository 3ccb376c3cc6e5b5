#include "daemon/os/testing/manual_event_loop.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <string>
#include <vector>

#include "daemon/net/testing/fake_tun_device.h"

namespace buckwild::daemon {
namespace {

TEST(ManualEventLoopTest, TimersRunInVirtualTime) {
  ManualEventLoop loop(1'000);
  std::vector<TimePoint> at;
  loop.add_timer(seconds(3600), [&] { at.push_back(loop.now()); });
  loop.add_timer(milliseconds(5), [&] { at.push_back(loop.now()); });
  loop.run_for(seconds(3600));
  EXPECT_EQ(at, (std::vector<TimePoint>{1'000 + 5'000, 1'000 + seconds(3600)}));
  EXPECT_EQ(loop.now(), 1'000 + seconds(3600));
}

TEST(ManualEventLoopTest, RunUntilStopsAtTheLimitWithTimersLeft) {
  ManualEventLoop loop;
  int ticks = 0;
  loop.add_periodic_timer(milliseconds(250), [&] { ++ticks; });
  loop.run_until(seconds(10));
  EXPECT_EQ(ticks, 40);
  EXPECT_EQ(loop.now(), seconds(10));
  EXPECT_EQ(loop.pending_timers(), 1u);
}

TEST(ManualEventLoopTest, RunUntilPredicate) {
  ManualEventLoop loop;
  int ticks = 0;
  loop.add_periodic_timer(milliseconds(10), [&] { ++ticks; });
  EXPECT_TRUE(loop.run_until([&] { return ticks == 7; }, seconds(1)));
  EXPECT_EQ(loop.now(), milliseconds(70));
  EXPECT_FALSE(loop.run_until([] { return false; }, seconds(2)));
  EXPECT_EQ(loop.now(), seconds(2));
}

TEST(ManualEventLoopTest, RunReturnsWhenIdleOrStopped) {
  ManualEventLoop loop;
  int fired = 0;
  loop.add_timer(milliseconds(1), [&] { ++fired; });
  loop.add_timer(milliseconds(2), [&] { ++fired; });
  ASSERT_TRUE(loop.run());
  EXPECT_EQ(fired, 2);
  loop.add_periodic_timer(milliseconds(1), [&] {
    if (++fired == 10) loop.stop();
  });
  ASSERT_TRUE(loop.run());
  EXPECT_EQ(fired, 10);
}

TEST(ManualEventLoopTest, DispatchesReadyFakeDescriptors) {
  ManualEventLoop loop;
  FakeTunDevice tun("fake0");
  std::vector<std::size_t> lengths;
  ASSERT_TRUE(loop.watch_fd(tun.fd(), kReadable, [&](std::uint32_t events) {
    EXPECT_TRUE(events & kReadable);
    std::array<std::uint8_t, 64> buf;
    auto n = tun.read_packet(buf);
    ASSERT_TRUE(n);
    lengths.push_back(*n);
  }));
  EXPECT_EQ(loop.dispatch_ready(), 0u);
  const std::uint8_t packet[20] = {0x45};
  loop.add_timer(milliseconds(100), [&] {
    tun.inject(packet);
    tun.inject(Bytes(packet, 10));
  });
  loop.run_for(seconds(1));
  EXPECT_EQ(lengths, (std::vector<std::size_t>{20, 10}));
  EXPECT_FALSE(loop.watch_fd(tun.fd(), kReadable, [](std::uint32_t) {}));
  loop.unwatch_fd(tun.fd());
  EXPECT_TRUE(loop.watch_fd(tun.fd(), kReadable, [](std::uint32_t) {}));
}

// A turn is the ready descriptors, or the timers of one deadline; the
// turn-end callbacks follow each.
TEST(ManualEventLoopTest, TurnEndCallbacksFollowEachTurn) {
  ManualEventLoop loop;
  std::vector<std::string> log;
  loop.add_timer(milliseconds(1), [&] { log.emplace_back("t1"); });
  loop.add_timer(milliseconds(1), [&] { log.emplace_back("t1'"); });
  loop.add_timer(milliseconds(2), [&] { log.emplace_back("t2"); });
  const TurnEndId id = loop.add_turn_end([&] { log.emplace_back("end"); });
  loop.run_for(milliseconds(2));
  EXPECT_EQ(log, (std::vector<std::string>{"t1", "t1'", "end", "t2", "end"}));
  log.clear();
  loop.remove_turn_end(id);
  loop.add_timer(milliseconds(1), [&] { log.emplace_back("t3"); });
  loop.run_for(milliseconds(1));
  EXPECT_EQ(log, (std::vector<std::string>{"t3"}));
}

TEST(ManualEventLoopTest, DeliversSignals) {
  ManualEventLoop loop;
  int got = 0;
  ASSERT_TRUE(loop.watch_signal(SIGHUP, [&](int signo) { got = signo; }));
  loop.deliver_signal(SIGTERM);  // nobody watching: nothing happens
  EXPECT_EQ(got, 0);
  loop.deliver_signal(SIGHUP);
  EXPECT_EQ(got, SIGHUP);
}

TEST(ManualEventLoopTest, CancelAndUpdate) {
  ManualEventLoop loop;
  bool fired = false;
  TimerId id = loop.add_timer(10, [&] { fired = true; });
  EXPECT_TRUE(loop.cancel_timer(id));
  loop.run_for(100);
  EXPECT_FALSE(fired);
  EXPECT_EQ(loop.update_fd(99, kReadable).error().sys_errno, ENOENT);
}

}  // namespace
}  // namespace buckwild::daemon

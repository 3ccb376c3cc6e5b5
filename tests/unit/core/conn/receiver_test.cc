#include "core/conn/receiver.h"

#include <gtest/gtest.h>

#include <array>
#include <vector>

namespace buckwild::conn {
namespace {

constexpr std::size_t kMss = 100;

ReceiverConfig config(std::size_t buffer = 1000) {
  ReceiverConfig c;
  c.mss = kMss;
  c.buffer = buffer;
  c.ack_delay = milliseconds(50);
  return c;
}

std::vector<std::uint8_t> seg(std::uint8_t v, std::size_t n = kMss) { return std::vector<std::uint8_t>(n, v); }

std::vector<std::uint8_t> read_all(Receiver& r) {
  std::vector<std::uint8_t> out(r.readable());
  EXPECT_EQ(r.read(out), out.size());
  return out;
}

TEST(ReceiverTest, InOrderDeliveryAndDelayedAck) {
  Receiver r(config());
  r.start(50, 0);
  EXPECT_EQ(r.on_data(50, seg(1), 0), Receiver::Arrival::kInOrder);
  EXPECT_FALSE(r.ack_due(0));
  EXPECT_EQ(r.ack_deadline(), milliseconds(50));  // ACK within 50 ms
  EXPECT_TRUE(r.ack_due(milliseconds(50)));
  EXPECT_EQ(r.on_data(51, seg(2), 1), Receiver::Arrival::kInOrder);
  EXPECT_TRUE(r.ack_due(1));  // every second segment at once
  r.on_ack_sent(true);
  EXPECT_FALSE(r.ack_due(1));
  EXPECT_EQ(r.ack(), 52u);
  const auto got = read_all(r);
  ASSERT_EQ(got.size(), 200u);
  EXPECT_EQ(got[0], 1);
  EXPECT_EQ(got[199], 2);
}

TEST(ReceiverTest, OutOfOrderHeldThenDeliveredInOrder) {
  Receiver r(config());
  r.start(0, 0);
  EXPECT_EQ(r.on_data(2, seg(3), 0), Receiver::Arrival::kOutOfOrder);
  EXPECT_TRUE(r.ack_due(0));  // out of order: ACK at once
  EXPECT_EQ(r.sack_bitmap(), 0b10u);  // segment ack + 2
  EXPECT_EQ(r.on_data(1, seg(2), 0), Receiver::Arrival::kOutOfOrder);
  EXPECT_EQ(r.readable(), 0u);
  EXPECT_EQ(r.on_data(0, seg(1), 0), Receiver::Arrival::kInOrder);
  EXPECT_EQ(r.ack(), 3u);
  EXPECT_EQ(r.sack_bitmap(), 0u);
  const auto got = read_all(r);
  ASSERT_EQ(got.size(), 300u);
  EXPECT_EQ(got[0], 1);
  EXPECT_EQ(got[150], 2);
  EXPECT_EQ(got[250], 3);
}

TEST(ReceiverTest, DuplicatesAreRecognisedAndAckedAtOnce) {
  Receiver r(config());
  r.start(0, 0);
  r.on_data(0, seg(1), 0);
  r.on_data(3, seg(4), 0);
  r.on_ack_sent(true);
  EXPECT_EQ(r.on_data(0, seg(1), 0), Receiver::Arrival::kDuplicate);
  EXPECT_TRUE(r.ack_due(0));
  EXPECT_EQ(r.on_data(3, seg(4), 0), Receiver::Arrival::kDuplicate);
  EXPECT_EQ(r.stats().duplicates, 2u);
  EXPECT_EQ(r.readable(), kMss);
}

TEST(ReceiverTest, MemoryBoundDropsWhatDoesNotFit) {
  Receiver r(config(500));  // 5 slots of 100 bytes
  r.start(0, 0);
  for (Seq s = 1; s <= 4; ++s) EXPECT_EQ(r.on_data(s, seg(1), 0), Receiver::Arrival::kOutOfOrder);
  // One more out-of-order segment would need a sixth MSS of room.
  EXPECT_EQ(r.on_data(5, seg(1), 0), Receiver::Arrival::kDropped);
  EXPECT_EQ(r.on_data(0, seg(1), 0), Receiver::Arrival::kInOrder);
  EXPECT_EQ(r.readable(), 500u);
  EXPECT_TRUE(r.check_invariants());
  // Full: the next in-order segment has no room either.
  EXPECT_EQ(r.on_data(5, seg(1), 0), Receiver::Arrival::kDropped);
  read_all(r);
  EXPECT_EQ(r.on_data(5, seg(1), 0), Receiver::Arrival::kInOrder);
}

TEST(ReceiverTest, WindowShrinksWithUnreadDataAndReopens) {
  Receiver r(config(1000));
  r.start(0, 0);
  EXPECT_EQ(r.take_window_bytes(), 1000u);
  for (Seq s = 0; s < 10; ++s) r.on_data(s, seg(1), 0);
  EXPECT_EQ(r.take_window_bytes(), 0u);  // the application is not reading
  EXPECT_FALSE(r.window_update_due());
  std::array<std::uint8_t, 300> buf{};
  r.read(buf);
  EXPECT_TRUE(r.window_update_due());
  EXPECT_EQ(r.take_window_bytes(), 300u);
  EXPECT_FALSE(r.window_update_due());
}

TEST(ReceiverTest, SillyWindowAvoidanceAndScaledField) {
  Receiver r(config(1000));
  r.start(0, 2);
  for (Seq s = 0; s < 9; ++s) r.on_data(s, seg(1), 0);
  // 100 bytes free: below min(MSS, buffer / 2)? No, exactly one MSS: offered.
  EXPECT_EQ(r.take_window_field(), 100 >> 2);
  r.on_data(9, seg(1, 60), 0);
  // 40 bytes free would be silly, but what was offered is never withdrawn.
  EXPECT_EQ(r.take_window_field(), 40 >> 2);
  EXPECT_EQ(Receiver::scale_for(65535), 0);
  EXPECT_EQ(Receiver::scale_for(2 * 1024 * 1024), 6);
  // The largest windows [protocol] max_window_mb allows still fit the field.
  EXPECT_EQ(Receiver::scale_for(std::size_t{32} << 20), 10);
  EXPECT_EQ(Receiver::scale_for(std::size_t{512} << 20), 14);
  EXPECT_GE(std::uint64_t{0xFFFF} << 14, std::uint64_t{512} << 20);
}

TEST(ReceiverTest, FinInOrderAndOutOfOrder) {
  Receiver r(config());
  r.start(10, 0);
  EXPECT_EQ(r.on_fin(12, 0), Receiver::Arrival::kOutOfOrder);
  EXPECT_FALSE(r.fin_received());
  EXPECT_EQ(r.on_data(13, seg(9), 0), Receiver::Arrival::kDropped);  // after the FIN
  r.on_data(11, seg(2), 0);
  r.on_data(10, seg(1), 0);
  EXPECT_TRUE(r.fin_received());
  EXPECT_EQ(r.ack(), 13u);
  EXPECT_EQ(r.on_fin(12, 0), Receiver::Arrival::kDuplicate);
  EXPECT_EQ(r.on_fin(14, 0), Receiver::Arrival::kDropped);  // a different FIN
  EXPECT_EQ(read_all(r).size(), 200u);
}

TEST(ReceiverTest, FinBelowHeldDataIsRejected) {
  Receiver r(config());
  r.start(0, 0);
  r.on_data(5, seg(1), 0);
  EXPECT_EQ(r.on_fin(3, 0), Receiver::Arrival::kDropped);
}

// ---- autotuning (dynamic right-sizing) ----------------------------------------------

ReceiverConfig tuned(std::size_t initial, std::size_t max) {
  ReceiverConfig c = config(max);
  c.initial_window = initial;
  return c;
}

// Delivers `n` full segments in order from `next` and reads them all.
void flow(Receiver& r, Seq& next, std::size_t n, TimePoint now) {
  std::array<std::uint8_t, kMss> buf{};
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_EQ(r.on_data(next++, seg(1), now), Receiver::Arrival::kInOrder);
    r.read(buf);
  }
}

TEST(ReceiverTest, AutotuningStartsAtTheInitialWindow) {
  Receiver r(tuned(1000, 100'000));
  r.start(0, 0);
  EXPECT_EQ(r.receive_space(), 1000u);
  EXPECT_EQ(r.take_window_bytes(), 1000u);
  // The initial window never exceeds the maximum.
  Receiver small(tuned(5000, 2000));
  EXPECT_EQ(small.receive_space(), 2000u);
}

TEST(ReceiverTest, AutotuningGrowsWhileTheWindowLimitsTheSender) {
  Receiver r(tuned(1000, 1'000'000));
  r.start(0, 0);
  const Duration rtt = milliseconds(100);
  Seq next = 0;
  r.tune_window(0, rtt);  // the first call starts the measurement
  // A sender held to our window delivers one window per round trip: the
  // application reads 1000 bytes in the round trip, and the space doubles.
  flow(r, next, 10, milliseconds(50));
  r.tune_window(milliseconds(60), rtt);  // less than a round trip: nothing yet
  EXPECT_EQ(r.receive_space(), 1000u);
  r.tune_window(milliseconds(100), rtt);
  EXPECT_EQ(r.receive_space(), 2000u);
  EXPECT_EQ(r.stats().window_growths, 1u);
  // The window grew by half the space or more: tell the sender now.
  EXPECT_TRUE(r.window_update_due());
  EXPECT_EQ(r.take_window_bytes(), 2000u);
  // Reads doubled from the round trip before (1000 -> 2000): twice them, plus
  // Linux's bonus of 2 x (2000 - 1000) / 1000 times that: 4000 x 3.
  flow(r, next, 20, milliseconds(150));
  r.tune_window(milliseconds(200), rtt);
  EXPECT_EQ(r.receive_space(), 12'000u);
  // Reads that grew by a quarter earn half again: 2 x 2500 x 1.5.
  flow(r, next, 25, milliseconds(250));
  r.tune_window(milliseconds(300), rtt);
  EXPECT_EQ(r.receive_space(), 12'000u);  // 7500 is less than the space
  flow(r, next, 100, milliseconds(350));
  r.tune_window(milliseconds(400), rtt);
  // 10 000 read after 2500: the bonus is capped at four times 2c.
  EXPECT_EQ(r.receive_space(), 100'000u);
  EXPECT_TRUE(r.check_invariants());
}

TEST(ReceiverTest, AutotuningDoesNotGrowForASlowReader) {
  Receiver r(tuned(4000, 100'000));
  r.start(0, 0);
  const Duration rtt = milliseconds(100);
  Seq next = 0;
  r.tune_window(0, rtt);
  // 1500 bytes per round trip against a 4000-byte space: the window is not
  // what limits the flow, so it does not grow (2 x 1500 < 4000).
  for (int round = 1; round <= 5; ++round) {
    flow(r, next, 15, milliseconds(100) * round - 1);
    r.tune_window(milliseconds(100) * round, rtt);
  }
  EXPECT_EQ(r.receive_space(), 4000u);
  EXPECT_EQ(r.stats().window_growths, 0u);
  // Bytes received but not read do not count: only consumption does.
  for (int i = 0; i < 30; ++i) r.on_data(next++, seg(1), milliseconds(550));
  r.tune_window(milliseconds(600), rtt);
  EXPECT_EQ(r.receive_space(), 4000u);
}

TEST(ReceiverTest, AutotuningStopsAtTheMaximum) {
  Receiver r(tuned(1000, 3000));
  r.start(0, 0);
  const Duration rtt = milliseconds(10);
  Seq next = 0;
  r.tune_window(0, rtt);
  for (int round = 1; round <= 6; ++round) {
    flow(r, next, r.receive_space() / kMss, milliseconds(10) * round - 1);
    r.tune_window(milliseconds(10) * round, rtt);
    EXPECT_LE(r.receive_space(), 3000u);
  }
  EXPECT_EQ(r.receive_space(), 3000u);
  EXPECT_EQ(r.take_window_bytes(), 3000u);
  EXPECT_EQ(r.stats().window_growths, 2u);  // 1000 -> 2000 -> 3000
  // Without an RTT there is nothing to measure against.
  Receiver no_rtt(tuned(1000, 3000));
  no_rtt.start(0, 0);
  no_rtt.tune_window(0, 0);
  no_rtt.tune_window(seconds(1), 0);
  EXPECT_EQ(no_rtt.receive_space(), 1000u);
}

// The receiver's own RTT: a sender held to our window delivers one window per
// round trip, and the time from a mark to a whole window past it is that
// round trip. A sender that is not held back makes longer samples, which the
// minimum ignores.
TEST(ReceiverTest, MeasuresTheRoundTripFromWholeWindowsArriving) {
  Receiver r(tuned(1000, 1'000'000));
  r.start(0, 0);
  Seq next = 0;
  EXPECT_EQ(r.rtt_estimate(), 0);
  ASSERT_EQ(r.take_window_bytes(), 1000u);
  flow(r, next, 10, milliseconds(1));  // the first segment sets the mark
  EXPECT_EQ(r.rtt_estimate(), 0);
  // The next window arrives a round trip (100 ms) later.
  ASSERT_EQ(r.take_window_bytes(), 1000u);
  flow(r, next, 10, milliseconds(101));
  EXPECT_EQ(r.rtt_estimate(), milliseconds(100));
  // A sender idling between small writes: windows take longer to arrive.
  for (int i = 0; i < 20; ++i) flow(r, next, 1, milliseconds(301) + milliseconds(40) * i);
  EXPECT_EQ(r.rtt_estimate(), milliseconds(100));
  // And the estimate lets autotuning work without any other RTT.
  Receiver t(tuned(1000, 1'000'000));
  t.start(0, 0);
  next = 0;
  for (int round = 0; round < 8; ++round) {
    const TimePoint now = milliseconds(100) * round + 1;
    t.take_window_bytes();
    flow(t, next, t.receive_space() / kMss, now);
    t.tune_window(now, t.rtt_estimate());
  }
  EXPECT_EQ(t.rtt_estimate(), milliseconds(100));
  EXPECT_GT(t.receive_space(), 16'000u);
  EXPECT_TRUE(t.check_invariants());
}

TEST(ReceiverTest, BudgetPressureAdvertisesLessAndDropsNothingAccepted) {
  // The budget has room for 8 KiB past the guaranteed 64 KiB: a space of
  // 200 KB is advertised only as far as the storage can grow.
  MemoryBudget budget(8 * 1024);
  ReceiverConfig c = tuned(200'000, 200'000);
  c.mss = 1000;
  c.memory = &budget;
  Receiver r(c);
  r.start(0, 0);
  const std::uint32_t offered = r.take_window_bytes();
  EXPECT_EQ(offered, MemoryBudget::kGuaranteedRing + 8 * 1024);
  // Everything inside what was offered is kept.
  Seq next = 0;
  std::vector<std::uint8_t> one(1000, 3);
  std::uint64_t kept = 0;
  while (kept + 1000 <= offered) {
    ASSERT_EQ(r.on_data(next++, one, 0), Receiver::Arrival::kInOrder);
    kept += 1000;
  }
  EXPECT_EQ(r.readable(), kept);
  EXPECT_EQ(r.stats().dropped, 0u);
  EXPECT_LE(budget.used(), budget.limit());
}

}  // namespace
}  // namespace buckwild::conn

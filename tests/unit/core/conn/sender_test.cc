#include "core/conn/sender.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace buckwild::conn {
namespace {

constexpr std::size_t kMss = 1000;

SenderConfig config(std::size_t buffer = 100'000, std::size_t initial_buffer = SenderConfig{}.initial_buffer) {
  SenderConfig c;
  c.mss = kMss;
  c.buffer = buffer;
  c.initial_buffer = initial_buffer;
  return c;
}

std::vector<Transmission> drain(Sender& s, TimePoint now) {
  std::vector<Transmission> out;
  while (auto t = s.next_transmission(now)) out.push_back(*t);
  return out;
}

AckInfo ack(Seq a, std::uint64_t window = 1 << 20) {
  AckInfo i;
  i.ack = a;
  i.window = window;
  return i;
}

TEST(SenderTest, SegmentsTheStreamWithinTheInitialWindow) {
  Sender s(config());
  std::vector<std::uint8_t> data(25'500, 7);
  EXPECT_EQ(s.write(data), 25'500u);
  s.start(500, 1 << 20);
  const auto sent = drain(s, 0);
  ASSERT_EQ(sent.size(), 10u);  // initial cwnd: 10 segments
  EXPECT_EQ(sent[0].seq, 500u);
  EXPECT_EQ(sent[9].seq, 509u);
  EXPECT_EQ(sent[3].offset, 3000u);
  EXPECT_EQ(sent[3].length, kMss);
  EXPECT_EQ(s.bytes_in_flight(), 10'000u);
  EXPECT_TRUE(s.check_invariants());
  std::vector<std::uint8_t> payload(kMss);
  s.copy_payload(sent[3], payload);
  EXPECT_EQ(payload[0], 7);
}

TEST(SenderTest, CumulativeAckFreesTheStreamAndSamplesRtt) {
  Sender s(config());
  std::vector<std::uint8_t> data(5000, 1);
  s.write(data);
  s.start(0, 1 << 20);
  drain(s, 0);
  const AckOutcome out = s.on_ack(ack(3), milliseconds(40));
  EXPECT_TRUE(out.acceptable && out.delivered_new);
  EXPECT_EQ(s.first_unacked(), 3u);
  EXPECT_EQ(s.buffered(), 2000u);
  EXPECT_EQ(s.rtt().smoothed(), milliseconds(40));
  EXPECT_FALSE(s.on_ack(ack(9), milliseconds(41)).acceptable);  // never sent
  EXPECT_TRUE(s.check_invariants());
}

TEST(SenderTest, PeerWindowLimitsUnackedBytes) {
  Sender s(config());
  std::vector<std::uint8_t> data(20'000, 1);
  s.write(data);
  s.start(0, 3500);
  EXPECT_EQ(drain(s, 0).size(), 3u);  // a fourth 1000-byte segment would exceed 3500
  // The window opens with an ACK of the first two.
  s.on_ack(ack(2, 3500), milliseconds(10));
  EXPECT_EQ(drain(s, milliseconds(10)).size(), 2u);
}

TEST(SenderTest, SackedHoleIsRetransmittedWithTheSameBoundaries) {
  Sender s(config());
  std::vector<std::uint8_t> data(10'000, 1);
  s.write(data);
  s.start(0, 1 << 20);
  drain(s, 0);
  // Segment 0 lost; 1..9 arrive (header bitmap bits 0..8).
  AckInfo a = ack(0);
  a.bitmap = 0x1FF;
  s.on_ack(a, milliseconds(40));
  // RACK: declared lost after RACK.rtt + reo_wnd (0 with 3+ SACKed).
  auto t = s.next_transmission(milliseconds(40));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->seq, 0u);
  EXPECT_TRUE(t->retransmission);
  EXPECT_EQ(t->offset, 0u);
  EXPECT_EQ(t->length, kMss);
  EXPECT_EQ(s.stats().retransmissions, 1u);
  EXPECT_LT(s.congestion().congestion_window(), 10u * kMss);  // one reduction
  EXPECT_TRUE(s.check_invariants());
  s.on_ack(ack(10), milliseconds(80));
  EXPECT_EQ(s.buffered(), 0u);
}

TEST(SenderTest, SackBlocksBeyondTheBitmap) {
  SenderConfig c = config();
  c.buffer = 1'000'000;
  Sender s(c);
  std::vector<std::uint8_t> data(100'000, 1);
  s.write(data);
  s.start(0, 1 << 20);
  drain(s, 0);
  AckInfo first = ack(0);
  first.bitmap = 0xFFFFFFFF;
  s.on_ack(first, milliseconds(40));  // grows cwnd, all of 1..32 delivered
  drain(s, milliseconds(40));
  std::vector<wire::SackBlock> blocks = {{40, 60}};
  AckInfo a = ack(0);
  a.bitmap = 0xFFFFFFFF;
  a.blocks = blocks;
  const auto before = s.stats().bytes_delivered;
  s.on_ack(a, milliseconds(41));
  EXPECT_GE(s.stats().bytes_delivered, before);
  EXPECT_TRUE(s.check_invariants());
}

TEST(SenderTest, RetransmissionTimeoutBacksOffAndFailsAfterTheLimit) {
  Sender s(config());
  std::vector<std::uint8_t> data(3000, 1);
  s.write(data);
  s.start(0, 1 << 20);
  drain(s, 0);
  TimePoint now = 0;
  Duration last_gap = 0;
  for (unsigned i = 0; i < wire::kMaxRetransmissions; ++i) {
    const TimePoint due = s.next_expiry();
    ASSERT_NE(due, kNever);
    EXPECT_GE(due - now, last_gap);  // exponential backoff (capped at 60 s)
    last_gap = due - now;
    now = due;
    EXPECT_EQ(s.on_expiry(now), Sender::TimerOutcome::kNone);
    const auto probes = drain(s, now);
    EXPECT_FALSE(probes.empty());
    EXPECT_LE(probes.size(), 2u);  // two probe segments per timeout
  }
  EXPECT_EQ(last_gap, seconds(60));
  EXPECT_EQ(s.congestion().congestion_window(), kMss);
  now = s.next_expiry();
  EXPECT_EQ(s.on_expiry(now), Sender::TimerOutcome::kFailed);
}

TEST(SenderTest, PathRestoredResendsAtOnceAndClearsTheBackoff) {
  Sender s(config());
  std::vector<std::uint8_t> data(3000, 1);
  s.write(data);
  s.start(0, 1 << 20);
  s.on_rtt_sample(milliseconds(40));
  drain(s, 0);
  // Nothing timed out yet: the timer is not backed off, nothing to do.
  EXPECT_FALSE(s.on_path_restored(milliseconds(10)));
  // An outage: timeouts back the timer off to tens of seconds.
  TimePoint now = 0;
  for (int i = 0; i < 8; ++i) {
    now = s.next_expiry();
    s.on_expiry(now);
    drain(s, now);
  }
  ASSERT_GE(s.rtt().backoff(), 7u);
  const Duration backed_off = s.next_expiry() - now;
  EXPECT_GE(backed_off, seconds(25));
  const std::uint64_t timeouts = s.stats().timeouts;
  // The path is back a second later: two segments leave now, not in 25 s.
  now += seconds(1);
  EXPECT_TRUE(s.on_path_restored(now));
  const auto resent = drain(s, now);
  ASSERT_EQ(resent.size(), 2u);
  EXPECT_EQ(resent[0].seq, 0u);
  EXPECT_TRUE(resent[0].retransmission);
  EXPECT_EQ(s.rtt().backoff(), 0u);
  EXPECT_EQ(s.stats().timeouts, timeouts);  // not a timeout
  EXPECT_LE(s.next_expiry() - now, s.rtt().rto());
  EXPECT_TRUE(s.check_invariants());
  // Asked again at once: nothing is backed off any more.
  EXPECT_FALSE(s.on_path_restored(now));
  // The ACK then delivers the rest as usual.
  s.on_ack(ack(2), now + milliseconds(40));
  const auto rest = drain(s, now + milliseconds(40));
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].seq, 2u);
}

TEST(SenderTest, PathRestoredWithNothingInFlightDoesNothing) {
  Sender s(config());
  s.start(0, 1 << 20);
  EXPECT_FALSE(s.on_path_restored(seconds(5)));
  EXPECT_EQ(s.next_expiry(), kNever);
}

TEST(SenderTest, TailLossProbeBeforeTheTimeout) {
  Sender s(config());
  std::vector<std::uint8_t> data(2000, 1);
  s.write(data);
  s.start(0, 1 << 20);
  s.on_rtt_sample(milliseconds(40));
  drain(s, 0);
  const TimePoint pto = s.next_expiry();
  EXPECT_EQ(pto, milliseconds(80));  // 2 x SRTT, two segments in flight
  s.on_expiry(pto);
  const auto probe = drain(s, pto);
  ASSERT_EQ(probe.size(), 1u);
  EXPECT_EQ(probe[0].seq, 1u);  // the last segment again
  EXPECT_EQ(s.stats().tail_loss_probes, 1u);
  EXPECT_EQ(s.stats().timeouts, 0u);
}

TEST(SenderTest, ZeroWindowPersistsAndProbes) {
  Sender s(config());
  std::vector<std::uint8_t> data(5000, 1);
  s.write(data);
  s.start(0, 0);
  EXPECT_TRUE(drain(s, 0).empty());
  const TimePoint due = s.next_expiry();
  ASSERT_NE(due, kNever);
  s.on_expiry(due);
  const auto probe = drain(s, due);
  ASSERT_EQ(probe.size(), 1u);  // one segment beyond the window
  // The peer answers with a zero window again: still alive, no failure.
  for (int i = 0; i < 20; ++i) {
    s.on_ack(ack(0, 0), s.next_expiry() - 1);
    EXPECT_EQ(s.on_expiry(s.next_expiry()), Sender::TimerOutcome::kNone);
    drain(s, s.next_expiry());
  }
  // The window opens: everything goes.
  s.on_ack(ack(0, 1 << 20), seconds(2000));
  EXPECT_FALSE(drain(s, seconds(2000)).empty());
  EXPECT_TRUE(s.check_invariants());
}

TEST(SenderTest, FinIsTheLastSegment) {
  Sender s(config());
  std::vector<std::uint8_t> data(1500, 1);
  s.write(data);
  s.close();
  EXPECT_EQ(s.capacity(), 0u);
  EXPECT_EQ(s.write(data), 0u);
  s.start(7, 1 << 20);
  const auto sent = drain(s, 0);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[1].length, 500u);
  EXPECT_TRUE(sent[2].fin);
  EXPECT_EQ(sent[2].seq, 9u);
  EXPECT_EQ(sent[2].length, 0u);
  EXPECT_FALSE(s.fin_acked());
  EXPECT_TRUE(s.on_ack(ack(10), milliseconds(30)).fin_acked);
  EXPECT_TRUE(s.fin_acked());
}

TEST(SenderTest, NagleHoldsSmallSegmentsWhileDataIsInFlight) {
  SenderConfig c = config();
  c.nagle = true;
  Sender s(c);
  std::vector<std::uint8_t> data(1200, 1);
  s.write(data);
  s.start(0, 1 << 20);
  EXPECT_EQ(drain(s, 0).size(), 1u);  // 1000 bytes; the 200-byte rest waits
  s.on_ack(ack(1), milliseconds(10));
  EXPECT_EQ(drain(s, milliseconds(10)).size(), 1u);
}

// Send buffer growth (tcp_sndbuf_expand): the application may queue twice
// cwnd, at least the initial buffer and at most the maximum.
TEST(SenderTest, SendBufferFollowsTheCongestionWindow) {
  Sender s(config(200'000, 30'000));
  // Initial cwnd 10 segments = 10 000 bytes: 2 x cwnd is below the floor.
  EXPECT_EQ(s.send_limit(), 30'000u);
  EXPECT_EQ(s.capacity(), 30'000u);
  std::vector<std::uint8_t> data(50'000, 1);
  EXPECT_EQ(s.write(data), 30'000u);
  EXPECT_EQ(s.capacity(), 0u);
  s.start(0, 1 << 20);
  // Slow start: every ACK of a full flight doubles cwnd, and the limit with it.
  TimePoint now = 0;
  Seq acked = 0;
  for (int round = 0; round < 30 && s.send_limit() < 200'000; ++round) {
    const auto sent = drain(s, now);
    now += milliseconds(20);
    acked += static_cast<Seq>(sent.size());
    s.on_ack(ack(acked), now);
    std::vector<std::uint8_t> more(s.capacity(), 2);
    s.write(more);
    EXPECT_EQ(s.send_limit(),
              std::clamp<std::uint64_t>(2 * s.congestion().congestion_window(), 30'000, 200'000));
    EXPECT_LE(s.buffered(), s.send_limit());
    EXPECT_TRUE(s.check_invariants());
  }
  // cwnd of 100 segments or more: the limit stops at the maximum.
  EXPECT_GE(s.congestion().congestion_window(), 100'000u);
  EXPECT_EQ(s.send_limit(), 200'000u);
}

// What waits behind a hole (SACKed, or lost and not yet resent) does not
// count against the 2 x cwnd the send buffer keeps for what is in flight and
// what goes next: on a lossy path holes would otherwise leave the sender
// nothing new to send.
TEST(SenderTest, DataHeldBehindAHoleDoesNotShrinkTheSendBuffer) {
  Sender s(config(1'000'000, 10'000));
  std::vector<std::uint8_t> data(10'000, 1);
  ASSERT_EQ(s.write(data), 10'000u);
  s.start(0, 1 << 20);
  ASSERT_EQ(drain(s, 0).size(), 10u);
  const std::uint64_t cwnd_before = s.congestion().congestion_window();
  EXPECT_EQ(s.send_limit(), 2 * cwnd_before);
  // Segment 0 lost, 1..9 SACKed: nine segments wait behind the hole.
  AckInfo a = ack(0);
  a.bitmap = 0x1FF;
  s.on_ack(a, milliseconds(40));
  EXPECT_EQ(s.send_limit(), 2 * s.congestion().congestion_window() + 10'000 - s.bytes_in_flight());
  EXPECT_GE(s.capacity(), 2 * s.congestion().congestion_window() - s.bytes_in_flight());
  // The hole repaired: nothing is held, and the limit is 2 x cwnd again.
  drain(s, milliseconds(40));
  s.on_ack(ack(10), milliseconds(80));
  EXPECT_EQ(s.buffered(), 0u);
  EXPECT_EQ(s.send_limit(), std::max<std::uint64_t>(10'000, 2 * s.congestion().congestion_window()));
  EXPECT_TRUE(s.check_invariants());
}

}  // namespace
}  // namespace buckwild::conn

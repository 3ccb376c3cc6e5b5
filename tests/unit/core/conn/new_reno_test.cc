#include "core/conn/new_reno.h"

#include <gtest/gtest.h>

namespace buckwild::conn {
namespace {

constexpr std::size_t kMss = 1000;

CongestionStats limited() {
  CongestionStats s;
  s.mss = kMss;
  s.cwnd_limited = true;
  s.smoothed_rtt = milliseconds(100);
  return s;
}

AckEvent acked(std::uint64_t bytes, TimePoint sent) {
  AckEvent a;
  a.acked_bytes = bytes;
  a.largest_acked_sent_time = sent;
  return a;
}

TEST(NewRenoTest, InitialWindowIsTenSegments) {
  NewReno cc(kMss);
  EXPECT_EQ(cc.congestion_window(), 10 * kMss);
  EXPECT_TRUE(cc.in_slow_start());
}

TEST(NewRenoTest, SlowStartGrowsByBytesAcked) {
  NewReno cc(kMss);
  cc.on_ack(limited(), 10, acked(3 * kMss, 5));
  EXPECT_EQ(cc.congestion_window(), 13 * kMss);
}

TEST(NewRenoTest, NoGrowthWhenNotCwndLimited) {
  NewReno cc(kMss);
  CongestionStats s = limited();
  s.cwnd_limited = false;
  cc.on_ack(s, 10, acked(5 * kMss, 5));
  EXPECT_EQ(cc.congestion_window(), 10 * kMss);
}

TEST(NewRenoTest, LossHalvesOncePerWindow) {
  NewReno cc(kMss);
  cc.on_ack(limited(), 10, acked(10 * kMss, 5));  // cwnd 20 MSS
  cc.on_loss(limited(), 100, LossEvent{kMss, 50});
  EXPECT_EQ(cc.congestion_window(), 10 * kMss);
  EXPECT_EQ(cc.slow_start_threshold(), 10 * kMss);
  // Another loss of data sent before the reduction: same episode.
  cc.on_loss(limited(), 110, LossEvent{kMss, 90});
  EXPECT_EQ(cc.congestion_window(), 10 * kMss);
  // ACKs of data sent before the reduction do not grow cwnd.
  cc.on_ack(limited(), 120, acked(10 * kMss, 99));
  EXPECT_EQ(cc.congestion_window(), 10 * kMss);
  // Data sent after it: recovery is over; the credited bytes give one MSS.
  cc.on_ack(limited(), 200, acked(kMss, 150));
  EXPECT_EQ(cc.congestion_window(), 11 * kMss);
  // A loss of data sent after the reduction is a new event.
  cc.on_loss(limited(), 300, LossEvent{kMss, 150});
  EXPECT_EQ(cc.congestion_window(), 5500u);
}

TEST(NewRenoTest, CongestionAvoidanceAddsOneMssPerWindow) {
  NewReno cc(kMss);
  cc.on_loss(limited(), 100, LossEvent{kMss, 50});  // cwnd = ssthresh = 5 MSS
  const std::uint64_t w = cc.congestion_window();
  cc.on_ack(limited(), 200, acked(w - 1, 150));
  EXPECT_EQ(cc.congestion_window(), w);
  cc.on_ack(limited(), 201, acked(1, 151));
  EXPECT_EQ(cc.congestion_window(), w + kMss);
}

TEST(NewRenoTest, TimeoutCollapsesToOneSegmentAndHoldsSsthresh) {
  NewReno cc(kMss);
  CongestionStats s = limited();
  s.bytes_in_flight = 40 * kMss;
  cc.on_retransmission_timeout(s, 100);
  EXPECT_EQ(cc.congestion_window(), kMss);
  EXPECT_EQ(cc.slow_start_threshold(), 20 * kMss);
  s.bytes_in_flight = kMss;
  cc.on_retransmission_timeout(s, 200);  // repeated: ssthresh held
  EXPECT_EQ(cc.slow_start_threshold(), 20 * kMss);
  // The retransmissions after the timeout grow cwnd in slow start.
  cc.on_ack(limited(), 300, acked(kMss, 200));
  EXPECT_EQ(cc.congestion_window(), 2 * kMss);
}

TEST(NewRenoTest, SpuriousLossIsUndone) {
  NewReno cc(kMss);
  cc.on_ack(limited(), 10, acked(10 * kMss, 5));
  const auto before = cc.congestion_window();
  cc.on_loss(limited(), 100, LossEvent{kMss, 50});
  EXPECT_LT(cc.congestion_window(), before);
  cc.on_spurious_loss(limited(), 120);
  EXPECT_EQ(cc.congestion_window(), before);
  EXPECT_TRUE(cc.in_slow_start());
  cc.on_spurious_loss(limited(), 130);  // only once
  EXPECT_EQ(cc.congestion_window(), before);
}

TEST(NewRenoTest, PacingRateFollowsCwndOverSrtt) {
  NewReno cc(kMss);
  CongestionStats s = limited();
  s.smoothed_rtt = 0;
  EXPECT_EQ(cc.pacing_rate(s), 0u);  // no RTT yet: unpaced
  s.smoothed_rtt = milliseconds(100);
  // Slow start: 2 x 10 000 bytes / 0.1 s.
  EXPECT_EQ(cc.pacing_rate(s), 200'000u);
  cc.on_loss(s, 100, LossEvent{kMss, 50});  // 5 MSS, congestion avoidance
  EXPECT_EQ(cc.pacing_rate(s), 5000u * 5 / 4 * 10);
}

}  // namespace
}  // namespace buckwild::conn

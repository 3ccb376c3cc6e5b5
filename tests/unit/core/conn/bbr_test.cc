#include "core/conn/bbr.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace buckwild::conn {
namespace {

constexpr std::size_t kMss = 1000;
constexpr std::uint64_t kBandwidth = 10'000'000;  // bytes per second
constexpr Duration kRtt = milliseconds(40);
constexpr std::uint64_t kBdp = kBandwidth * 40 / 1000;  // 400 000 bytes

// A path with a fixed bottleneck: every round trip delivers `inflight` bytes
// in ten ACKs, each with an RTT sample and a delivery-rate sample of `rate`.
struct Path {
  Bbr cc{kMss};
  CongestionStats stats;
  TimePoint now = 0;

  Path() {
    stats.mss = kMss;
    stats.cwnd_limited = true;
    stats.smoothed_rtt = kRtt;
  }

  void round(std::uint64_t inflight, std::uint64_t rate = kBandwidth, Duration rtt = kRtt,
             bool app_limited = false) {
    for (int i = 0; i < 10; ++i) {
      now += rtt / 10;
      stats.delivered += inflight / 10;
      stats.bytes_in_flight = inflight;
      AckEvent a;
      a.acked_bytes = inflight / 10;
      a.prior_in_flight = inflight;
      a.largest_acked_sent_time = now - rtt;
      a.rtt_sample = rtt;
      // Below the bottleneck, a flight is delivered at its own pace.
      const std::uint64_t flight_rate = inflight * 1'000'000 / static_cast<std::uint64_t>(rtt);
      a.rate.delivered = std::min(rate, flight_rate) * static_cast<std::uint64_t>(rtt) / 1'000'000;
      a.rate.interval = rtt;
      a.rate.is_app_limited = app_limited;
      cc.on_ack(stats, now, a);
    }
  }

  // Through startup and drain into probe-bandwidth.
  void settle() {
    for (int r = 0; r < 40 && cc.mode() != Bbr::Mode::kProbeBandwidth; ++r) {
      const std::uint64_t flight = cc.mode() == Bbr::Mode::kDrain ? kBdp : cc.congestion_window();
      round(flight);
    }
    ASSERT_EQ(cc.mode(), Bbr::Mode::kProbeBandwidth);
  }
};

TEST(BbrTest, StartsWithTenSegmentsInStartup) {
  Bbr cc(kMss);
  EXPECT_EQ(cc.congestion_window(), 10 * kMss);
  EXPECT_EQ(cc.mode(), Bbr::Mode::kStartup);
  EXPECT_EQ(cc.bandwidth(), 0u);
  CongestionStats s;
  EXPECT_EQ(cc.pacing_rate(s), 0u);  // no RTT yet: not paced
  s.smoothed_rtt = milliseconds(100);
  // The initial window over the RTT at startup's gain: 2.885 × 10 000 B / 0.1 s.
  EXPECT_NEAR(static_cast<double>(cc.pacing_rate(s)), 288'500, 10);
}

TEST(BbrTest, LeavesStartupWhenTheBandwidthStopsGrowing) {
  Path p;
  p.settle();
  EXPECT_EQ(p.cc.bandwidth(), kBandwidth);
  EXPECT_EQ(p.cc.min_rtt(), kRtt);
  // About two bandwidth-delay products in flight, paced at the bandwidth
  // times the cycle's gain.
  p.round(kBdp);
  // Two BDPs plus three send quanta of 1 ms at 10 MB/s (10 000 bytes).
  EXPECT_NEAR(static_cast<double>(p.cc.congestion_window()), 2.0 * kBdp + 3 * 10'000, 2 * kMss);
  const double gain = static_cast<double>(p.cc.pacing_rate(p.stats)) / kBandwidth;
  EXPECT_TRUE(gain > 0.74 && gain < 1.26) << gain;
}

TEST(BbrTest, ApplicationLimitedRoundsDoNotEndStartup) {
  Path p;
  // A connection whose application supplies a trickle: many rounds, the same
  // small bandwidth, every sample application-limited.
  for (int r = 0; r < 12; ++r) p.round(20'000, kBandwidth, kRtt, /*app_limited=*/true);
  EXPECT_EQ(p.cc.mode(), Bbr::Mode::kStartup);
  // Then the application writes at full speed: startup finds the bottleneck.
  p.settle();
  EXPECT_EQ(p.cc.bandwidth(), kBandwidth);
}

TEST(BbrTest, TheGainCycleProbesAboveAndDrainsBelow) {
  Path p;
  p.settle();
  std::set<std::uint64_t> rates;
  for (int r = 0; r < 16; ++r) {
    p.round(2 * kBdp);  // a full window: the draining phase lasts its min RTT
    rates.insert(p.cc.pacing_rate(p.stats));
  }
  EXPECT_TRUE(rates.contains(kBandwidth * 5 / 4));
  EXPECT_TRUE(rates.contains(kBandwidth * 3 / 4));
  EXPECT_TRUE(rates.contains(kBandwidth));
}

TEST(BbrTest, RandomLossChangesNothing) {
  Path p;
  p.settle();
  p.round(kBdp);
  const std::uint64_t cwnd = p.cc.congestion_window();
  const std::uint64_t bw = p.cc.bandwidth();
  for (int i = 0; i < 20; ++i) {
    p.cc.on_loss(p.stats, p.now, LossEvent{kMss, p.now - kRtt});
  }
  EXPECT_EQ(p.cc.congestion_window(), cwnd);
  EXPECT_EQ(p.cc.bandwidth(), bw);
}

TEST(BbrTest, ATimeoutShrinksTheWindowWhichGrowsBackWithAcks) {
  Path p;
  p.settle();
  p.round(kBdp);
  const std::uint64_t before = p.cc.congestion_window();
  p.cc.on_retransmission_timeout(p.stats, p.now);
  EXPECT_EQ(p.cc.congestion_window(), Bbr::kMinimumWindowSegments * kMss);
  for (int r = 0; r < 12; ++r) p.round(p.cc.congestion_window());
  EXPECT_EQ(p.cc.congestion_window(), before);
  EXPECT_EQ(p.cc.bandwidth(), kBandwidth);  // the model survived
}

TEST(BbrTest, LowerApplicationLimitedSamplesDoNotLowerTheEstimate) {
  Path p;
  p.settle();
  for (int r = 0; r < 30; ++r) p.round(kBdp / 10, kBandwidth / 10, kRtt, /*app_limited=*/true);
  EXPECT_EQ(p.cc.bandwidth(), kBandwidth);
  // Samples that are not application-limited replace it once the window passes.
  for (int r = 0; r < 30; ++r) p.round(kBdp / 2, kBandwidth / 2);
  EXPECT_EQ(p.cc.bandwidth(), kBandwidth / 2);
}

TEST(BbrTest, ProbesRttWhenTheMinimumIsTenSecondsOld) {
  Path p;
  p.settle();
  // RTT samples above the minimum (a standing queue) for over 10 s.
  const Duration queued = milliseconds(60);
  const std::uint64_t queued_flight = kBandwidth * 60 / 1000;
  for (int r = 0; r < 200 && p.cc.mode() != Bbr::Mode::kProbeRtt; ++r) {
    p.round(queued_flight, kBandwidth, queued);
  }
  ASSERT_EQ(p.cc.mode(), Bbr::Mode::kProbeRtt);
  EXPECT_GE(p.now, Bbr::kMinRttWindow);
  EXPECT_EQ(p.cc.congestion_window(), Bbr::kMinimumWindowSegments * kMss);
  // The flight drains to four segments; 200 ms and a round later it is over,
  // with the RTT measured meanwhile as the new minimum (the path changed).
  const Duration longer = milliseconds(50);
  for (int r = 0; r < 20 && p.cc.mode() == Bbr::Mode::kProbeRtt; ++r) {
    p.round(Bbr::kMinimumWindowSegments * kMss, kBandwidth / 10, longer);
  }
  EXPECT_EQ(p.cc.mode(), Bbr::Mode::kProbeBandwidth);
  EXPECT_EQ(p.cc.min_rtt(), longer);
  EXPECT_EQ(p.cc.bandwidth(), kBandwidth);  // a few short rounds do not flush the estimate
}

TEST(BbrTest, IsChosenByItsAlgorithm) {
  auto cc = make_congestion_controller(CongestionAlgorithm::kBbr, kMss);
  EXPECT_EQ(cc->name(), "bbr");
  EXPECT_EQ(make_congestion_controller(CongestionAlgorithm::kNewReno, kMss)->name(), "newreno");
}

}  // namespace
}  // namespace buckwild::conn

// BBR congestion control (model-based, after Cardwell et al., "BBR:
// Congestion-Based Congestion Control", and draft-cardwell-iccrg-bbr-
// congestion-control, version 1): the sender paces at its estimate of the
// path's bottleneck bandwidth and keeps about two bandwidth-delay products in
// flight. Random loss does not shrink either, which is what a tunnel over a
// lossy underlay needs; NewReno halves its window at every loss episode.
//
//   bandwidth   the largest delivery-rate sample of the last 10 round trips
//               (application-limited samples only when they raise it)
//   min RTT     the smallest RTT sample of the last 10 s
//   startup     pacing and cwnd gain 2/ln 2 until three rounds in a row grow
//               the bandwidth estimate by less than 25 % (the pipe is full);
//               application-limited rounds do not count
//   drain       pacing gain ln 2 / 2 until the flight is one BDP
//   probe bw    pacing gain cycles 1.25, 0.75, 1 × 6, one phase per min RTT;
//               cwnd = 2 × BDP + 3 send quanta (1 ms at the bandwidth,
//               2 segments to 64 KiB)
//   probe rtt   when min RTT has not been refreshed for 10 s: cwnd 4 segments
//               for 200 ms and one round, so queues drain and min RTT is
//               measured again
//   timeout     cwnd falls to 4 segments and grows back with the ACKs
//
// Simplifications against the draft: a round trip ends when data sent after
// it began is acknowledged (by send time, not by a delivered count), the probe-bw
// cycle starts at a fixed phase (the core has no randomness), and there is no
// packet conservation during loss recovery.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "core/conn/congestion_control.h"

namespace buckwild::conn {

class Bbr final : public CongestionController {
 public:
  enum class Mode : std::uint8_t { kStartup, kDrain, kProbeBandwidth, kProbeRtt };

  static constexpr double kHighGain = 2.885;  // 2 / ln 2
  static constexpr double kDrainGain = 1.0 / kHighGain;
  static constexpr double kCwndGain = 2.0;
  static constexpr std::array<double, 8> kProbeGains = {1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0};
  static constexpr std::size_t kBandwidthRounds = 10;
  static constexpr Duration kMinRttWindow = seconds(10);
  static constexpr Duration kProbeRttTime = milliseconds(200);
  static constexpr std::uint64_t kInitialWindowSegments = 10;
  static constexpr std::uint64_t kMinimumWindowSegments = 4;

  explicit Bbr(std::size_t mss);

  std::string_view name() const override { return "bbr"; }
  void on_packet_sent(const CongestionStats& stats, TimePoint now, std::size_t bytes,
                      bool retransmission) override;
  void on_ack(const CongestionStats& stats, TimePoint now, const AckEvent& ack) override;
  // Random loss is not congestion here: nothing changes.
  void on_loss(const CongestionStats& stats, TimePoint now, const LossEvent& loss) override;
  void on_retransmission_timeout(const CongestionStats& stats, TimePoint now) override;
  void on_spurious_loss(const CongestionStats& stats, TimePoint now) override;
  std::uint64_t congestion_window() const override;
  std::uint64_t pacing_rate(const CongestionStats& stats) const override;

  Mode mode() const { return mode_; }
  // Bytes per second; 0 before the first sample.
  std::uint64_t bandwidth() const;
  Duration min_rtt() const { return min_rtt_; }
  std::uint64_t rounds() const { return round_count_; }

 private:
  // Bytes of one bandwidth-delay product at `gain`; 0 without a model.
  std::uint64_t bdp(double gain) const;
  void check_full_pipe();
  void update_mode(const CongestionStats& stats, TimePoint now);
  void enter_probe_bandwidth(TimePoint now);
  double pacing_gain() const;

  std::uint64_t mss_;
  std::uint64_t cwnd_;
  Mode mode_ = Mode::kStartup;
  // Bandwidth: the largest accepted sample of each of the last
  // kBandwidthRounds rounds that had one (slot = round % kBandwidthRounds).
  std::array<std::uint64_t, kBandwidthRounds> round_max_{};
  std::array<std::uint64_t, kBandwidthRounds> round_of_{};
  std::uint64_t latest_sample_round_ = 0;
  std::uint64_t round_count_ = 0;
  TimePoint round_start_ = 0;  // the round ends when data sent after this is acknowledged
  bool round_started_ = false;             // this ACK started a new round
  // Min RTT over kMinRttWindow.
  Duration min_rtt_ = 0;
  TimePoint min_rtt_stamp_ = 0;
  // Startup's full-pipe detection.
  bool filled_pipe_ = false;
  std::uint64_t full_bandwidth_ = 0;
  int full_bandwidth_rounds_ = 0;
  // Probe-bandwidth gain cycle.
  std::size_t cycle_index_ = 0;
  TimePoint cycle_stamp_ = 0;
  // Probe-RTT.
  TimePoint probe_rtt_done_ = 0;  // 0: the flight has not drained to 4 segments yet
  std::uint64_t probe_rtt_round_ = 0;
  Duration probe_rtt_min_ = 0;  // the smallest RTT sample during probe RTT
};

}  // namespace buckwild::conn

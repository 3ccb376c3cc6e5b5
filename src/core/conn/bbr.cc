#include "core/conn/bbr.h"

#include <algorithm>

namespace buckwild::conn {

Bbr::Bbr(std::size_t mss) : mss_(mss), cwnd_(kInitialWindowSegments * mss) {}

std::uint64_t Bbr::bandwidth() const {
  // The window is counted back from the round of the latest accepted sample,
  // as in Linux's windowed max filter: a flow that only sends application-
  // limited samples keeps its estimate instead of letting it age away.
  std::uint64_t best = 0;
  for (std::size_t i = 0; i < kBandwidthRounds; ++i) {
    if (round_of_[i] + kBandwidthRounds > latest_sample_round_) best = std::max(best, round_max_[i]);
  }
  return best;
}

std::uint64_t Bbr::bdp(double gain) const {
  const std::uint64_t bw = bandwidth();
  if (bw == 0 || min_rtt_ <= 0) return 0;
  const double bytes = static_cast<double>(bw) * static_cast<double>(min_rtt_) / 1e6;
  return static_cast<std::uint64_t>(gain * bytes);
}

double Bbr::pacing_gain() const {
  switch (mode_) {
    case Mode::kStartup:
      return kHighGain;
    case Mode::kDrain:
      return kDrainGain;
    case Mode::kProbeBandwidth:
      return kProbeGains[cycle_index_];
    case Mode::kProbeRtt:
      return 1.0;
  }
  return 1.0;
}

void Bbr::on_packet_sent(const CongestionStats&, TimePoint, std::size_t, bool) {}

void Bbr::check_full_pipe() {
  // Three rounds without 25 % growth: the bottleneck is full (draft §4.3.2.2).
  const std::uint64_t bw = bandwidth();
  if (bw >= full_bandwidth_ + full_bandwidth_ / 4) {
    full_bandwidth_ = bw;
    full_bandwidth_rounds_ = 0;
    return;
  }
  if (++full_bandwidth_rounds_ >= 3) filled_pipe_ = true;
}

void Bbr::enter_probe_bandwidth(TimePoint now) {
  mode_ = Mode::kProbeBandwidth;
  cycle_index_ = 2;  // a cruising phase: the 0.75 phase must follow a probe
  cycle_stamp_ = now;
}

void Bbr::update_mode(const CongestionStats& stats, TimePoint now) {
  if (mode_ == Mode::kStartup && filled_pipe_) mode_ = Mode::kDrain;
  if (mode_ == Mode::kDrain && stats.bytes_in_flight <= bdp(1.0)) enter_probe_bandwidth(now);
  if (mode_ == Mode::kProbeBandwidth && min_rtt_ > 0) {
    const double gain = kProbeGains[cycle_index_];
    bool advance = now - cycle_stamp_ > min_rtt_;
    // The draining phase may end early once the queue it made is gone.
    if (gain < 1.0 && stats.bytes_in_flight <= bdp(1.0)) advance = true;
    if (advance) {
      cycle_index_ = (cycle_index_ + 1) % kProbeGains.size();
      cycle_stamp_ = now;
    }
  }
  // Probe RTT: the min RTT sample is stale.
  if (mode_ != Mode::kProbeRtt && min_rtt_ > 0 && now - min_rtt_stamp_ > kMinRttWindow) {
    mode_ = Mode::kProbeRtt;
    probe_rtt_done_ = 0;
    probe_rtt_min_ = 0;
  }
  if (mode_ == Mode::kProbeRtt) {
    if (probe_rtt_done_ == 0 && stats.bytes_in_flight <= kMinimumWindowSegments * mss_) {
      probe_rtt_done_ = now + kProbeRttTime;
      probe_rtt_round_ = round_count_;
    } else if (probe_rtt_done_ != 0 && now >= probe_rtt_done_ && round_count_ > probe_rtt_round_) {
      // What was measured with the queue drained is the minimum now, even if
      // larger than the old one (the path changed).
      if (probe_rtt_min_ > 0) min_rtt_ = probe_rtt_min_;
      min_rtt_stamp_ = now;
      if (filled_pipe_) {
        enter_probe_bandwidth(now);
      } else {
        mode_ = Mode::kStartup;
      }
    }
  }
}

void Bbr::on_ack(const CongestionStats& stats, TimePoint now, const AckEvent& ack) {
  if (ack.acked_bytes == 0) return;
  // Round trips: a round ends when data sent after it began is acknowledged.
  round_started_ = false;
  if (ack.largest_acked_sent_time >= round_start_) {
    ++round_count_;
    round_start_ = now;
    round_started_ = true;
  }
  // The bandwidth model.
  const std::uint64_t sample = ack.rate.rate();
  if (sample > 0 && (!ack.rate.is_app_limited || sample >= bandwidth())) {
    const std::size_t i = round_count_ % kBandwidthRounds;
    if (round_of_[i] != round_count_) {
      round_of_[i] = round_count_;
      round_max_[i] = 0;
    }
    round_max_[i] = std::max(round_max_[i], sample);
    latest_sample_round_ = round_count_;
  }
  // The RTT model: a new minimum is taken at once; an old one is replaced only
  // by what probe RTT measures with the queue drained.
  if (ack.rtt_sample > 0) {
    if (mode_ == Mode::kProbeRtt) {
      probe_rtt_min_ = probe_rtt_min_ == 0 ? ack.rtt_sample : std::min(probe_rtt_min_, ack.rtt_sample);
    }
    if (min_rtt_ == 0 || ack.rtt_sample <= min_rtt_) {
      min_rtt_ = ack.rtt_sample;
      min_rtt_stamp_ = now;
    }
  }
  // Only rounds that could have filled the pipe say whether it is full (draft
  // §4.3.2.2, as Linux): a round held back by the application or the peer's
  // window measures the supply, not the path. Counting those once ended
  // startup at 5 Mbit/s on a 1 Gbit/s path when a stream connection's first
  // rounds waited for bytes, and probe-bandwidth then took seconds (25 % per
  // eight round trips) to climb. A sender that never fills the pipe stays in
  // startup, where its window still grows only towards 2 BDP or when limited.
  if (round_started_ && !filled_pipe_ && !ack.rate.is_app_limited) check_full_pipe();
  update_mode(stats, now);

  // The window: grow by what was acknowledged towards the target, never
  // beyond it once the pipe is known to be full.
  // Plus three send quanta (Linux BBR's allowance for batching: a
  // millisecond at the current bandwidth, 2 segments to 64 KiB): on a path of
  // sub-millisecond RTT, scheduling delay dwarfs min RTT and 2 × BDP alone
  // would starve the sender.
  const std::uint64_t quantum = std::clamp<std::uint64_t>(bandwidth() / 1000, 2 * mss_, 64 * 1024);
  const std::uint64_t target = bdp(kCwndGain) + 3 * quantum;
  if (filled_pipe_) {
    cwnd_ = std::min(cwnd_ + ack.acked_bytes, std::max(target, kMinimumWindowSegments * mss_));
  } else if (cwnd_ < target || bdp(1.0) == 0 || stats.cwnd_limited) {
    cwnd_ += ack.acked_bytes;
  }
  cwnd_ = std::max(cwnd_, kMinimumWindowSegments * mss_);
}

void Bbr::on_loss(const CongestionStats&, TimePoint, const LossEvent&) {}

void Bbr::on_retransmission_timeout(const CongestionStats&, TimePoint) {
  cwnd_ = kMinimumWindowSegments * mss_;
}

void Bbr::on_spurious_loss(const CongestionStats&, TimePoint) {}

std::uint64_t Bbr::congestion_window() const {
  if (mode_ == Mode::kProbeRtt) return std::min(cwnd_, kMinimumWindowSegments * mss_);
  return cwnd_;
}

std::uint64_t Bbr::pacing_rate(const CongestionStats& stats) const {
  const std::uint64_t bw = bandwidth();
  if (bw > 0) return static_cast<std::uint64_t>(pacing_gain() * static_cast<double>(bw));
  // No sample yet: the initial window over the RTT, at startup's gain.
  if (stats.smoothed_rtt <= 0) return 0;
  return static_cast<std::uint64_t>(kHighGain * static_cast<double>(cwnd_) * 1e6 /
                                    static_cast<double>(stats.smoothed_rtt));
}

}  // namespace buckwild::conn

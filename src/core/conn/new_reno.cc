#include "core/conn/new_reno.h"

#include <algorithm>

namespace buckwild::conn {

NewReno::NewReno(std::size_t mss) : mss_(mss), cwnd_(kInitialWindowSegments * mss) {}

void NewReno::on_packet_sent(const CongestionStats&, TimePoint, std::size_t, bool) {}

void NewReno::on_ack(const CongestionStats& stats, TimePoint now, const AckEvent& ack) {
  if (ack.acked_bytes == 0) return;
  after_timeout_ = false;
  // RFC 6582: the window stays at ssthresh until the recovery point is acked.
  if (in_recovery(ack.largest_acked_sent_time)) {
    // Recovery credit: what is acknowledged during the episode counts, up to
    // one cwnd, toward the first increase after it.
    bytes_acked_ = std::min(bytes_acked_ + ack.acked_bytes, cwnd_);
    return;
  }
  // A window the sender is not filling says nothing about the path (RFC 7661).
  if (!stats.cwnd_limited) return;
  if (cwnd_ < ssthresh_) {
    hystart_.on_ack(now, ack.largest_acked_sent_time, ack.rtt_sample);
    if (hystart_.phase() == HyStart::Phase::kDone) {
      // RFC 9406: CSS is over; congestion avoidance from here.
      ssthresh_ = cwnd_;
    } else {
      // RFC 5681 §3.1 with appropriate byte counting (divided during CSS);
      // the excess past ssthresh carries into congestion avoidance.
      const std::uint64_t growth = ack.acked_bytes / hystart_.growth_divisor();
      const std::uint64_t room = ssthresh_ - cwnd_;
      if (growth <= room) {
        cwnd_ += growth;
        return;
      }
      cwnd_ = ssthresh_;
      bytes_acked_ += growth - room;
    }
  } else {
    bytes_acked_ += ack.acked_bytes;
  }
  // Congestion avoidance: one MSS per window of acknowledged bytes.
  while (bytes_acked_ >= cwnd_) {
    bytes_acked_ -= cwnd_;
    cwnd_ += mss_;
  }
}

void NewReno::on_loss(const CongestionStats&, TimePoint now, const LossEvent& loss) {
  if (loss.lost_bytes == 0 || in_recovery(loss.largest_lost_sent_time)) return;
  // One multiplicative decrease per window of data (RFC 6582 §3.2 step 2).
  undo_valid_ = true;
  undo_cwnd_ = cwnd_;
  undo_ssthresh_ = ssthresh_;
  undo_recovery_start_ = recovery_start_;
  recovery_start_ = now;
  ssthresh_ = std::max(cwnd_ / 2, kMinimumWindowSegments * mss_);
  cwnd_ = ssthresh_;
  bytes_acked_ = 0;
}

void NewReno::on_retransmission_timeout(const CongestionStats& stats, TimePoint now) {
  // RFC 5681 §3.1 eq. (4); held constant when the timer fires again before any
  // data was delivered.
  if (!after_timeout_) {
    ssthresh_ = std::max(stats.bytes_in_flight / 2, kMinimumWindowSegments * mss_);
  }
  after_timeout_ = true;
  undo_valid_ = false;
  hystart_.reset();
  cwnd_ = mss_;
  bytes_acked_ = 0;
  // Losses of data sent before the timeout belong to this epoch; the
  // retransmissions that follow (sent at `now` or later) grow cwnd again.
  recovery_start_ = now - 1;
}

void NewReno::on_spurious_loss(const CongestionStats&, TimePoint) {
  if (!undo_valid_) return;
  undo_valid_ = false;
  cwnd_ = std::max(cwnd_, undo_cwnd_);
  ssthresh_ = undo_ssthresh_;
  recovery_start_ = undo_recovery_start_;
  bytes_acked_ = 0;
}

std::uint64_t NewReno::pacing_rate(const CongestionStats& stats) const {
  if (stats.smoothed_rtt <= 0) return 0;
  const auto srtt = static_cast<std::uint64_t>(stats.smoothed_rtt);
  // cwnd * factor / srtt in bytes per second, with the factor as a fraction.
  const std::uint64_t num = in_slow_start() ? 2 : 5;
  const std::uint64_t den = in_slow_start() ? 1 : 4;
  return cwnd_ * num * 1'000'000 / den / srtt;
}

}  // namespace buckwild::conn

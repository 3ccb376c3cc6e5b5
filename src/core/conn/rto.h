// Round-trip time estimation and the retransmission timeout (RFC 6298).
//
// The sender feeds unambiguous samples only (Karn's rule: never from a segment
// that was retransmitted). RTO = SRTT + max(G, 4 * RTTVAR), clamped to
// [min, max]; before the first sample it is the initial value. Each expiry
// doubles the timeout (exponential backoff, capped at max) until the next
// valid sample.
#pragma once

#include <cstdint>

#include "core/common/time.h"

namespace buckwild::conn {

struct RtoConfig {
  Duration initial = seconds(1);
  Duration min = milliseconds(200);  // reference MIN_RETRANSMISSION_TIMEOUT_MS
  Duration max = seconds(60);        // reference MAX_RETRANSMISSION_TIMEOUT_MS
  Duration granularity = milliseconds(1);  // G: the daemon's timer granularity
};

class RttEstimator {
 public:
  explicit RttEstimator(RtoConfig config = {}) : config_(config) {}

  // Takes one RTT sample (> 0; non-positive samples count as 1 µs): updates
  // SRTT and RTTVAR (alpha 1/8, beta 1/4), the minimum and the latest RTT, and
  // clears the backoff.
  void on_sample(Duration rtt);

  // Doubles the timeout for the next expiry (RFC 6298 §5.5).
  void on_timeout() {
    if (backoff_ < kMaxBackoff) ++backoff_;
  }
  // Clears the backoff without a sample (the peer proved alive another way).
  void reset_backoff() { backoff_ = 0; }

  bool has_sample() const { return has_sample_; }
  Duration smoothed() const { return srtt_; }      // 0 before the first sample
  Duration variation() const { return rttvar_; }   // 0 before the first sample
  Duration min_rtt() const { return min_rtt_; }    // 0 before the first sample
  Duration latest() const { return latest_; }      // 0 before the first sample
  unsigned backoff() const { return backoff_; }

  // The timeout without backoff, clamped to [min, max].
  Duration rto() const;
  // rto() * 2^backoff, capped at max.
  Duration backed_off_rto() const;

 private:
  static constexpr unsigned kMaxBackoff = 16;

  RtoConfig config_;
  bool has_sample_ = false;
  Duration srtt_ = 0;
  Duration rttvar_ = 0;
  Duration min_rtt_ = 0;
  Duration latest_ = 0;
  unsigned backoff_ = 0;
};

}  // namespace buckwild::conn

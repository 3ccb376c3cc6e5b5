#include "core/conn/hystart.h"

#include <algorithm>

namespace buckwild::conn {

void HyStart::start_round(TimePoint now) {
  last_round_min_ = current_round_min_;
  current_round_min_ = kInfinite;
  samples_ = 0;
  round_start_ = now;
  round_started_ = true;
}

void HyStart::on_ack(TimePoint now, TimePoint largest_acked_sent_time, Duration rtt_sample) {
  if (phase_ == Phase::kDone) return;
  if (!round_started_) {
    start_round(now);
  } else if (largest_acked_sent_time >= round_start_) {
    // RFC 9406 §4.2: a new round; CSS counts its rounds here.
    if (phase_ == Phase::kConservative && ++css_rounds_ >= kCssRounds) {
      phase_ = Phase::kDone;
      return;
    }
    start_round(now);
  }
  if (rtt_sample <= 0) return;
  current_round_min_ = std::min(current_round_min_, rtt_sample);
  ++samples_;
  if (samples_ < kRttSamples || current_round_min_ == kInfinite) return;

  if (phase_ == Phase::kSlowStart && last_round_min_ != kInfinite) {
    const Duration thresh =
        std::clamp(last_round_min_ / kMinRttDivisor, kMinRttThresh, kMaxRttThresh);
    if (current_round_min_ >= last_round_min_ + thresh) {
      css_baseline_ = current_round_min_;
      css_rounds_ = 0;
      phase_ = Phase::kConservative;
    }
  } else if (phase_ == Phase::kConservative && current_round_min_ < css_baseline_) {
    // The delay increase was spurious: back to slow start.
    css_baseline_ = kInfinite;
    phase_ = Phase::kSlowStart;
  }
}

}  // namespace buckwild::conn

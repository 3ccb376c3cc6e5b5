// HyStart++ (RFC 9406): leaving slow start on rising delay, before the
// queue overflows.
//
// Slow start doubles cwnd every round trip and, on a path with a drop-tail
// queue, typically ends by losing up to half a window at once. HyStart++
// watches the minimum RTT of each round: when it rises by more than
// clamp(last round's minimum / 8, 4 ms, 16 ms) the queue is building, and the
// sender switches to Conservative Slow Start (growth divided by 4); if the
// delay falls back, slow start resumes; after 5 rounds of CSS, congestion
// avoidance starts at the current cwnd. Rounds are delimited by send times:
// a round ends when an ACK covers a segment sent after it began.
#pragma once

#include <cstdint>

#include "core/common/time.h"

namespace buckwild::conn {

class HyStart {
 public:
  static constexpr Duration kMinRttThresh = milliseconds(4);
  static constexpr Duration kMaxRttThresh = milliseconds(16);
  static constexpr Duration kMinRttDivisor = 8;
  static constexpr unsigned kRttSamples = 8;
  static constexpr unsigned kCssGrowthDivisor = 4;
  static constexpr unsigned kCssRounds = 5;

  enum class Phase { kSlowStart, kConservative, kDone };

  // An ACK during slow start: `largest_acked_sent_time` delimits rounds,
  // `rtt_sample` (0 if none) feeds the round's minimum.
  void on_ack(TimePoint now, TimePoint largest_acked_sent_time, Duration rtt_sample);

  Phase phase() const { return phase_; }
  // Divide slow-start growth by this.
  unsigned growth_divisor() const { return phase_ == Phase::kConservative ? kCssGrowthDivisor : 1; }
  // Back to the start (after a loss or a timeout ended slow start).
  void reset() { *this = HyStart{}; }

 private:
  static constexpr Duration kInfinite = kNever;
  void start_round(TimePoint now);

  Phase phase_ = Phase::kSlowStart;
  bool round_started_ = false;
  TimePoint round_start_ = 0;
  Duration last_round_min_ = kInfinite;
  Duration current_round_min_ = kInfinite;
  unsigned samples_ = 0;
  Duration css_baseline_ = kInfinite;
  unsigned css_rounds_ = 0;
};

}  // namespace buckwild::conn

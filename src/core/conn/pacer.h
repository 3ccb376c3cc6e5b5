// Pacing: a token bucket that releases segments at the congestion controller's
// rate instead of in cwnd-sized bursts.
//
// Tokens (bytes) accrue at `rate` up to a burst allowance of 1 ms at the rate,
// but at least 2 and at most 16 segments, so a timer-driven sender can send a
// few segments per wake-up. A rate of 0 means "do not pace": the bucket is
// always full.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/common/time.h"

namespace buckwild::conn {

class Pacer {
 public:
  static constexpr std::size_t kMinBurstSegments = 4;
  static constexpr std::size_t kMaxBurstSegments = 16;
  static constexpr Duration kBurstInterval = milliseconds(1);

  // Accrues tokens up to `now` at the old rate, then adopts `rate` (bytes per
  // second, 0 = unpaced) for segments of `mss` bytes.
  void update(TimePoint now, std::uint64_t rate, std::size_t mss);

  // True when a segment of `bytes` may leave now (after update()).
  bool can_send(std::size_t bytes) const { return rate_ == 0 || tokens_ >= static_cast<double>(bytes); }
  // Takes the tokens for a segment that left.
  void on_sent(std::size_t bytes);
  // The earliest time at which a segment of `bytes` may leave; `now` if it may
  // already. Never earlier than `now`.
  TimePoint next_send_time(TimePoint now, std::size_t bytes) const;

  std::uint64_t rate() const { return rate_; }
  double burst() const { return burst_; }

 private:
  std::uint64_t rate_ = 0;
  double tokens_ = 0;
  double burst_ = 0;
  TimePoint last_ = 0;
  bool started_ = false;
};

}  // namespace buckwild::conn

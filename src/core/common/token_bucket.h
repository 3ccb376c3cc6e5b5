// A token bucket driven by the caller's clock.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/common/time.h"

namespace buckwild {

class TokenBucket {
 public:
  // `rate_per_second` tokens accrue per second up to `burst`. Starts full.
  TokenBucket(double rate_per_second, double burst)
      : rate_(rate_per_second / 1e6), burst_(burst), tokens_(burst) {}

  // Takes `cost` tokens if available at `now`; false (and nothing taken) otherwise.
  bool take(TimePoint now, double cost = 1.0) {
    refill(now);
    if (tokens_ < cost) return false;
    tokens_ -= cost;
    return true;
  }

  // New rate and burst from `now` on; the tokens held stay (up to the new burst).
  void set_rate(TimePoint now, double rate_per_second, double burst) {
    refill(now);
    rate_ = rate_per_second / 1e6;
    burst_ = burst;
    tokens_ = std::min(tokens_, burst_);
  }

  double available(TimePoint now) {
    refill(now);
    return tokens_;
  }

 private:
  void refill(TimePoint now) {
    if (now > last_) {
      tokens_ = std::min(burst_, tokens_ + static_cast<double>(now - last_) * rate_);
      last_ = now;
    }
  }

  double rate_;  // tokens per microsecond
  double burst_;
  double tokens_;
  TimePoint last_ = 0;
};

}  // namespace buckwild

#include "core/conn/pacer.h"

#include <algorithm>
#include <cmath>

namespace buckwild::conn {

void Pacer::update(TimePoint now, std::uint64_t rate, std::size_t mss) {
  if (started_ && rate_ > 0 && now > last_) {
    const double elapsed = static_cast<double>(now - last_) / 1e6;
    tokens_ = std::min(burst_, tokens_ + elapsed * static_cast<double>(rate_));
  }
  const double segment = static_cast<double>(mss);
  const double per_interval = static_cast<double>(rate) * static_cast<double>(kBurstInterval) / 1e6;
  burst_ = std::clamp(per_interval, kMinBurstSegments * segment, kMaxBurstSegments * segment);
  if (rate == 0 || !started_) tokens_ = burst_;  // unpaced, or the first flight
  tokens_ = std::min(tokens_, burst_);
  rate_ = rate;
  last_ = std::max(last_, now);
  started_ = true;
}

void Pacer::on_sent(std::size_t bytes) {
  if (rate_ == 0) return;
  tokens_ -= static_cast<double>(bytes);
}

TimePoint Pacer::next_send_time(TimePoint now, std::size_t bytes) const {
  if (can_send(bytes)) return now;
  const double missing = static_cast<double>(bytes) - tokens_;
  const double wait_us = std::ceil(missing * 1e6 / static_cast<double>(rate_));
  return std::max(now, last_ + static_cast<TimePoint>(wait_us));
}

}  // namespace buckwild::conn

#include "core/ntp/clock_filter.h"

#include <cmath>

namespace buckwild::ntp {

void ClockFilter::add(const Sample& s, TimePoint at) {
  ring_[next_] = Entry{s, at};
  next_ = (next_ + 1) % kFilterSamples;
  if (count_ < kFilterSamples) ++count_;
}

std::optional<FilterEstimate> ClockFilter::estimate(TimePoint now) const {
  const Entry* best = nullptr;
  std::size_t young = 0;
  for (std::size_t i = 0; i < count_; ++i) {
    const Entry& e = ring_[i];
    if (now - e.at > kFilterMaxAge) continue;
    ++young;
    // Least delay wins; among equals the newest.
    if (best == nullptr || e.sample.delay_us < best->sample.delay_us ||
        (e.sample.delay_us == best->sample.delay_us && e.at > best->at)) {
      best = &e;
    }
  }
  if (best == nullptr) return std::nullopt;
  double sum = 0;
  for (std::size_t i = 0; i < count_; ++i) {
    const Entry& e = ring_[i];
    if (now - e.at > kFilterMaxAge || &e == best) continue;
    const double d = static_cast<double>(e.sample.offset_us - best->sample.offset_us);
    sum += d * d;
  }
  FilterEstimate f;
  f.offset_us = best->sample.offset_us;
  f.delay_us = best->sample.delay_us;
  f.root_distance_us = best->sample.root_distance_us;
  f.jitter_us = young > 1 ? static_cast<std::int64_t>(std::sqrt(sum / static_cast<double>(young - 1))) : 0;
  f.at = best->at;
  f.samples = young;
  return f;
}

}  // namespace buckwild::ntp

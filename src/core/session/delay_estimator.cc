#include "core/session/delay_estimator.h"

#include <algorithm>
#include <cstdlib>

namespace buckwild::session {

void DelayEstimator::add_sample(std::int32_t one_way_ms) {
  // The magnitudes stay sorted: the oldest sample's leaves (when the ring is
  // full, it is the one overwritten), the new one's goes in where it belongs.
  // At most 64 entries move, against a sort of 64 for each median read.
  std::size_t n = held();
  const auto first = sorted_magnitudes_.begin();
  if (n == kSamples) {
    const auto out = std::lower_bound(first, first + static_cast<std::ptrdiff_t>(n), std::abs(samples_[next_]));
    std::copy(out + 1, first + static_cast<std::ptrdiff_t>(n), out);
    --n;
  }
  const std::int32_t m = std::abs(one_way_ms);
  const auto in = std::upper_bound(first, first + static_cast<std::ptrdiff_t>(n), m);
  std::copy_backward(in, first + static_cast<std::ptrdiff_t>(n), first + static_cast<std::ptrdiff_t>(n) + 1);
  *in = m;
  samples_[next_] = one_way_ms;
  next_ = (next_ + 1) % kSamples;
  ++count_;
}

void DelayEstimator::shift(std::int32_t delta_ms) {
  // Rare (a clock offset correction), and it reorders the magnitudes: sorted anew.
  const std::size_t n = held();
  for (std::size_t i = 0; i < n; ++i) {
    samples_[i] += delta_ms;
    sorted_magnitudes_[i] = std::abs(samples_[i]);
  }
  std::sort(sorted_magnitudes_.begin(), sorted_magnitudes_.begin() + static_cast<std::ptrdiff_t>(n));
}

int DelayEstimator::desired() const {
  const std::size_t n = held();
  if (n == 0) return kMin + 1;
  const std::size_t k = (n * 95 + 99) / 100 - 1;  // index of the 95th percentile
  const std::int64_t need = std::int64_t{sorted_magnitudes_[k]} + kSafetyMarginMs;
  const int d = static_cast<int>((need + 249) / 250);
  return std::clamp(d, kMin, kMax);
}

std::optional<std::int32_t> DelayEstimator::median_ms() const {
  const std::size_t n = held();
  if (n == 0) return std::nullopt;
  return sorted_magnitudes_[n / 2];
}

std::uint16_t DelayEstimator::jitter_ms() const {
  const std::size_t n = held();
  if (n < 2) return 0;
  std::int64_t sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += samples_[i];
  const std::int64_t mean = sum / static_cast<std::int64_t>(n);
  std::int64_t dev = 0;
  for (std::size_t i = 0; i < n; ++i) dev += std::abs(samples_[i] - mean);
  return static_cast<std::uint16_t>(std::min<std::int64_t>(dev / static_cast<std::int64_t>(n), 4095));
}

}  // namespace buckwild::session

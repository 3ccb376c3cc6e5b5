#include "core/session/delay_estimator.h"

#include <algorithm>
#include <cstdlib>

namespace buckwild::session {

void DelayEstimator::add_sample(std::int32_t one_way_ms) {
  samples_[next_] = one_way_ms;
  next_ = (next_ + 1) % samples_.size();
  ++count_;
}

void DelayEstimator::shift(std::int32_t delta_ms) {
  const std::size_t n = std::min(count_, samples_.size());
  for (std::size_t i = 0; i < n; ++i) samples_[i] += delta_ms;
}

int DelayEstimator::desired() const {
  const std::size_t n = std::min(count_, samples_.size());
  if (n == 0) return kMin + 1;
  std::array<std::int32_t, 64> v{};
  for (std::size_t i = 0; i < n; ++i) v[i] = std::abs(samples_[i]);
  const std::size_t k = (n * 95 + 99) / 100 - 1;  // index of the 95th percentile
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.begin() + static_cast<std::ptrdiff_t>(n));
  const std::int64_t need = std::int64_t{v[k]} + kSafetyMarginMs;
  const int d = static_cast<int>((need + 249) / 250);
  return std::clamp(d, kMin, kMax);
}

std::optional<std::int32_t> DelayEstimator::median_ms() const {
  const std::size_t n = std::min(count_, samples_.size());
  if (n == 0) return std::nullopt;
  std::array<std::int32_t, 64> v{};
  for (std::size_t i = 0; i < n; ++i) v[i] = std::abs(samples_[i]);
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(n / 2);
  std::nth_element(v.begin(), mid, v.begin() + static_cast<std::ptrdiff_t>(n));
  return *mid;
}

std::uint16_t DelayEstimator::jitter_ms() const {
  const std::size_t n = std::min(count_, samples_.size());
  if (n < 2) return 0;
  std::int64_t sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += samples_[i];
  const std::int64_t mean = sum / static_cast<std::int64_t>(n);
  std::int64_t dev = 0;
  for (std::size_t i = 0; i < n; ++i) dev += std::abs(samples_[i] - mean);
  return static_cast<std::uint16_t>(std::min<std::int64_t>(dev / static_cast<std::int64_t>(n), 4095));
}

}  // namespace buckwild::session

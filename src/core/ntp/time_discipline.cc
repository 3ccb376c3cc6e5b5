#include "core/ntp/time_discipline.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace buckwild::ntp {

std::int64_t TimeDiscipline::slewed_us(TimePoint now) const {
  const Duration dt = std::max<Duration>(0, now - ref_);
  const std::int64_t can = dt * kSlewRatePpm / 1'000'000;
  const std::int64_t mag = std::min(std::abs(slew_left_us_), can);
  return slew_left_us_ < 0 ? -mag : mag;
}

std::int64_t TimeDiscipline::correction_us(TimePoint now) const {
  const auto drift = static_cast<std::int64_t>(freq_ppm_ * static_cast<double>(now - ref_) / 1e6);
  return phase_us_ + drift + slewed_us(now);
}

std::int64_t TimeDiscipline::slew_remaining_us(TimePoint now) const {
  return slew_left_us_ - slewed_us(now);
}

void TimeDiscipline::rebase(TimePoint now) {
  const std::int64_t s = slewed_us(now);
  phase_us_ = correction_us(now);
  slew_left_us_ -= s;
  ref_ = now;
}

TimeDiscipline::Applied TimeDiscipline::on_offset(std::int64_t offset_us, TimePoint now) {
  rebase(now);
  // The history is of the raw clock's error, which our own corrections do not
  // change; its slope is the raw clock's frequency error.
  history_[history_next_] = Point{now, phase_us_ + offset_us};
  history_next_ = (history_next_ + 1) % kFrequencyHistory;
  if (history_count_ < kFrequencyHistory) ++history_count_;

  Applied a;
  a.amount_us = offset_us;
  if (!synchronized_ || std::abs(offset_us) > kStepThresholdUs) {
    phase_us_ += offset_us;
    slew_left_us_ = 0;
    a.action = Action::kStep;
  } else {
    // A new measurement replaces what was left of the last slew: it already
    // includes it.
    slew_left_us_ = offset_us;
    a.action = Action::kSlew;
  }
  synchronized_ = true;
  update_frequency();
  return a;
}

void TimeDiscipline::update_frequency() {
  if (history_count_ < 3) return;
  TimePoint first = history_[0].at;
  TimePoint last = history_[0].at;
  for (std::size_t i = 0; i < history_count_; ++i) {
    first = std::min(first, history_[i].at);
    last = std::max(last, history_[i].at);
  }
  if (last - first < kFrequencyMinSpan) return;
  // Least squares slope of raw error over time, around the first point so
  // the sums stay small.
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  const double y0 = static_cast<double>(history_[0].raw_error_us);
  for (std::size_t i = 0; i < history_count_; ++i) {
    const double x = static_cast<double>(history_[i].at - first);
    const double y = static_cast<double>(history_[i].raw_error_us) - y0;
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  const double n = static_cast<double>(history_count_);
  const double den = n * sxx - sx * sx;
  if (den <= 0) return;
  const double slope = (n * sxy - sx * sy) / den;  // µs per µs
  freq_ppm_ = std::clamp(slope * 1e6, -kMaxFrequencyPpm, kMaxFrequencyPpm);
}

}  // namespace buckwild::ntp

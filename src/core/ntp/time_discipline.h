// The daemon's own time (never the system clock's setting): a correction added
// to a raw clock, kept from the offsets the selected NTP servers report. Small
// errors are slewed (the correction moves at a bounded rate, so the hop
// schedule never jumps a window); large ones, and the first, are stepped. The
// raw clock's frequency error is estimated from the history of the offsets and
// applied between polls, so the time holds when every server is gone.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "core/common/time.h"

namespace buckwild::ntp {

// Errors at most this large are slewed; larger ones stepped (ntpd's 128 ms).
inline constexpr std::int64_t kStepThresholdUs = 128'000;
// How fast a slew moves the correction: 5 ms per second.
inline constexpr std::int64_t kSlewRatePpm = 5'000;
// The largest frequency error believed of a raw clock (ntpd's 500 ppm).
inline constexpr double kMaxFrequencyPpm = 500.0;
// The least span of history a frequency estimate is made from.
inline constexpr Duration kFrequencyMinSpan = seconds(60);
inline constexpr std::size_t kFrequencyHistory = 16;

class TimeDiscipline {
 public:
  // What on_offset did.
  enum class Action : std::uint8_t { kStep, kSlew };
  struct Applied {
    Action action = Action::kSlew;
    std::int64_t amount_us = 0;  // the error being corrected (the step, or the slew to come)
  };

  // The correction (µs) to add to the raw clock at monotonic time `now`.
  std::int64_t correction_us(TimePoint now) const;

  // The servers' time minus our corrected time, measured at `now`: steps the
  // correction if the error exceeds kStepThresholdUs or this is the first
  // measurement, otherwise slews it; updates the frequency estimate.
  Applied on_offset(std::int64_t offset_us, TimePoint now);

  // The raw clock's estimated frequency error (ppm; positive = the raw clock is
  // slow and the correction grows), applied between measurements.
  double frequency_ppm() const { return freq_ppm_; }
  // Of the slew under way, what is still to be applied at `now`.
  std::int64_t slew_remaining_us(TimePoint now) const;
  bool synchronized() const { return synchronized_; }

 private:
  std::int64_t slewed_us(TimePoint now) const;
  void rebase(TimePoint now);
  void update_frequency();

  std::int64_t phase_us_ = 0;  // the correction at ref_
  TimePoint ref_ = 0;
  double freq_ppm_ = 0;
  std::int64_t slew_left_us_ = 0;  // at ref_
  bool synchronized_ = false;

  struct Point {
    TimePoint at;
    std::int64_t raw_error_us;  // the servers' time minus the raw clock
  };
  std::array<Point, kFrequencyHistory> history_{};
  std::size_t history_next_ = 0;
  std::size_t history_count_ = 0;
};

}  // namespace buckwild::ntp

// The daemon's clock: a monotonic clock for timers and a UTC clock for the
// protocol's time windows, with the configurable test offset applied to UTC.
#pragma once

#include <cstdint>

#include "core/common/time.h"

namespace buckwild::daemon {

class Clock {
 public:
  virtual ~Clock() = default;
  // Microseconds on a monotonic clock (never jumps; only differences matter).
  virtual TimePoint monotonic() const = 0;
  // Milliseconds since the Unix epoch in UTC, as this daemon believes it to be
  // (the system clock plus any configured offset).
  virtual std::int64_t unix_ms() const = 0;
  // Milliseconds since the last UTC midnight of unix_ms(), 0..86399999: the
  // protocol's timestamp field.
  std::uint32_t ms_since_midnight() const;
};

// CLOCK_MONOTONIC and CLOCK_REALTIME. `offset_ms` is testing.clock_offset_ms:
// it shifts unix_ms() (never monotonic()) so two daemons on one kernel can be
// given skewed clocks.
class SystemClock final : public Clock {
 public:
  explicit SystemClock(std::int64_t offset_ms = 0) : offset_ms_(offset_ms) {}
  TimePoint monotonic() const override;
  std::int64_t unix_ms() const override;
  std::int64_t offset_ms() const { return offset_ms_; }

 private:
  std::int64_t offset_ms_;
};

// A clock that moves only when told to. Both readings advance together.
class FakeClock final : public Clock {
 public:
  FakeClock(TimePoint monotonic_start, std::int64_t unix_ms_start)
      : monotonic_(monotonic_start), unix_us_(unix_ms_start * 1000) {}
  TimePoint monotonic() const override { return monotonic_; }
  std::int64_t unix_ms() const override;
  // Moves both clocks forward by `d` microseconds (d >= 0).
  void advance(Duration d);
  // Steps the UTC clock alone, as an NTP correction or a skewed peer would.
  void step_unix_ms(std::int64_t delta_ms) { unix_us_ += delta_ms * 1000; }

 private:
  TimePoint monotonic_;
  std::int64_t unix_us_;
};

}  // namespace buckwild::daemon

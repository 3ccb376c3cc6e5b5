// The daemon's UTC clock: the time the protocol's windows, timestamps and key
// schedule are computed from, with the configurable test offset applied.
//
// The daemon has one monotonic clock, and it is not this one: timers,
// deadlines and every `now` handed to the core come from EventLoop::now().
#pragma once

#include <cstdint>

#include "core/common/time.h"

namespace buckwild::daemon {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch in UTC, as this daemon believes it to be
  // (the system clock plus any configured offset).
  virtual std::int64_t unix_ms() const = 0;
  // Milliseconds since the last UTC midnight of unix_ms(), 0..86399999: the
  // protocol's timestamp field.
  std::uint32_t ms_since_midnight() const;
};

// CLOCK_REALTIME. `offset_ms` is testing.clock_offset_ms: it shifts unix_ms()
// so two daemons on one kernel can be given skewed clocks.
class SystemClock final : public Clock {
 public:
  explicit SystemClock(std::int64_t offset_ms = 0) : offset_ms_(offset_ms) {}
  std::int64_t unix_ms() const override;
  std::int64_t offset_ms() const { return offset_ms_; }

 private:
  std::int64_t offset_ms_;
};

}  // namespace buckwild::daemon

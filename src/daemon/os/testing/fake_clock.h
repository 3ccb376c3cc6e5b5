// A UTC clock that moves with a ManualEventLoop's virtual time, as the real
// one moves with the real loop's: unix_ms() = start + loop.now(), plus any
// steps the test applies (an NTP correction, a skewed peer).
#pragma once

#include <cstdint>

#include "daemon/os/clock.h"
#include "daemon/os/testing/manual_event_loop.h"

namespace buckwild::daemon {

class FakeClock final : public Clock {
 public:
  // unix_ms() is `unix_ms_at_zero` when loop.now() is 0.
  FakeClock(const ManualEventLoop& loop, std::int64_t unix_ms_at_zero)
      : loop_(loop), unix_ms_at_zero_(unix_ms_at_zero) {}
  std::int64_t unix_ms() const override;
  // Steps the UTC clock alone; the loop's time does not move.
  void step_unix_ms(std::int64_t delta_ms) { unix_ms_at_zero_ += delta_ms; }

 private:
  const ManualEventLoop& loop_;
  std::int64_t unix_ms_at_zero_;
};

}  // namespace buckwild::daemon

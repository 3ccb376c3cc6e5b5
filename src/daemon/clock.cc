#include "daemon/clock.h"

#include <time.h>

#include <cassert>

#include "core/hop/time_window.h"

namespace buckwild::daemon {

std::uint32_t Clock::ms_since_midnight() const {
  return hop::ms_since_midnight(unix_ms());
}

TimePoint SystemClock::monotonic() const {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<TimePoint>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

std::int64_t SystemClock::unix_ms() const {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000 + offset_ms_;
}

std::int64_t FakeClock::unix_ms() const {
  // Floor division, so the fake behaves like the real clock before 1970 too.
  return unix_us_ >= 0 ? unix_us_ / 1000 : -((-unix_us_ + 999) / 1000);
}

void FakeClock::advance(Duration d) {
  assert(d >= 0);
  monotonic_ += d;
  unix_us_ += d;
}

}  // namespace buckwild::daemon

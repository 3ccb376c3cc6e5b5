#include "daemon/os/clock.h"

#include <time.h>

#include "core/hop/time_window.h"

namespace buckwild::daemon {

std::uint32_t Clock::ms_since_midnight() const {
  return hop::ms_since_midnight(unix_ms());
}

std::int64_t SystemClock::unix_ms() const {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000 + offset_ms_;
}

}  // namespace buckwild::daemon

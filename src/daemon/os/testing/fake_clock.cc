#include "daemon/os/testing/fake_clock.h"

namespace buckwild::daemon {

std::int64_t FakeClock::unix_ms() const {
  // Floor division of the loop's microseconds, so sub-millisecond steps
  // accumulate the way the real clock's do.
  const TimePoint us = loop_.now();
  return unix_ms_at_zero_ + (us >= 0 ? us / 1000 : -((-us + 999) / 1000));
}

}  // namespace buckwild::daemon

// The daemon's own UTC time (docs/architecture.md "Time"): the raw clock plus
// the NTP client's correction. Until the NTP client first synchronizes (and
// always with NTP disabled) the raw clock is CLOCK_REALTIME itself; from then
// on it is the system clock as read at that moment, carried forward on
// CLOCK_MONOTONIC, so a later step of the system clock (an administrator,
// another NTP daemon) never moves the hop schedule. The correction is the
// NTP client's (ntp::TimeDiscipline), slewed when small.
//
// Both test aids apply to the raw clock: testing.clock_offset_ms shifts it,
// testing.clock_drift_ppm makes it run fast or slow from the start.
//
// Every worker's tunnel reads it (unix_us() per receive batch); the NTP client
// and reloads change it on the main thread. A mutex keeps each reading whole:
// the readers and the changes (anchor, set_offset_ms, apply_offset) take it;
// the main thread's own reads of the discipline need not.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>

#include "core/ntp/time_discipline.h"
#include "daemon/os/clock.h"

namespace buckwild::daemon {

class DisciplinedClock final : public Clock {
 public:
  // The two clocks it reads, µs: CLOCK_REALTIME and CLOCK_MONOTONIC (the event
  // loop's), or a test's.
  struct Readers {
    std::function<std::int64_t()> realtime_us;
    std::function<TimePoint()> monotonic_us;
  };
  static Readers system_readers();

  // `follow_system`: the raw clock is the realtime clock (NTP disabled); else
  // it is the monotonic clock, set from the realtime clock now.
  DisciplinedClock(bool follow_system, std::int64_t offset_ms, std::int64_t drift_ppm,
                   Readers readers = system_readers());

  std::int64_t unix_ms() const override { return unix_us() / 1000; }
  // Our time, µs since the Unix epoch.
  std::int64_t unix_us() const;
  // The raw clock (what NTP measures against), µs.
  std::int64_t raw_unix_us() const;
  // The system clock as this daemon was told to see it (CLOCK_REALTIME plus
  // testing.clock_offset_ms): what drift detection compares our time with.
  std::int64_t system_unix_us() const;
  // The monotonic clock, µs: the discipline's time base (the event loop's clock).
  TimePoint monotonic_us() const { return readers_.monotonic_us(); }
  // Whether the raw clock is the system clock (NTP disabled, or not yet
  // synchronized).
  bool follows_system() const { return follow_system_ || !anchored_; }
  // From now on the raw clock is carried on the monotonic clock from the
  // system clock's present reading (continuous at this instant). The NTP
  // client calls it before its first correction; later calls do nothing.
  void anchor();
  // testing.clock_offset_ms changed by a reload: from now on unix_us(),
  // raw_unix_us() and system_unix_us() are shifted by `offset_ms` instead:
  // our time steps by the difference (the caller tells the tunnel, as the
  // NTP client does of its steps).
  void set_offset_ms(std::int64_t offset_ms) {
    std::lock_guard lock(mutex_);
    offset_us_ = offset_ms * 1000;
  }
  std::int64_t offset_ms() const { return offset_us_ / 1000; }

  // The correction as it stands, for the main thread (the NTP client).
  const ntp::TimeDiscipline& discipline() const { return discipline_; }
  // Applies the NTP client's measured error of the correction at `now`.
  ntp::TimeDiscipline::Applied apply_offset(std::int64_t offset_us, TimePoint now) {
    std::lock_guard lock(mutex_);
    return discipline_.on_offset(offset_us, now);
  }

 private:
  std::int64_t drift_us(TimePoint mono) const;
  std::int64_t raw_unix_us_at(TimePoint mono) const;

  Readers readers_;
  bool follow_system_;
  std::int64_t offset_us_;
  std::int64_t drift_ppm_;
  TimePoint start_mono_;
  std::int64_t base_us_;  // raw = monotonic + base (when not following the system clock)
  bool anchored_ = false;
  ntp::TimeDiscipline discipline_;
  mutable std::mutex mutex_;
};

}  // namespace buckwild::daemon

#include "daemon/time/disciplined_clock.h"

#include <time.h>

#include <utility>

namespace buckwild::daemon {

namespace {

std::int64_t read_us(clockid_t id) {
  timespec ts{};
  ::clock_gettime(id, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

}  // namespace

DisciplinedClock::Readers DisciplinedClock::system_readers() {
  return Readers{[] { return read_us(CLOCK_REALTIME); }, [] { return read_us(CLOCK_MONOTONIC); }};
}

DisciplinedClock::DisciplinedClock(bool follow_system, std::int64_t offset_ms, std::int64_t drift_ppm,
                                   Readers readers)
    : readers_(std::move(readers)),
      follow_system_(follow_system),
      offset_us_(offset_ms * 1000),
      drift_ppm_(drift_ppm),
      start_mono_(readers_.monotonic_us()),
      base_us_(readers_.realtime_us() - start_mono_) {}

std::int64_t DisciplinedClock::drift_us(TimePoint mono) const {
  return (mono - start_mono_) * drift_ppm_ / 1'000'000;
}

void DisciplinedClock::anchor() {
  std::lock_guard lock(mutex_);
  if (follow_system_ || anchored_) return;
  base_us_ = readers_.realtime_us() - readers_.monotonic_us();
  anchored_ = true;
}

std::int64_t DisciplinedClock::raw_unix_us() const {
  std::lock_guard lock(mutex_);
  return raw_unix_us_at(monotonic_us());
}

std::int64_t DisciplinedClock::raw_unix_us_at(TimePoint mono) const {
  const std::int64_t base = follows_system() ? readers_.realtime_us() : mono + base_us_;
  return base + offset_us_ + drift_us(mono);
}

std::int64_t DisciplinedClock::system_unix_us() const {
  std::lock_guard lock(mutex_);
  return readers_.realtime_us() + offset_us_;
}

std::int64_t DisciplinedClock::unix_us() const {
  // One reading of the monotonic clock for both terms: this runs for every
  // packet sealed outside a batch.
  const TimePoint mono = monotonic_us();
  std::lock_guard lock(mutex_);
  return raw_unix_us_at(mono) + discipline_.correction_us(mono);
}

}  // namespace buckwild::daemon

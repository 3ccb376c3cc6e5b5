// Time in the protocol core. The core never reads a clock: callers pass `now`.
#pragma once

#include <cstdint>
#include <limits>

namespace buckwild {

// Microseconds on a monotonic clock chosen by the caller (the daemon's
// CLOCK_MONOTONIC, or the simulator's virtual clock). Only differences matter.
using TimePoint = std::int64_t;
using Duration = std::int64_t;  // microseconds

inline constexpr TimePoint kNever = std::numeric_limits<TimePoint>::max();

constexpr Duration milliseconds(std::int64_t ms) { return ms * 1000; }
constexpr Duration seconds(std::int64_t s) { return s * 1'000'000; }

}  // namespace buckwild

// Hop time windows: the 250 ms slots that port hopping and freshness checks
// are counted in. Pure arithmetic; the caller supplies the time.
//
// An absolute window is W = floor(unix_ms / 250). Because a UTC day
// (86 400 000 ms) is a whole number of windows, W splits exactly into a UTC
// day (days since 1970-01-01) and a window of that day counted from UTC
// midnight, which is the reference protocol's numbering. Working with W makes
// ranges such as w-d .. w+d across midnight plain integer ranges.
#pragma once

#include "core/wire/messages.h"

#include <cstdint>
#include <string>

namespace buckwild::hop {

// Signed forms of wire/messages.h's constants, for window arithmetic.
inline constexpr std::int64_t kHopIntervalMs = wire::kHopIntervalMs;
inline constexpr std::int64_t kMsPerDay = wire::kMsPerDay;
inline constexpr std::int64_t kWindowsPerDay = 345'600;
using wire::kTimestampWindowMs;

static_assert(kMsPerDay % kHopIntervalMs == 0);
static_assert(kWindowsPerDay * kHopIntervalMs == kMsPerDay);

// Absolute window of `unix_ms`: floor(unix_ms / 250), also for negative input
// (window_at(-1) == -1).
std::int64_t window_at(std::int64_t unix_ms);

// UTC day of window `window`: floor(window / 345600), days since 1970-01-01.
std::int64_t day_of_window(std::int64_t window);

// Index of `window` within its UTC day, 0 .. 345599.
std::uint32_t window_of_day(std::int64_t window);

// Unix time in ms at which `window` starts (window * 250).
// Precondition: the product fits in int64 (|window| < 2^63 / 250).
std::int64_t window_start_ms(std::int64_t window);

// Milliseconds since the last UTC midnight at `unix_ms`, 0 .. 86399999.
std::uint32_t ms_since_midnight(std::int64_t unix_ms);

// "YYYY-MM-DD" of UTC day `day` (days since 1970-01-01) in the proleptic
// Gregorian calendar (Howard Hinnant's civil_from_days). Day -1 is
// "1969-12-31". Years outside 0..9999 are printed with as many digits as they
// need and a leading '-' when negative; no protocol time gets there.
std::string utc_date_string(std::int64_t day);

// Signed shortest difference a - b on the 24-hour circle, in
// (-43200000, 43200000]. Precondition: a, b < 86400000 (asserted).
std::int32_t circular_delta_ms(std::uint32_t a, std::uint32_t b);

// True when `packet_ms_of_day` is within `tolerance_ms` of `now_ms_of_day` on
// the 24-hour circle (86399990 and 5 are 15 ms apart). A packet value
// >= 86400000 is malformed and never fresh. Precondition: now_ms_of_day <
// 86400000 (asserted). The protocol tolerance is kTimestampWindowMs.
bool timestamp_fresh(std::uint32_t packet_ms_of_day, std::uint32_t now_ms_of_day,
                     std::uint32_t tolerance_ms);

}  // namespace buckwild::hop

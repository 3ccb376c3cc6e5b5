#include "core/hop/time_window.h"

#include <cassert>
#include <cstdlib>

namespace buckwild::hop {
namespace {

// C++ division truncates towards zero; windows and days must round down so
// that times before 1970 and the millisecond before midnight land in the
// earlier window and day.
constexpr std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

constexpr std::int64_t floor_mod(std::int64_t a, std::int64_t b) {
  return a - floor_div(a, b) * b;
}

void append_padded(std::string& out, std::int64_t value, int width) {
  if (value < 0) {
    out.push_back('-');
    value = -value;
  }
  char digits[20];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  for (int i = n; i < width; ++i) out.push_back('0');
  while (n > 0) out.push_back(digits[--n]);
}

}  // namespace

std::int64_t window_at(std::int64_t unix_ms) {
  return floor_div(unix_ms, kHopIntervalMs);
}

std::int64_t day_of_window(std::int64_t window) {
  return floor_div(window, kWindowsPerDay);
}

std::uint32_t window_of_day(std::int64_t window) {
  return static_cast<std::uint32_t>(floor_mod(window, kWindowsPerDay));
}

std::int64_t window_start_ms(std::int64_t window) {
  return window * kHopIntervalMs;
}

std::uint32_t ms_since_midnight(std::int64_t unix_ms) {
  return static_cast<std::uint32_t>(floor_mod(unix_ms, kMsPerDay));
}

std::string utc_date_string(std::int64_t day) {
  // civil_from_days, http://howardhinnant.github.io/date_algorithms.html:
  // shift the epoch to 0000-03-01 so that the leap day ends each 400-year era.
  const std::int64_t z = day + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;                                       // [0, 146096]
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  const std::int64_t mp = (5 * doy + 2) / 153;                                     // [0, 11]
  const std::int64_t d = doy - (153 * mp + 2) / 5 + 1;                             // [1, 31]
  const std::int64_t m = mp < 10 ? mp + 3 : mp - 9;                                // [1, 12]
  const std::int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);

  std::string out;
  out.reserve(10);
  append_padded(out, y, 4);
  out.push_back('-');
  append_padded(out, m, 2);
  out.push_back('-');
  append_padded(out, d, 2);
  return out;
}

std::int32_t circular_delta_ms(std::uint32_t a, std::uint32_t b) {
  assert(a < kMsPerDay && b < kMsPerDay);
  std::int64_t delta = floor_mod(std::int64_t{a} - std::int64_t{b}, kMsPerDay);  // [0, day)
  if (delta > kMsPerDay / 2) delta -= kMsPerDay;
  return static_cast<std::int32_t>(delta);
}

bool timestamp_fresh(std::uint32_t packet_ms_of_day, std::uint32_t now_ms_of_day,
                     std::uint32_t tolerance_ms) {
  assert(now_ms_of_day < kMsPerDay);
  // The packet field is attacker-controlled: reject rather than assert.
  if (packet_ms_of_day >= kMsPerDay) return false;
  const std::int64_t delta = circular_delta_ms(packet_ms_of_day, now_ms_of_day);
  return std::llabs(delta) <= std::int64_t{tolerance_ms};
}

}  // namespace buckwild::hop

// One server's recent samples and the best of them (RFC 5905 §10, the clock
// filter): the sample with the least round-trip delay among the last eight is
// the one least disturbed by queueing, and its offset stands for the server.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/common/time.h"
#include "core/ntp/ntp_packet.h"

namespace buckwild::ntp {

inline constexpr std::size_t kFilterSamples = 8;
// A sample older than this no longer speaks for the server, however short its
// round trip was: a clock that stepped must not be hidden behind old samples.
inline constexpr Duration kFilterMaxAge = seconds(1024);

struct FilterEstimate {
  std::int64_t offset_us = 0;
  std::int64_t delay_us = 0;
  std::int64_t root_distance_us = 0;  // the server's own, at the chosen sample
  std::int64_t jitter_us = 0;         // RMS of the other samples' offsets from the chosen one
  TimePoint at = 0;                   // when the chosen sample was taken (monotonic)
  std::size_t samples = 0;
};

class ClockFilter {
 public:
  // Adds a sample taken at monotonic time `at` (the oldest of eight is dropped).
  void add(const Sample& s, TimePoint at);
  // The chosen sample as of `now`, or nullopt when none is younger than kFilterMaxAge.
  std::optional<FilterEstimate> estimate(TimePoint now) const;
  // Forgets every sample (a server that changed address or was declared dead).
  void clear() { count_ = 0; }
  std::size_t size() const { return count_; }

 private:
  struct Entry {
    Sample sample;
    TimePoint at = 0;
  };
  std::array<Entry, kFilterSamples> ring_{};
  std::size_t next_ = 0;
  std::size_t count_ = 0;
};

}  // namespace buckwild::ntp

// Which servers to believe (RFC 5905 §11.2.1, Marzullo's intersection as
// refined for NTP): each server's estimate is an interval, offset ± its root
// distance; the largest set of servers whose intervals share a point, if it is
// a majority of those that answered, are the truechimers, and the rest are
// falsetickers. One liar among three, or a spoofer answering for one server,
// cannot move the result; a split with no majority selects nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace buckwild::ntp {

struct Candidate {
  std::int64_t offset_us = 0;
  // Half-width of the correctness interval: the server's root distance plus
  // half our round trip to it plus its jitter. Never below kMinDistanceUs.
  std::int64_t distance_us = 0;
};

// The least half-width an interval gets: two honest servers on one LAN may
// answer with microsecond distances yet differ by a millisecond of scheduling.
inline constexpr std::int64_t kMinDistanceUs = 2'000;

// The half-width of a server's interval from its filtered estimate.
std::int64_t correctness_distance(std::int64_t root_distance_us, std::int64_t delay_us,
                                  std::int64_t jitter_us);

struct Selection {
  // Per candidate, in input order: true if it is a truechimer.
  std::vector<bool> truechimer;
  // The combined offset of the truechimers, each weighted by 1/distance;
  // nullopt when no majority agrees (or there are no candidates).
  std::optional<std::int64_t> offset_us;
  // Of the truechimers, the smallest distance (how well we know the time).
  std::int64_t distance_us = 0;
};

// `voters`: how many servers are in play (at least candidates.size()); a
// majority of them must agree. Servers not yet answered count as not agreeing.
Selection select_sources(std::span<const Candidate> candidates, std::size_t voters = 0);

}  // namespace buckwild::ntp

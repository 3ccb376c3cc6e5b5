// Ready-made topologies and runs for the simulator tests.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/conn/connection.h"
#include "sim/host.h"
#include "sim/link.h"
#include "sim/simulator.h"
#include "sim/traffic.h"

namespace buckwild::sim {

// Two hosts joined by one link each way. Host a is the session initiator.
struct PathConfig {
  LinkConfig a_to_b;
  LinkConfig b_to_a;
  conn::ConnectionConfig conn;
  std::uint64_t seed = 1;
};

class TwoHosts {
 public:
  explicit TwoHosts(const PathConfig& config);

  Simulator sim;
  Link ab;
  Link ba;
  Host a;
  Host b;
};

// The outcome of one bulk transfer in both directions at once.
struct TransferResult {
  bool completed = false;       // both streams fully read and both sides closed
  bool a_exact = false;         // a received exactly b's stream
  bool b_exact = false;         // b received exactly a's stream
  TimePoint finished_at = 0;    // simulated time when both were fully read
  std::uint64_t retransmissions = 0;
  std::uint64_t timeouts = 0;
  std::uint64_t max_consecutive_timeouts = 0;
  std::uint64_t datagrams = 0;
  std::uint64_t decode_errors = 0;
  std::uint64_t invariant_failures = 0;
  std::uint64_t timer_spins = 0;
  std::string describe() const;
};

// Opens one connection from a to b, sends `bytes` each way at once, each side
// shutting down its write side when done, and runs until both sides closed or
// `deadline` (simulated) passed.
TransferResult run_transfer(const PathConfig& config, std::uint64_t bytes, Duration deadline,
                            bool check_invariants = false);

// A link shaped like the reference path: `mbps`, one-way delay
// rtt / 2, and a drop-tail queue of `queue_bdp` bandwidth-delay products.
LinkConfig bottleneck(std::uint64_t mbps, Duration rtt, double queue_bdp);

// True when built with AddressSanitizer (the tests scale their sizes down).
constexpr bool kSanitized =
#if defined(__SANITIZE_ADDRESS__)
    true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    true;
#else
    false;
#endif
#else
    false;
#endif

// Picks the release or the sanitizer value.
template <typename T>
constexpr T scaled(T release, T sanitized) {
  return kSanitized ? sanitized : release;
}

}  // namespace buckwild::sim

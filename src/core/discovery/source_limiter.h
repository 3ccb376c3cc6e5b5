// Per-source token buckets in a fixed-size table, so that tracking sources never
// grows memory: a new source takes over the slot of whichever it hashes to.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "core/common/endpoint.h"
#include "core/common/time.h"
#include "core/common/token_bucket.h"

namespace buckwild::discovery {

class SourceLimiter {
 public:
  // `rate` packets per second per source address (ports are ignored), bursts up
  // to `burst`; `slots` table entries (memory is fixed at construction);
  // `salt` keys the slot hash so an attacker cannot aim at a victim's slot.
  SourceLimiter(double rate, double burst, std::size_t slots, std::uint64_t salt);

  // New limits for every source from `now` on (a configuration reload).
  void set_rate(double rate, double burst, TimePoint now);

  // True if a packet from `from` may be processed at `now`.
  bool allow(const Endpoint& from, TimePoint now);

 private:
  struct Slot {
    std::array<std::uint8_t, 16> address{};
    bool used = false;
    TokenBucket bucket{0, 0};
  };
  std::size_t slot_of(const Endpoint& from) const;

  double rate_;
  double burst_;
  std::uint64_t salt_;
  std::vector<Slot> slots_;
};

}  // namespace buckwild::discovery

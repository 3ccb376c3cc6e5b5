// The (source, cookie) pairs the responder sent a DISCOVERY_RESPONSE to in the
// last kCookieLifetime (docs/protocol.md §6.5), in a fixed-size table, so that
// a CONFIRM echoing no cookie we gave to its source is dropped after one
// lookup: before any budget is spent and before the two ristretto255 scalar
// multiplications that rebuilding its commitment costs. Only someone who saw
// our RESPONSE (the initiator, or an attacker on its path) knows the pair.
//
// A pair is held in one slot chosen by a salted hash; a later pair may take
// the slot over, and its CONFIRM is then refused (the initiator repeats
// discovery). This never lets a CONFIRM through that the full check would
// refuse: it only filters before it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/common/bytes.h"
#include "core/common/endpoint.h"
#include "core/common/time.h"

namespace buckwild::discovery {

class AnsweredCookies {
 public:
  // `slots` entries (memory fixed at construction), each held `lifetime`;
  // `salt` keys the hash so an attacker cannot aim at a slot.
  AnsweredCookies(std::size_t slots, Duration lifetime, std::uint64_t salt);

  // We sent `cookie` to `to` at `now`.
  void remember(const Endpoint& to, Bytes cookie, TimePoint now);

  // True if `cookie` was sent to `from` within `lifetime` before `now`.
  bool contains(const Endpoint& from, Bytes cookie, TimePoint now) const;

 private:
  struct Slot {
    std::uint64_t key = 0;
    TimePoint at = 0;
    bool used = false;
  };
  std::uint64_t key_of(const Endpoint& e, Bytes cookie) const;

  Duration lifetime_;
  std::uint64_t salt_;
  std::vector<Slot> slots_;
};

}  // namespace buckwild::discovery

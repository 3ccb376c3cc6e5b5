// Path validation before a roam (docs/protocol.md §11.6, "Roaming"). The
// responder's peer may change its public address (NAT rebinding, a new
// network); traffic follows only once the new address proves it is the peer.
// An authenticated datagram of the session from another address (a copy of
// an authentic datagram re-sent from elsewhere is one too, when it beats the
// original) makes this object hand out a challenge: 16 fresh random bytes,
// which the caller seals as a PATH_CHALLENGE and sends from the port the
// datagram arrived on to the address it came from. Only an authenticated
// PATH_RESPONSE with those bytes that arrives from that same address
// validates it; then, and only then, the peer's address changes.
//
// Limits: a challenge is never larger than the datagram that triggered it (no
// amplification), an address is challenged at most once per kResendInterval,
// at most kSlots addresses are challenged at a time (the oldest gives way), and
// a challenge lives for kLifetime. Pure bookkeeping: no I/O, no clock.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "core/common/bytes.h"
#include "core/common/socket_address.h"
#include "core/common/time.h"
#include "core/crypto/random.h"
#include "core/wire/messages.h"

namespace buckwild::session {

struct PathValidationStats {
  std::uint64_t started = 0;          // addresses challenged
  std::uint64_t succeeded = 0;        // ... that answered: the peer moved there
  std::uint64_t failed = 0;           // ... that did not answer in time, or gave way
  std::uint64_t challenges_sent = 0;  // PATH_CHALLENGEs handed out, repeats included
};

using wire::Bytes16;

class PathValidation {
 public:
  static constexpr std::size_t kSlots = 4;
  static constexpr Duration kResendInterval = milliseconds(250);
  static constexpr Duration kLifetime = seconds(3);
  // A sealed PATH_CHALLENGE: header, 16-byte body, tag.
  static constexpr std::size_t kChallengeDatagramSize = wire::kOverhead + wire::kPathChallengeBodySize;

  // `peer` is the address discovery saw (only its IP is compared).
  explicit PathValidation(const IpAddress& peer) : peer_(peer) {}

  // The peer's address now: discovery's, or the last one validated.
  const IpAddress& peer() const { return peer_; }

  // An authenticated datagram of `size` bytes arrived from `source` at `now`.
  // Returns the bytes to challenge `source` with, or nullopt when nothing is
  // to be sent: the source is the peer's address, the datagram is smaller
  // than a challenge, or the address was challenged less than
  // kResendInterval ago. A repeat carries the address's first bytes.
  std::optional<Bytes16> on_datagram(const SocketAddress& source, std::size_t size, TimePoint now,
                                     crypto::RandomSource& rng);

  // An authenticated PATH_RESPONSE carrying `data` arrived from `source` at
  // `now`. True: it answers the live challenge of that very address, which
  // becomes the peer's address (every other challenge is dropped).
  bool on_response(const Bytes16& data, const SocketAddress& source, TimePoint now);

  // Counts the challenges older than kLifetime as failed and forgets them.
  void expire(TimePoint now);

  // Whether any challenge is outstanding.
  bool pending() const;
  const PathValidationStats& stats() const { return stats_; }

 private:
  struct Challenge {
    IpAddress address;
    Bytes16 data{};
    TimePoint started = 0;
    TimePoint last_sent = 0;
  };

  IpAddress peer_;
  std::array<std::optional<Challenge>, kSlots> slots_{};
  PathValidationStats stats_;
};

}  // namespace buckwild::session

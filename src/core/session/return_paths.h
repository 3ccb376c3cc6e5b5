// The paths a responder answers along (docs/protocol.md §11.6, "Behind NAT").
// An initiator behind a NAT with endpoint-dependent mapping and random ports
// is reachable only through the mappings its own datagrams opened: for each
// (its port, our port) pair it sent on, the NAT holds one public source port,
// and only a datagram from that same port of ours to that public port comes
// back through. So the responder remembers, for the last few of its own
// receive ports, the source address an authenticated datagram arrived from,
// and answers from the port it arrived on to the address it came from.
//
// Only the port is learned: an observation from any address but the peer's
// is ignored, so a copied datagram sent from elsewhere cannot redirect the
// session. The peer's address changes only by roaming, after a path
// challenge (path_validation.h): the daemon then starts new ReturnPaths.
// Pure bookkeeping: no I/O, no clock (windows are the caller's).
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "core/common/socket_address.h"

namespace buckwild::session {

class ReturnPaths {
 public:
  // How many of our receive ports are remembered: the newest win.
  static constexpr std::size_t kSlots = 4;

  struct Path {
    std::uint16_t local_port = 0;  // our port the datagram arrived on: answer from it
    SocketAddress remote;          // where it came from: answer to it
    std::int64_t window = 0;       // our window when one last arrived on it
    std::uint64_t order = 0;       // arrivals counted: the larger, the more recent
  };

  // `peer` is the peer's underlay address: discovery's, or the one it roamed
  // to (only its IP is compared).
  explicit ReturnPaths(const IpAddress& peer) : peer_(peer) {}

  // An authenticated datagram from `source` arrived on our port `local_port`
  // during our window `window`. Returns false (and records nothing) when the
  // source's address is not the peer's.
  bool observe(std::uint16_t local_port, const SocketAddress& source, std::int64_t window);

  // The path to answer along in our window `window`, whose own port is
  // `current_port`: of the paths a datagram arrived on at most `max_age`
  // windows ago (the initiator still listens on their ports: it opens
  // w−d … w+d) and whose port `usable(port)` says we can send from, the one
  // on current_port if there is one, else the one a datagram arrived on
  // last. nullopt: none.
  template <typename Usable>
  std::optional<Path> choose(std::uint16_t current_port, std::int64_t window, int max_age,
                             Usable&& usable) const {
    const Path* best = nullptr;
    for (const auto& s : slots_) {
      // Older than the initiator's listening range: its port there is closed.
      if (!s || window - s->window > max_age || !usable(s->local_port)) continue;
      if (s->local_port == current_port) return *s;
      if (best == nullptr || s->order > best->order) best = &*s;
    }
    if (best == nullptr) return std::nullopt;
    return *best;
  }

  // The remembered paths (empty slots are nullopt), for the caller that
  // must keep their ports open.
  const std::array<std::optional<Path>, kSlots>& slots() const { return slots_; }

 private:
  IpAddress peer_;
  std::array<std::optional<Path>, kSlots> slots_{};
  std::uint64_t arrivals_ = 0;
};

}  // namespace buckwild::session

// The stream bridge's NAT (docs/architecture.md "Transparent TCP"): which
// 4-tuples belong to which flow and what each becomes, the source ports P the
// listener tells client flows apart by, and how many flows each application
// address holds. Pure bookkeeping: no I/O, no clock, no event loop.
//
// Every flow owns two keys, one per direction, so every rewrite is one lookup
// whichever way the segment goes. A key belongs to exactly one flow; a new
// flow may take a key over (a new SYN on the 4-tuple of a flow that is over),
// and removing a flow's keys leaves alone those another flow has taken.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>
#include <vector>

#include "core/common/ip_address.h"
#include "core/common/socket_address.h"

namespace buckwild::daemon {

using FlowId = std::uint64_t;
inline constexpr FlowId kNoFlow = 0;

// A segment's addresses as read from the TUN device.
struct NatKey {
  SocketAddress source;
  SocketAddress destination;
  friend bool operator==(const NatKey&, const NatKey&) = default;
};

struct NatKeyHash {
  std::size_t operator()(const NatKey& k) const noexcept;
};

// Whom a flow counts against for the per-owner limit: a local user (an
// application here: its socket's uid), a peer (its session: the peer asked
// for the flow), or, when the owner of a local socket cannot be told, its
// address. Every local application shares the virtual address, so counting
// by address alone would let one user's connections refuse everyone's.
struct FlowOwner {
  enum class Kind : std::uint8_t { kLocalUser, kPeer, kAddress };
  Kind kind = Kind::kAddress;
  std::uint64_t id = 0;  // the uid, or the session id
  IpAddress address;     // kAddress
  static FlowOwner local_user(std::uint32_t uid) { return {Kind::kLocalUser, uid, {}}; }
  static FlowOwner peer(std::uint64_t session) { return {Kind::kPeer, session, {}}; }
  static FlowOwner by_address(const IpAddress& a) { return {Kind::kAddress, 0, a}; }
  friend bool operator==(const FlowOwner&, const FlowOwner&) = default;
};

struct FlowOwnerHash {
  std::size_t operator()(const FlowOwner& o) const noexcept;
};

// What a segment matching a key becomes before it is written back.
struct NatRule {
  FlowId flow = kNoFlow;
  SocketAddress source;
  SocketAddress destination;
};

struct NatLimits {
  std::size_t max_flows = 4096;      // live flows in total
  std::size_t max_per_source = 100;  // live flows per owner (FlowOwner)
};

class NatTable {
 public:
  // Ports P are handed out from [kFirstPort, 65535], least recently released
  // first, in O(1).
  static constexpr std::uint16_t kFirstPort = 1024;
  static constexpr std::size_t kPorts = 65536 - kFirstPort;

  // `ports`: how many ports P, from kFirstPort (all of them but in tests).
  explicit NatTable(NatLimits limits, std::size_t ports = kPorts);
  // New limits for flows admitted from now on; live flows stay.
  void set_limits(NatLimits limits) { limits_ = limits; }

  // The rule for a segment with these addresses, or nullptr.
  const NatRule* find(const NatKey& key) const;
  // Installs `key` -> `rule`. Returns the flow that held the key until now, if
  // it was another one (the caller decides what becomes of that flow).
  std::optional<FlowId> insert(const NatKey& key, const NatRule& rule);
  // Removes `key` if `owner` still holds it.
  void erase(const NatKey& key, FlowId owner);
  std::size_t key_count() const { return rules_.size(); }

  // A port P no flow holds, now held by `flow`; nullopt when all are held.
  // The free ports form a queue: the one released longest ago comes first, so
  // a port comes back only after all others (a flow that is over keeps its
  // own while its keys stay; a reused port meets no old socket in TIME_WAIT).
  std::optional<std::uint16_t> allocate_port(FlowId flow);
  // The flow holding port P, or kNoFlow.
  FlowId port_owner(std::uint16_t port) const;
  // Frees port P if `owner` holds it.
  void release_port(std::uint16_t port, FlowId owner);

  // Whether one more live flow of `owner` is within the limits.
  bool admits(const FlowOwner& owner) const;
  // A live flow of `owner` starts / ends (ends must pair with starts).
  void count_flow(const FlowOwner& owner);
  void uncount_flow(const FlowOwner& owner);
  std::size_t live_flows() const { return live_flows_; }
  std::size_t flows_of(const FlowOwner& owner) const;

 private:
  NatLimits limits_;
  std::unordered_map<NatKey, NatRule, NatKeyHash> rules_;
  std::vector<FlowId> owners_;          // by P - kFirstPort; kNoFlow when free
  std::deque<std::uint16_t> free_ports_;  // free ports, released longest ago first
  std::unordered_map<FlowOwner, std::size_t, FlowOwnerHash> per_owner_;
  std::size_t live_flows_ = 0;
};

}  // namespace buckwild::daemon

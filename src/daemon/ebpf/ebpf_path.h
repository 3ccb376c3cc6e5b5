// The eBPF receive path as one worker's tunnel sees it: one socket receives
// every (peer, port) pair that is valid now for the worker's sessions, and the
// tunnel says which pairs those are at every window change. EbpfPrograms implements it in the daemon
// (kernel_filter.h); FakeEbpfPath does on a FakeDatagramNetwork.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "core/common/cidr.h"
#include "core/common/ip_address.h"
#include "core/common/socket_address.h"
#include "daemon/config/config.h"
#include "daemon/os/sys_error.h"
#include "daemon/net/udp_socket.h"

namespace buckwild::daemon {

// Datagrams from `source` to local UDP `port` are expected now. The other
// fields are carried for diagnostics (the kernel only tests for presence).
struct ValidPort {
  IpAddress source;  // v4 and v4-mapped v6 spellings are the same key
  std::uint16_t port = 0;
  std::uint64_t session_id = 0;
  std::uint32_t window = 0;  // the hop window the port belongs to (low 32 bits)
  std::uint16_t connection_id = 0;
  // The worker whose socket receives the pair (sk_lookup's socket map slot).
  std::uint16_t worker = 0;
};

class EbpfPath {
 public:
  virtual ~EbpfPath() = default;
  // From now on, datagrams to every valid pair of this worker arrive at
  // `socket` (which keeps receiving those sent to its own port). Called once,
  // with the worker's discovery socket.
  virtual SysResult<void> steer_to(DatagramSocket& socket) = 0;
  // Makes this worker's valid pairs exactly `ports`, make-before-break: a pair
  // in both the old and the new set is never missing. Returns the time the
  // update took.
  virtual SysResult<std::chrono::nanoseconds> set_valid_ports(const std::vector<ValidPort>& ports) = 0;
  // The local ports the tunnel's own sockets are bound to now. The hopping
  // range spans the ephemeral ports, so a datagram to a port that is not valid
  // passes when another application's socket would receive it; a socket on
  // one of these ports is ours and does not count.
  virtual SysResult<void> set_own_ports(const std::vector<std::uint16_t>& ports) = 0;
  // The addresses of the configured peers: their endpoints and where their
  // sessions last came from. Their discovery messages skip the cap on all
  // sources' together, which strangers' spoofed junk can empty
  // (docs/protocol.md §6.5); each keeps its per-source rate.
  virtual SysResult<void> set_peer_sources(const std::vector<IpAddress>& sources) = 0;
  // New rate limits from [security] (a reload), in force for the next datagram.
  virtual SysResult<void> set_limits(const SecurityConfig& security) = 0;
  // With several workers: the prefixes this worker's sessions serve (their
  // peers' addresses and routes). Packets leaving the virtual interface for
  // them go to this worker's TUN queue.
  virtual SysResult<void> set_tun_routes(const std::vector<Cidr>& prefixes) = 0;
  // Stream mode: TCP segments from `source` to `destination` leaving the
  // virtual interface become (`new_source`, `new_destination`) in the kernel
  // and come straight back in, never reaching the daemon (bw_tun_nat). False
  // when the kernel does not take the rule (no program attached, its map
  // full): the daemon's own NAT rewrites them then, as it does every SYN and
  // RST.
  virtual bool set_nat_rule(const SocketAddress& source, const SocketAddress& destination,
                            const SocketAddress& new_source, const SocketAddress& new_destination) = 0;
  // Ends that: the segments reach the daemon's NAT again.
  virtual void erase_nat_rule(const SocketAddress& source, const SocketAddress& destination) = 0;
  // Whether the frame filter judges every datagram before the kernel's GRO
  // merges a flow's datagrams into one packet (XDP in the driver on every
  // interface). Only then may the receiving socket ask for UDP GRO: TC
  // ingress and generic XDP run after GRO and would judge, and rate-count, a
  // merged packet as one datagram (docs/architecture.md "UDP offloads").
  virtual bool filters_before_gro() const { return false; }
};

}  // namespace buckwild::daemon

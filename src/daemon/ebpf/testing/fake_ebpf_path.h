// EbpfPath on a FakeDatagramNetwork, so tunnel tests run the eBPF receive
// path without a kernel: datagrams to `host` from a valid
// (source, port) pair go to the steered socket; datagrams to any other port
// of the hopping range except the discovery port are dropped, as the frame
// filter drops them, unless a socket that is not one of the tunnel's own
// would receive them, or the port is valid for another source (a roaming
// candidate, docs/protocol.md §11.6): those go on to whatever socket is bound
// to the port, as the kernel's own lookup does after the filter passed them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "daemon/net/testing/fake_datagram_network.h"
#include "daemon/ebpf/ebpf_path.h"

namespace buckwild::daemon {

class FakeEbpfPath final : public EbpfPath {
 public:
  FakeEbpfPath(FakeDatagramNetwork& network, IpAddress host, std::uint16_t discovery_port);
  ~FakeEbpfPath() override;
  FakeEbpfPath(const FakeEbpfPath&) = delete;
  FakeEbpfPath& operator=(const FakeEbpfPath&) = delete;

  // Errors: EPROTOTYPE when `socket` is not a FakeDatagramSocket.
  SysResult<void> steer_to(DatagramSocket& socket) override;
  SysResult<std::chrono::nanoseconds> set_valid_ports(const std::vector<ValidPort>& ports) override;
  SysResult<void> set_own_ports(const std::vector<std::uint16_t>& ports) override;
  // Records the addresses (no rate limiting is modelled).
  SysResult<void> set_peer_sources(const std::vector<IpAddress>& sources) override;
  const std::vector<IpAddress>& peer_sources() const { return peer_sources_; }
  // Records the limits (no rate limiting is modelled).
  SysResult<void> set_limits(const SecurityConfig& security) override;
  // Records the prefixes (a fake network has no TUN queues to steer).
  SysResult<void> set_tun_routes(const std::vector<Cidr>& prefixes) override {
    tun_routes_ = prefixes;
    return {};
  }
  const std::vector<Cidr>& tun_routes() const { return tun_routes_; }

  // Records the rules; says the kernel took them when told to (a fake network
  // has no virtual interface, so the tunnel's own NAT rewrites either way).
  bool set_nat_rule(const SocketAddress& source, const SocketAddress& destination,
                    const SocketAddress& new_source, const SocketAddress& new_destination) override {
    nat_rules_[{source, destination}] = {new_source, new_destination};
    return nat_taken_;
  }
  void erase_nat_rule(const SocketAddress& source, const SocketAddress& destination) override {
    nat_rules_.erase({source, destination});
  }
  using NatPair = std::pair<SocketAddress, SocketAddress>;
  const std::map<NatPair, NatPair>& nat_rules() const { return nat_rules_; }
  void set_nat_taken(bool taken) { nat_taken_ = taken; }

  const std::vector<ValidPort>& valid_ports() const { return current_; }
  std::uint64_t steered() const { return steered_; }
  std::uint64_t dropped() const { return dropped_; }
  std::uint64_t foreign() const { return foreign_; }
  std::uint64_t roaming() const { return roaming_; }  // passed as roaming candidates
  const std::set<std::uint16_t>& own_ports() const { return own_; }
  std::uint64_t updates() const { return updates_; }
  const std::optional<SecurityConfig>& limits() const { return limits_; }

 private:
  std::optional<FakeDatagramSocket*> lookup(const SocketAddress& from, const SocketAddress& to);

  FakeDatagramNetwork& network_;
  IpAddress host_;
  std::uint16_t discovery_port_;
  std::uint64_t lookup_id_ = 0;
  FakeDatagramSocket* target_ = nullptr;
  SocketAddress target_address_;
  std::set<SocketAddress> valid_;  // (source, local port)
  std::set<std::uint16_t> valid_ports_;  // local ports valid for some source
  std::set<std::uint16_t> own_;
  std::vector<Cidr> tun_routes_;
  std::vector<IpAddress> peer_sources_;
  std::vector<ValidPort> current_;
  std::uint64_t steered_ = 0;
  std::uint64_t dropped_ = 0;
  std::uint64_t foreign_ = 0;
  std::uint64_t roaming_ = 0;
  std::uint64_t updates_ = 0;
  std::optional<SecurityConfig> limits_;
  std::map<NatPair, NatPair> nat_rules_;
  bool nat_taken_ = false;
};

}  // namespace buckwild::daemon

#include "daemon/ebpf/testing/fake_ebpf_path.h"

#include <cerrno>

#include "core/wire/messages.h"

namespace buckwild::daemon {

FakeEbpfPath::FakeEbpfPath(FakeDatagramNetwork& network, IpAddress host,
                                   std::uint16_t discovery_port)
    : network_(network), host_(host), discovery_port_(discovery_port) {
  lookup_id_ = network_.add_lookup(
      [this](const SocketAddress& from, const SocketAddress& to) { return lookup(from, to); });
}

FakeEbpfPath::~FakeEbpfPath() {
  network_.remove_lookup(lookup_id_);
}

SysResult<void> FakeEbpfPath::steer_to(DatagramSocket& socket) {
  auto* fake = dynamic_cast<FakeDatagramSocket*>(&socket);
  if (fake == nullptr) return sys_fail_plain(EPROTOTYPE, "not a socket of the fake network");
  target_ = fake;
  target_address_ = fake->local_address();
  return {};
}

SysResult<std::chrono::nanoseconds> FakeEbpfPath::set_valid_ports(const std::vector<ValidPort>& ports) {
  valid_.clear();
  valid_ports_.clear();
  for (const ValidPort& p : ports) {
    valid_.insert(SocketAddress{p.source.unmapped(), p.port});
    valid_ports_.insert(p.port);
  }
  current_ = ports;
  ++updates_;
  return std::chrono::nanoseconds(0);
}

SysResult<void> FakeEbpfPath::set_own_ports(const std::vector<std::uint16_t>& ports) {
  own_ = std::set<std::uint16_t>(ports.begin(), ports.end());
  return {};
}

SysResult<void> FakeEbpfPath::set_peer_sources(const std::vector<IpAddress>& sources) {
  peer_sources_ = sources;
  return {};
}

std::optional<FakeDatagramSocket*> FakeEbpfPath::lookup(const SocketAddress& from,
                                                            const SocketAddress& to) {
  if (to.ip.unmapped() != host_.unmapped()) return std::nullopt;
  // The socket steered to closed (its tunnel went): it left the sockmap.
  if (target_ != nullptr && !network_.is_open(target_, target_address_)) target_ = nullptr;
  if (target_ != nullptr && valid_.contains(SocketAddress{from.ip.unmapped(), to.port})) {
    ++steered_;
    return target_;
  }
  if (to.port == discovery_port_ || to.port < wire::kMinPort) return std::nullopt;
  if (network_.bound(to) && !own_.contains(to.port)) {
    ++foreign_;
    return std::nullopt;
  }
  if (valid_ports_.contains(to.port)) {
    ++roaming_;
    return std::nullopt;
  }
  ++dropped_;
  return nullptr;
}

SysResult<void> FakeEbpfPath::set_limits(const SecurityConfig& security) {
  limits_ = security;
  return {};
}

}  // namespace buckwild::daemon

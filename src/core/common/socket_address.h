// An IP address and a UDP/TCP port, with conversions to and from sockaddr.
#pragma once

#include <sys/socket.h>

#include <compare>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "core/common/endpoint.h"
#include "core/common/ip_address.h"

namespace buckwild {

struct SocketAddress {
  IpAddress ip;
  std::uint16_t port = 0;

  // Parses an endpoint: "10.0.0.1", "10.0.0.1:5000", "fd00::1", "[fd00::1]",
  // "[fd00::1]:5000". Without a port, `default_port` is used. Ports are
  // 1..65535. On failure: a short problem description (no input echoed back
  // beyond what is needed to say what is wrong).
  static std::expected<SocketAddress, std::string> parse(std::string_view text,
                                                         std::uint16_t default_port);

  // Fills `out` for a socket of `socket_family`: a v4 address given to an
  // AF_INET6 socket is written v4-mapped (::ffff:a.b.c.d). Returns the length
  // to pass to the system call, or 0 when the address cannot be expressed in
  // that family (a v6 address for an AF_INET socket).
  socklen_t to_sockaddr(sockaddr_storage& out, IpFamily socket_family) const;
  // The natural form: AF_INET for v4, AF_INET6 for v6.
  socklen_t to_sockaddr(sockaddr_storage& out) const { return to_sockaddr(out, ip.family()); }

  // Reads an AF_INET or AF_INET6 sockaddr; v4-mapped v6 addresses come back as
  // v4, so one peer has one spelling. nullopt for other families or short input.
  static std::optional<SocketAddress> from_sockaddr(const sockaddr* sa, socklen_t len);

  // "10.0.0.1:5000" or "[fd00::1]:5000".
  std::string to_string() const;

  friend bool operator==(const SocketAddress&, const SocketAddress&) = default;
  friend std::strong_ordering operator<=>(const SocketAddress&, const SocketAddress&) = default;
};

// The core's Endpoint is always IPv6-shaped (IPv4 as ::ffff:a.b.c.d).
Endpoint to_endpoint(const SocketAddress& address);
SocketAddress from_endpoint(const Endpoint& endpoint);

}  // namespace buckwild

template <>
struct std::hash<buckwild::SocketAddress> {
  std::size_t operator()(const buckwild::SocketAddress& a) const noexcept {
    return std::hash<buckwild::IpAddress>{}(a.ip) * 31u + a.port;
  }
};

#include "core/common/socket_address.h"

#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace buckwild {
namespace {

std::expected<std::uint16_t, std::string> parse_port(std::string_view text) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return std::unexpected(std::string("port is not a number"));
  }
  if (value < 1 || value > 65535) {
    return std::unexpected("port " + std::to_string(value) + " is outside 1..65535");
  }
  return static_cast<std::uint16_t>(value);
}

}  // namespace

std::expected<SocketAddress, std::string> SocketAddress::parse(std::string_view text,
                                                               std::uint16_t default_port) {
  std::string_view host = text;
  std::optional<std::string_view> port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) {
      return std::unexpected(std::string("missing ']' after an IPv6 address"));
    }
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::unexpected(std::string("expected ':PORT' after ']'"));
      port_text = rest.substr(1);
    }
  } else if (auto colon = text.find(':'); colon != std::string_view::npos &&
                                          text.find(':', colon + 1) == std::string_view::npos) {
    // Exactly one colon: IPv4 with a port. Two or more: a bare IPv6 address.
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  auto ip = IpAddress::parse(host);
  if (!ip) {
    return std::unexpected(std::string("not an IP address (expected IP, IP:PORT or [IPv6]:PORT)"));
  }
  SocketAddress out{*ip, default_port};
  if (port_text) {
    auto port = parse_port(*port_text);
    if (!port) return std::unexpected(port.error());
    out.port = *port;
  }
  return out;
}

socklen_t SocketAddress::to_sockaddr(sockaddr_storage& out, IpFamily socket_family) const {
  std::memset(&out, 0, sizeof out);
  if (socket_family == IpFamily::kV4) {
    IpAddress a = ip.unmapped();
    if (!a.is_v4()) return 0;
    auto* sin = reinterpret_cast<sockaddr_in*>(&out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    std::memcpy(&sin->sin_addr, a.bytes().data(), 4);
    return sizeof(sockaddr_in);
  }
  IpAddress a = ip.mapped_v6();
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  std::memcpy(&sin6->sin6_addr, a.bytes().data(), 16);
  return sizeof(sockaddr_in6);
}

std::optional<SocketAddress> SocketAddress::from_sockaddr(const sockaddr* sa, socklen_t len) {
  if (sa == nullptr) return std::nullopt;
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    sockaddr_in sin;
    std::memcpy(&sin, sa, sizeof sin);
    std::array<std::uint8_t, 4> b;
    std::memcpy(b.data(), &sin.sin_addr, 4);
    return SocketAddress{IpAddress::v4(b), ntohs(sin.sin_port)};
  }
  if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, sa, sizeof sin6);
    std::array<std::uint8_t, 16> b;
    std::memcpy(b.data(), &sin6.sin6_addr, 16);
    return SocketAddress{IpAddress::v6(b).unmapped(), ntohs(sin6.sin6_port)};
  }
  return std::nullopt;
}

Endpoint to_endpoint(const SocketAddress& address) {
  Endpoint e;
  const IpAddress mapped = address.ip.mapped_v6();
  std::copy_n(mapped.bytes().begin(), 16, e.address.begin());
  e.port = address.port;
  return e;
}

SocketAddress from_endpoint(const Endpoint& endpoint) {
  return SocketAddress{IpAddress::v6(endpoint.address).unmapped(), endpoint.port};
}

std::string SocketAddress::to_string() const {
  // Built by appending: g++ 12 at -O3 reports a false -Wrestrict on
  // literal + std::string (GCC bug 105651).
  std::string s;
  if (ip.is_v6()) s += '[';
  s += ip.to_string();
  if (ip.is_v6()) s += ']';
  s += ':';
  s += std::to_string(port);
  return s;
}

}  // namespace buckwild

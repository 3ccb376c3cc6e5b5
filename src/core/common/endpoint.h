// A UDP endpoint as the core sees it: an IPv6 address (IPv4 as ::ffff:a.b.c.d)
// and a port. The core never resolves or binds anything; the daemon converts.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace buckwild {

struct Endpoint {
  std::array<std::uint8_t, 16> address{};  // network byte order; IPv4-mapped for IPv4
  std::uint16_t port = 0;

  static Endpoint ipv4(std::uint32_t host_order_address, std::uint16_t port) {
    Endpoint e;
    e.address[10] = 0xFF;
    e.address[11] = 0xFF;
    e.address[12] = static_cast<std::uint8_t>(host_order_address >> 24);
    e.address[13] = static_cast<std::uint8_t>(host_order_address >> 16);
    e.address[14] = static_cast<std::uint8_t>(host_order_address >> 8);
    e.address[15] = static_cast<std::uint8_t>(host_order_address);
    e.port = port;
    return e;
  }

  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

}  // namespace buckwild

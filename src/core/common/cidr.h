// CIDR prefixes ("10.77.0.1/24", "fd77::/64"): parsing and containment.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

#include "core/common/ip_address.h"

namespace buckwild {

// An address with a prefix length. The address may have host bits set (an
// interface address such as 10.77.0.1/24) or not (a network such as
// 10.77.0.0/24); the functions below say which they need.
struct Cidr {
  IpAddress address;
  std::uint8_t prefix_len = 0;  // 0..32 for v4, 0..128 for v6

  // Parses "ADDRESS/LENGTH" for either family. Fails with a problem text
  // ("prefix length 33 is outside 0..32", "missing '/LENGTH'").
  static std::expected<Cidr, std::string> parse(std::string_view text);

  IpFamily family() const { return address.family(); }
  // The prefix with host bits cleared (10.77.0.1/24 -> 10.77.0.0/24).
  Cidr network() const;
  // True when any bit beyond the prefix length is set.
  bool has_host_bits() const;
  // True when `ip` is the same family and inside this prefix.
  bool contains(const IpAddress& ip) const;
  // True when `other` is the same family and lies entirely inside this prefix.
  bool contains(const Cidr& other) const;
  // True when the two prefixes share at least one address.
  bool overlaps(const Cidr& other) const;

  // "10.77.0.1/24".
  std::string to_string() const;

  friend bool operator==(const Cidr&, const Cidr&) = default;
};

// Parses a network prefix for routes and allow-lists: like Cidr::parse, and
// also refuses host bits ("10.1.2.3/24 has host bits set; the network is
// 10.1.2.0/24").
std::expected<Cidr, std::string> validate_prefix(std::string_view text);

// Parses an interface address for the TUN device: "ADDRESS/LENGTH" where the
// address is a usable host of its prefix (for IPv4 prefixes of /30 and wider,
// neither the network nor the broadcast address). `family` restricts the
// family accepted.
std::expected<Cidr, std::string> validate_interface_address(std::string_view text, IpFamily family);

}  // namespace buckwild

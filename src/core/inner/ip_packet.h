// The IP header of a packet applications send through the tunnel (an "inner"
// packet, read from or written to the TUN device). Pure functions over bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/common/bytes.h"
#include "core/common/ip_address.h"

namespace buckwild::inner {

inline constexpr std::uint8_t kProtoTcp = 6;
inline constexpr std::uint8_t kProtoUdp = 17;
inline constexpr std::size_t kIpv4HeaderSize = 20;
inline constexpr std::size_t kIpv6HeaderSize = 40;

// The addresses of an IPv4 or IPv6 packet: enough to route it.
struct IpAddresses {
  IpAddress source;
  IpAddress destination;
};

// The source and destination of `packet` if it starts with an IPv4 header (20
// bytes or more) or an IPv6 header (40 bytes or more); nullopt otherwise. The
// rest of the header is not checked: routing needs nothing else, and the
// kernel that receives the packet checks it.
std::optional<IpAddresses> ip_addresses(Bytes packet);

// A whole, unfragmented IP packet as far as its transport header: lengths
// consistent with the buffer, IPv4 with any IHL and no fragment bits, IPv6
// with the transport protocol as the first next header.
struct IpHeader {
  IpAddresses addresses;
  std::uint8_t protocol = 0;         // IPv4 protocol / IPv6 next header
  std::size_t transport_offset = 0;  // where the transport header starts
  std::size_t end = 0;               // the packet's length by its header (<= buffer size)
};

// The header of `packet` as above, or nullopt for anything else (other
// versions, fragments, truncation, inconsistent lengths).
std::optional<IpHeader> parse_ip(Bytes packet);

}  // namespace buckwild::inner

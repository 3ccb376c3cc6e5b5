#include "core/inner/ip_packet.h"

#include <array>
#include <cstring>

#include "core/common/byte_order.h"

namespace buckwild::inner {
namespace {

template <std::size_t N>
IpAddress address_at(Bytes packet, std::size_t offset) {
  std::array<std::uint8_t, N> a;
  std::memcpy(a.data(), packet.data() + offset, N);
  if constexpr (N == 4) {
    return IpAddress::v4(a);
  } else {
    return IpAddress::v6(a);
  }
}

}  // namespace

std::optional<IpAddresses> ip_addresses(Bytes packet) {
  if (packet.empty()) return std::nullopt;
  const unsigned version = packet[0] >> 4;
  if (version == 4 && packet.size() >= kIpv4HeaderSize) {
    return IpAddresses{address_at<4>(packet, 12), address_at<4>(packet, 16)};
  }
  if (version == 6 && packet.size() >= kIpv6HeaderSize) {
    return IpAddresses{address_at<16>(packet, 8), address_at<16>(packet, 24)};
  }
  return std::nullopt;
}

std::optional<IpHeader> parse_ip(Bytes p) {
  auto addresses = ip_addresses(p);
  if (!addresses) return std::nullopt;
  IpHeader h;
  h.addresses = *addresses;
  if (addresses->source.is_v4()) {
    const std::size_t ihl = std::size_t{p[0] & 0x0Fu} * 4;
    const std::size_t total = load16(&p[2]);
    if (ihl < kIpv4HeaderSize || total < ihl || total > p.size()) return std::nullopt;
    if ((load16(&p[6]) & 0x3FFF) != 0) return std::nullopt;  // a fragment (MF or offset)
    h.protocol = p[9];
    h.transport_offset = ihl;
    h.end = total;
    return h;
  }
  const std::size_t total = kIpv6HeaderSize + load16(&p[4]);
  if (total > p.size()) return std::nullopt;
  h.protocol = p[6];
  h.transport_offset = kIpv6HeaderSize;
  h.end = total;
  return h;
}

}  // namespace buckwild::inner

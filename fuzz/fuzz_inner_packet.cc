// The inner packet parsers (core/inner): IP headers, TCP segments, the NAT
// rewrite with its incremental checksum update, and RST synthesis. Whatever
// parse_tcp accepts must rewrite without breaking a checksum that was right,
// and an RST built for it must parse and carry correct checksums.
#include <array>
#include <cstdlib>
#include <vector>

#include "core/inner/ip_packet.h"
#include "core/inner/tcp_segment.h"

using namespace buckwild;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes input(data, size);
  auto addresses = inner::ip_addresses(input);
  auto header = inner::parse_ip(input);
  if (header && (!addresses || header->end > size || header->transport_offset > header->end))
    std::abort();
  auto segment = inner::parse_tcp(input);
  if (!segment) return 0;
  if (!header || header->protocol != inner::kProtoTcp) std::abort();

  std::vector<std::uint8_t> packet(data, data + size);
  const bool checksums_were_ok = inner::tcp_checksums_ok(packet);
  // New endpoints of the packet's own family, taken from its first bytes.
  const bool v4 = segment->source.ip.is_v4();
  std::array<std::uint8_t, 16> a{};
  for (std::size_t i = 0; i < a.size() && i < size; ++i)
    a[i] = static_cast<std::uint8_t>(data[i] ^ 0x5A);
  const IpAddress from = v4 ? IpAddress::v4({a[0], a[1], a[2], a[3]}) : IpAddress::v6(a);
  const IpAddress to = v4 ? IpAddress::v4({a[4], a[5], a[6], a[7]}) : IpAddress::v6(a);
  const SocketAddress new_source{from, static_cast<std::uint16_t>(a[8] << 8 | a[9])};
  const SocketAddress new_destination{to, static_cast<std::uint16_t>(a[10] << 8 | a[11])};
  inner::rewrite_tcp(packet, *segment, new_source, new_destination);
  auto again = inner::parse_tcp(packet);
  if (!again || again->source != new_source || again->destination != new_destination) std::abort();
  if (checksums_were_ok && !inner::tcp_checksums_ok(packet)) std::abort();

  std::array<std::uint8_t, 64> rst{};
  const std::size_t n = inner::make_rst(*again, rst);
  if (n != 0) {
    auto r = inner::parse_tcp(Bytes(rst.data(), n));
    if (!r || !r->has(inner::tcp_flag::kRst) || !inner::tcp_checksums_ok(Bytes(rst.data(), n)))
      std::abort();
  }
  return 0;
}

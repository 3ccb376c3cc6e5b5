// TCP segments on the virtual interface, as the stream bridge handles them:
// parsing an IP packet's TCP header, rewriting its addresses and ports with an
// incremental checksum update (RFC 1624), and building the RST that answers a
// segment. Pure functions over bytes; no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/common/bytes.h"
#include "core/common/socket_address.h"

namespace buckwild::inner {

namespace tcp_flag {
inline constexpr std::uint8_t kFin = 0x01;
inline constexpr std::uint8_t kSyn = 0x02;
inline constexpr std::uint8_t kRst = 0x04;
inline constexpr std::uint8_t kPsh = 0x08;
inline constexpr std::uint8_t kAck = 0x10;
}  // namespace tcp_flag

struct TcpSegment {
  SocketAddress source;
  SocketAddress destination;
  std::size_t tcp_offset = 0;    // where the TCP header starts in the IP packet
  std::size_t payload_size = 0;  // TCP payload bytes
  std::uint32_t sequence = 0;
  std::uint32_t acknowledgment = 0;
  std::uint8_t flags = 0;

  bool has(std::uint8_t f) const { return (flags & f) != 0; }
  // An opening SYN: SYN without ACK, RST or FIN.
  bool opening() const {
    return (flags & (tcp_flag::kSyn | tcp_flag::kAck | tcp_flag::kRst | tcp_flag::kFin)) ==
           tcp_flag::kSyn;
  }
};

// The TCP segment in an IPv4 or IPv6 packet, if it is a whole one: IPv4 not
// fragmented, IPv6 with TCP as the first next header, lengths consistent.
// nullopt for anything else (other protocols, fragments, truncation).
std::optional<TcpSegment> parse_tcp(Bytes ip_packet);

// What a packet's TCP checksum field holds.
enum class TcpChecksumField : std::uint8_t {
  // The checksum itself (RFC 793): complemented, over pseudo-header, header
  // and payload.
  kComplete,
  // A checksum the device completes (a TUN packet with
  // VIRTIO_NET_HDR_F_NEEDS_CSUM, a GSO super-packet among them): the folded
  // ones' complement sum of the pseudo-header only, not complemented; the
  // device adds the TCP header and payload and complements.
  kPseudoHeaderSum,
};

// Rewrites the packet's source and destination (same family as the packet)
// and updates the IPv4 header checksum and the TCP checksum field
// incrementally: for kComplete by RFC 1624 eqn. 3 over addresses and ports;
// for kPseudoHeaderSum the addresses' change is added to the sum (ports are
// not in the pseudo-header) and nothing is complemented. Works on packets of
// any size parse_tcp accepts, a 64 KiB GSO super-packet included (the work
// does not depend on the size). `segment` is parse_tcp's view of this packet
// and is updated to match.
void rewrite_tcp(MutableBytes ip_packet, TcpSegment& segment, const SocketAddress& source,
                 const SocketAddress& destination,
                 TcpChecksumField field = TcpChecksumField::kComplete);

// Writes into `out` (at least 60 bytes) the RST|ACK that refuses `segment`, as
// a host would answer a SYN to a closed port (RFC 793 "reset generation"), and
// returns its size; 0 if the segment is itself an RST (never answered).
std::size_t make_rst(const TcpSegment& segment, MutableBytes out);

// True if the packet's TCP checksum (and IPv4 header checksum) verify. For tests.
bool tcp_checksums_ok(Bytes ip_packet);

}  // namespace buckwild::inner

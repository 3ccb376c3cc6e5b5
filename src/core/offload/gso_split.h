// TUN offloads, the read side: what the kernel hands a TUN device opened with
// IFF_VNET_HDR and TUNSETOFFLOAD is a virtio_net_hdr followed by one IP packet
// that may be a GSO "super-packet" (up to 64 KiB of one TCP or UDP flow) or a
// packet whose transport checksum is left to us (VIRTIO_NET_HDR_F_NEEDS_CSUM).
// This module turns it into the packets a plain TUN read would have returned:
// MSS-sized, with their own IP lengths and ids, TCP sequence numbers and flags,
// and complete checksums. Pure functions over bytes; no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/common/bytes.h"

namespace buckwild::offload {

// struct virtio_net_hdr (linux/virtio_net.h), as a TUN device with
// IFF_VNET_HDR reads and writes it: 10 bytes, little-endian fields (the device
// is set to little-endian with TUNSETVNETLE).
inline constexpr std::size_t kVnetHeaderSize = 10;

namespace vnet_flag {
inline constexpr std::uint8_t kNeedsCsum = 0x01;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
}  // namespace vnet_flag

namespace gso_type {
inline constexpr std::uint8_t kNone = 0;    // VIRTIO_NET_HDR_GSO_NONE
inline constexpr std::uint8_t kTcpV4 = 1;   // VIRTIO_NET_HDR_GSO_TCPV4
inline constexpr std::uint8_t kTcpV6 = 4;   // VIRTIO_NET_HDR_GSO_TCPV6
inline constexpr std::uint8_t kUdpL4 = 5;   // VIRTIO_NET_HDR_GSO_UDP_L4 (USO, IPv4 or IPv6)
inline constexpr std::uint8_t kEcn = 0x80;  // VIRTIO_NET_HDR_GSO_ECN, or'd into the type
}  // namespace gso_type

struct VnetHeader {
  std::uint8_t flags = 0;
  std::uint8_t gso_type = gso_type::kNone;
  std::uint16_t hdr_len = 0;
  std::uint16_t gso_size = 0;
  std::uint16_t csum_start = 0;
  std::uint16_t csum_offset = 0;
};

// Reads the header from the first kVnetHeaderSize bytes of `in`; nullopt if
// `in` is shorter.
std::optional<VnetHeader> read_vnet_header(Bytes in);
// Writes `h` into the first kVnetHeaderSize bytes of `out` (at least that long).
void write_vnet_header(const VnetHeader& h, MutableBytes out);

// Why a packet read with a vnet header cannot be turned into plain packets.
// The caller drops it and counts it.
enum class SplitRefusal : std::uint8_t {
  kUnknownGsoType,   // a gso_type we did not enable (UFO, SCTP, ...)
  kBadIpHeader,      // not IPv4/IPv6, truncated, lengths inconsistent, fragmented
  kWrongProtocol,    // gso_type names TCP or UDP, the packet carries something else
  kBadTransport,     // transport header truncated or csum_start/offset not at it
  kBadChecksumSpan,  // NEEDS_CSUM with csum_start/offset outside the packet
  kZeroGsoSize,      // a GSO packet with gso_size 0
};

// What one packet read from the device becomes: `count` packets, segment i
// carrying payload bytes [i * gso_size, min((i + 1) * gso_size, payload)) after
// a copy of the `header_len` bytes of IP and transport header.
struct SplitPlan {
  VnetHeader vnet;
  std::uint8_t kind = gso_type::kNone;  // vnet.gso_type without the ECN bit
  bool ipv6 = false;
  std::size_t transport_offset = 0;  // where the TCP/UDP header starts (GSO only)
  std::size_t header_len = 0;        // IP + transport header (GSO only)
  std::size_t payload = 0;           // bytes after header_len (GSO only)
  std::size_t count = 1;
  std::size_t max_size = 0;  // the largest segment's size: buffers must hold it

  bool is_gso() const { return kind != gso_type::kNone; }
};

struct SplitResult {
  std::optional<SplitPlan> plan;
  SplitRefusal refusal = SplitRefusal::kBadIpHeader;  // meaningful when !plan
};

// Checks `ip_packet` (what follows the vnet header) against `vnet` and plans
// its split. A non-GSO packet is planned as one segment (its checksum
// completed if NEEDS_CSUM is set). GSO types accepted: TCPV4, TCPV6, UDP_L4;
// the IP header must be IPv4 (options allowed, not a fragment) or IPv6 with
// TCP/UDP as the first next header, with lengths that match the packet.
SplitResult plan_split(const VnetHeader& vnet, Bytes ip_packet);

// Writes segment `index` (< plan.count) of `ip_packet` into `out` (at least
// plan.max_size bytes) and returns its size. Segments get: IPv4 total length,
// id (the original + index) and header checksum; IPv6 payload length; TCP
// sequence advanced by the payload before it, FIN and PSH only on the last,
// CWR only on the first; UDP length; full TCP/UDP checksums (pseudo-header
// included, a UDP checksum of 0 sent as 0xFFFF). A non-GSO packet is copied,
// and with NEEDS_CSUM its checksum is completed: the ones' complement sum from
// csum_start to the end (the field holds the kernel's pseudo-header seed),
// stored at csum_start + csum_offset.
std::size_t write_segment(const SplitPlan& plan, Bytes ip_packet, std::size_t index,
                          MutableBytes out);

// The Internet checksum helpers the splitter uses, for the coalescer and tests.
// Ones' complement sum of `data` (odd length padded with a zero byte), added to
// `acc`, unfolded.
std::uint32_t checksum_add(std::uint32_t acc, Bytes data);
// Folds a sum to 16 bits (not complemented).
std::uint16_t checksum_fold(std::uint32_t acc);

}  // namespace buckwild::offload

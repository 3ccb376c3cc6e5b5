// TUN offloads, the write side (GRO in user space): consecutive packets of one
// flow, as decrypted one after another, are joined into one GSO super-packet
// that a TUN device opened with IFF_VNET_HDR takes in one write with its
// virtio_net_hdr. In-order TCP segments become one large segment (TSO4/TSO6),
// as from a NIC that does GRO; equal-size UDP datagrams become one USO packet
// (UDP_L4) that the kernel splits back into the same datagrams. Pure: no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/common/bytes.h"
#include "core/offload/gso_split.h"

namespace buckwild::offload {

// The largest super-packet: an IPv4 total length (and the TUN's GSO limit).
inline constexpr std::size_t kMaxSuperPacket = 65535;
// The most datagrams one UDP run carries: the kernel's UDP_MAX_SEGMENTS is
// 128; half keeps a run within what every kernel with USO takes.
inline constexpr std::size_t kMaxUdpRun = 64;

// Holds one run of packets: either a single packet of any kind, or packets of
// one flow that coalesce. Use: offer each packet to append(); when it says no,
// take() the run, write it, and start() a new one with that packet.
class GroCoalescer {
 public:
  // `udp`: UDP datagrams coalesce too (the device takes UDP_L4 writes, which
  // kernels before 6.2 refuse); otherwise only TCP segments do.
  explicit GroCoalescer(bool udp = false);

  bool empty() const { return count_ == 0; }
  // Packets in the run (0 when empty).
  std::size_t count() const { return count_; }
  bool coalesces_udp() const { return udp_; }
  // Changes `udp` for the runs started from now on.
  void set_udp(bool udp) { udp_ = udp; }
  // True when the run is of UDP datagrams.
  bool udp_run() const { return proto_ == kUdp; }

  // Begins a run with a copy of `packet` (the run must be empty). Any packet
  // is accepted; others can be appended only to a TCP segment with payload,
  // valid checksums and flags no more than ACK and PSH (PSH ends the run), or
  // (with `udp`) a UDP datagram with payload and a checksum that verifies (an
  // IPv4 datagram sent without one is written as it came). Packets longer
  // than kMaxSuperPacket are refused: false.
  bool start(Bytes packet);
  // Appends `packet` to the run if it continues it: same IP header (but
  // length, id and checksum), same ports; payload no larger than the first's,
  // and the run's last payload as large as the first's (a smaller one ended
  // it); valid checksums; the result no longer than kMaxSuperPacket. TCP: the
  // same TCP header (options, ack, window) and flags but PSH, the sequence
  // number right after the run's. UDP: at most kMaxUdpRun datagrams. False,
  // and the run unchanged, otherwise.
  bool append(Bytes packet);

  // The run as one packet to write, and its vnet header: for one packet, the
  // packet as it came and an all-zero header; for several, the super-packet
  // (IPv4 total length and header checksum, IPv6 payload length; TCP: PSH if
  // the last had it; UDP: the length of the whole; the transport checksum
  // field seeded with the pseudo-header sum) with NEEDS_CSUM,
  // TCPV4/TCPV6/UDP_L4, hdr_len, gso_size (the first payload), csum_start and
  // csum_offset. Empties the run; the span stays valid until the next start().
  Bytes take(VnetHeader& header);

 private:
  static constexpr std::uint8_t kTcp = 6;
  static constexpr std::uint8_t kUdp = 17;

  std::vector<std::uint8_t> buf_;
  bool udp_;
  std::size_t len_ = 0;
  std::size_t count_ = 0;
  bool open_ = false;           // packets may be appended
  std::uint8_t proto_ = 0;      // of an open run: kTcp or kUdp
  bool ipv6_ = false;
  std::size_t ip_len_ = 0;      // IP header
  std::size_t header_len_ = 0;  // IP + transport header
  std::size_t gso_size_ = 0;    // the first packet's payload
  std::size_t last_payload_ = 0;
  std::uint32_t next_seq_ = 0;  // TCP
};

}  // namespace buckwild::offload

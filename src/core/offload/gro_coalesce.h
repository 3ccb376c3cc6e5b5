// TUN offloads, the write side (GRO in user space): consecutive in-order TCP
// segments of one flow, as decrypted one after another, are joined into one
// GSO super-packet that a TUN device opened with IFF_VNET_HDR takes in one
// write with its virtio_net_hdr. The kernel's TCP then receives one large
// segment, as from a NIC that does GRO. Pure: no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/common/bytes.h"
#include "core/offload/gso_split.h"

namespace buckwild::offload {

// The largest super-packet: an IPv4 total length (and the TUN's GSO limit).
inline constexpr std::size_t kMaxSuperPacket = 65535;

// Holds one run of packets: either a single packet of any kind, or TCP
// segments that coalesce. Use: offer each packet to append(); when it says no,
// take() the run, write it, and start() a new one with that packet.
class TcpCoalescer {
 public:
  TcpCoalescer();

  bool empty() const { return count_ == 0; }
  // Segments in the run (0 when empty).
  std::size_t count() const { return count_; }

  // Begins a run with a copy of `packet` (the run must be empty). Any packet
  // is accepted; only a TCP segment with payload, valid checksums and flags
  // no more than ACK and PSH (PSH ends the run) can have others appended.
  // Packets longer than kMaxSuperPacket are refused: false.
  bool start(Bytes packet);
  // Appends `packet` to the run if it continues it: same IP header (but
  // length, id and checksum), same ports, TCP header (options, ack, window)
  // and flags but PSH; sequence number right after the run's; payload no
  // larger than the first's, and the run's last payload as large as the
  // first's (a smaller one ended it); valid checksums; the result no longer
  // than kMaxSuperPacket. False, and the run unchanged, otherwise.
  bool append(Bytes packet);

  // The run as one packet to write, and its vnet header: for one packet, the
  // packet as it came and an all-zero header; for several, the super-packet
  // (IPv4 total length and header checksum, IPv6 payload length, PSH if the
  // last had it, the TCP checksum field seeded with the pseudo-header sum)
  // with NEEDS_CSUM, TCPV4/TCPV6, hdr_len, gso_size (the first payload),
  // csum_start and csum_offset. Empties the run; the span stays valid until
  // the next start().
  Bytes take(VnetHeader& header);

 private:
  std::vector<std::uint8_t> buf_;
  std::size_t len_ = 0;
  std::size_t count_ = 0;
  bool open_ = false;          // segments may be appended
  bool ipv6_ = false;
  std::size_t ip_len_ = 0;     // IP header
  std::size_t header_len_ = 0;  // IP + TCP header
  std::size_t gso_size_ = 0;   // the first segment's payload
  std::size_t last_payload_ = 0;
  std::uint32_t next_seq_ = 0;
};

}  // namespace buckwild::offload

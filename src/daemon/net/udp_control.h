// The ancillary data (control messages) of a received UDP datagram, parsed
// without I/O: a pure function over the bytes recvmsg wrote, so that it can be
// tested and fuzzed apart from the socket.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/common/bytes.h"
#include "core/common/socket_address.h"

namespace buckwild::daemon {

// The local address and port a datagram was sent to, from its control
// messages `control` (msg_control as far as msg_controllen after recvmsg):
// IP(V6)_ORIGDSTADDR gives address and port (right even when a BPF sk_lookup
// program steered a datagram for another port to this socket); failing that,
// IP(V6)_PKTINFO gives the address and `local`'s port stays. Anything else, a
// message that does not fit the buffer or is too short for what it claims
// to be, is skipped; with nothing usable the answer is `local`.
SocketAddress destination_from_control(Bytes control, const SocketAddress& local);

// When the kernel received the datagram, ns since the Unix epoch on
// CLOCK_REALTIME, from its SO_TIMESTAMPNS message (either form, _OLD or
// _NEW) or the software stamp of an SO_TIMESTAMPING one; the last such
// message counts. nullopt when there is none, or only a zero, negative or
// malformed one (short, nanoseconds out of range, seconds past 2^33).
std::optional<std::int64_t> receive_stamp_from_control(Bytes control);

// The segment size of a coalesced read (UDP GRO), from its SOL_UDP / UDP_GRO
// message: every datagram of the read but the last is this long, the last
// 1..this. The last such message counts; 0 when there is none (one datagram),
// or only a short one. A value outside 1..65535 is returned as it came, for
// split_coalesced to refuse.
std::int64_t gro_segment_size_from_control(Bytes control);

// Most datagrams one coalesced read may be split into. The kernel merges at
// most 64 (UDP_GRO_CNT_MAX); more is a malformed segment size, refused so that
// one read never turns into unbounded work.
inline constexpr std::size_t kMaxGroSegments = 64;

// How the `length` bytes of one read split into datagrams: `count` of them,
// the i-th (0-based) at i * segment_size, each segment_size bytes long but
// the last (1..segment_size). segment_size 0 is a plain read: one datagram.
// count 0: malformed (a segment size outside 1..65535, or more than
// kMaxGroSegments datagrams) — the read is dropped and counted, never split.
struct GroSplit {
  std::size_t count = 0;
  std::size_t segment_size = 0;
  // The i-th datagram of `read` (i < count).
  MutableBytes datagram(MutableBytes read, std::size_t i) const {
    const std::size_t at = i * segment_size;
    return read.subspan(at, std::min(segment_size, read.size() - at));
  }
};
GroSplit split_coalesced(std::size_t length, std::int64_t segment_size);

}  // namespace buckwild::daemon

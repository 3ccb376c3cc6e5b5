// The ancillary data (control messages) of a received UDP datagram, parsed
// without I/O: a pure function over the bytes recvmsg wrote, so that it can be
// tested and fuzzed apart from the socket.
#pragma once

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

}  // namespace buckwild::daemon

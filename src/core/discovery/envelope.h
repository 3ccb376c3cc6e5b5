// Framing of the three discovery messages: their fixed header fields and the
// trailer, which carry no key material (docs/protocol.md §6.2).
#pragma once

#include <cstdint>
#include <vector>

#include "core/common/bytes.h"
#include "core/common/error.h"
#include "core/wire/codec.h"

namespace buckwild::discovery {

// The header of a discovery message of type `t`: version 1, flags SYN (DISCOVERY),
// SYN|ACK (RESPONSE) or ACK (CONFIRM), the given session id (0 except on
// CONFIRM) and timestamp; every other field 0.
wire::Header discovery_header(wire::PacketType t, std::uint64_t session_id,
                              std::uint32_t timestamp_ms);

// Encodes a discovery message with a zero trailer.
std::vector<std::uint8_t> encode_discovery(const wire::Header& h, const wire::Body& body);

// Parses a datagram as discovery message of type `expected`: the codec's checks,
// then the fixed header fields above and an all-zero trailer. kInvalidPacket otherwise.
Result<wire::Packet> decode_discovery(Bytes datagram, wire::PacketType expected);

}  // namespace buckwild::discovery

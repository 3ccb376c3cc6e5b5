// Parsing and serialising Buckwild packets through bounds-checked spans.
//
// A datagram is header (44 bytes) | body (payload_length bytes) | tag (16 bytes).
// Header fields travel in the clear (they are the AEAD's associated data); the
// body is encrypted in AEAD mode. So parsing is two steps: parse_header() on the
// datagram as received, then parse_body() on the body once it is decrypted.
#pragma once

#include <cstddef>
#include <variant>

#include "core/common/bytes.h"
#include "core/common/error.h"
#include "core/wire/messages.h"

namespace buckwild::wire {

// The body of DATA, FRAGMENT and DATAGRAM packets: opaque bytes, a view into the
// buffer that was parsed.
struct PayloadBody {
  Bytes bytes;
  friend bool operator==(const PayloadBody& a, const PayloadBody& b) {
    return std::equal(a.bytes.begin(), a.bytes.end(), b.bytes.begin(), b.bytes.end());
  }
};

using Body = std::variant<PayloadBody, SynBody, SynAckBody, AckBody, FinBody, HeartbeatBody,
                          RecoveryBody, ErrorBody, WindowUpdateBody, RstBody, DiscoveryBody,
                          DiscoveryResponseBody, DiscoveryConfirmBody, TimeSyncRequestBody,
                          TimeSyncResponseBody, RekeyRequestBody, RekeyResponseBody,
                          RepairRequestBody, RepairResponseBody, EmergencyRequestBody,
                          EmergencyResponseBody, SequenceNegBody, PathChallengeBody,
                          PathResponseBody, PmtuProbeBody, PmtuAckBody>;

struct Packet {
  Header header;
  Body body;
};

// Parses and validates the header of a received datagram (§4.3): its size
// (60..9000 bytes), version, type, reserved byte and flag bits, payload length
// equal to the datagram size minus 60, connection id ≤ 4095, timestamp below one
// day, fragment fields (set only on FRAGMENT, with index < total ≤ 255), and the
// session id rule (zero exactly on DISCOVERY and DISCOVERY_RESPONSE).
// Errors: kInvalidPacket, kTimestampInvalid or kFragmentInvalid, with `what` naming the field.
Result<Header> parse_header(Bytes datagram);

// Writes `h` into the first 44 bytes of `out`. Precondition: out.size() ≥ 44.
void write_header(const Header& h, MutableBytes out);

// Parses the plaintext body of a packet whose header is `h` (§5): exact sizes for
// fixed bodies, zero reserved fields, values in range. Views (payloads, error
// messages) point into `body`. Errors: kInvalidPacket (with `what`).
Result<Body> parse_body(const Header& h, Bytes body);

// The encoded size of `body`.
std::size_t body_size(const Body& body);

// Serialises `body` into `out`. Fails with kInvalidParameter if the body does not
// match `h.type`, holds an out-of-range value, or `out` is too small.
Result<std::size_t> write_body(const Header& h, const Body& body, MutableBytes out);

// Serialises a whole packet without protection: header (payload_length set from
// the body), body, and 16 zero bytes where the tag goes. Returns the datagram size.
Result<std::size_t> encode_packet(Header h, const Body& body, MutableBytes out);

// Parses a whole unprotected datagram (header then body; the tag is not checked).
// The inverse of encode_packet, used by tests and fuzzers.
Result<Packet> decode_packet(Bytes datagram);

}  // namespace buckwild::wire

// One valid, fully populated packet of every type, for round-trip tests,
// protection tests, fuzz seeds and micro-benchmarks.
#pragma once

#include <vector>

#include "core/wire/codec.h"

namespace buckwild::testing {

// Every packet type, in code order.
std::vector<wire::PacketType> all_packet_types();

// A valid packet of type `t`: every field set to a distinctive in-range value.
// Payload and error-message views point into static storage.
wire::Packet sample_packet(wire::PacketType t);

// sample_packet(t) encoded without protection (header, body, 16 zero tag bytes).
std::vector<std::uint8_t> sample_datagram(wire::PacketType t);

}  // namespace buckwild::testing

#include "core/discovery/envelope.h"

namespace buckwild::discovery {
namespace {

std::uint8_t flags_for(wire::PacketType t) {
  switch (t) {
    case wire::PacketType::kDiscovery: return wire::flags::kSyn;
    case wire::PacketType::kDiscoveryResponse: return wire::flags::kSyn | wire::flags::kAck;
    default: return wire::flags::kAck;
  }
}

}  // namespace

wire::Header discovery_header(wire::PacketType t, std::uint64_t session_id,
                              std::uint32_t timestamp_ms) {
  wire::Header h;
  h.type = t;
  h.flags = flags_for(t);
  h.session_id = session_id;
  h.timestamp_ms = timestamp_ms;
  return h;
}

std::vector<std::uint8_t> encode_discovery(const wire::Header& h, const wire::Body& body) {
  std::vector<std::uint8_t> out(wire::kMaxDiscoveryDatagram);
  auto n = wire::encode_packet(h, body, out);
  // Discovery bodies are fixed-size and fit by construction (static_assert in messages.h).
  out.resize(n.value());
  return out;
}

Result<wire::Packet> decode_discovery(Bytes datagram, wire::PacketType expected) {
  if (datagram.size() > wire::kMaxDiscoveryDatagram) {
    return fail(ErrorCode::kInvalidPacket, "discovery datagram too long");
  }
  auto p = wire::decode_packet(datagram);
  if (!p) return std::unexpected(p.error());
  const wire::Header& h = p->header;
  if (h.type != expected) return fail(ErrorCode::kInvalidPacket, "unexpected discovery type");
  if (h.flags != flags_for(expected) || h.packet_number != 0 || h.connection_id != 0 ||
      h.window != 0 || h.sequence != 0 || h.ack != 0 || h.sack_bitmap != 0) {
    return fail(ErrorCode::kInvalidPacket, "discovery header field not zero");
  }
  std::uint8_t trailer = 0;
  for (std::uint8_t b : datagram.last(wire::kTagSize)) trailer |= b;
  if (trailer != 0) return fail(ErrorCode::kInvalidPacket, "discovery trailer not zero");
  return p;
}

}  // namespace buckwild::discovery

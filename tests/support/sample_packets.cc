#include "support/sample_packets.h"

#include <cstdlib>

namespace buckwild::testing {
namespace {

using namespace buckwild::wire;

template <std::size_t N>
std::array<std::uint8_t, N> pattern(std::uint8_t start) {
  std::array<std::uint8_t, N> a{};
  for (std::size_t i = 0; i < N; ++i) a[i] = static_cast<std::uint8_t>(start + i);
  return a;
}

const ConnectionParams kParams{.initial_window = 4'194'304,
                               .initial_cwnd = 14'600,
                               .time_offset_ms = -12,
                               .features = 0x0007,
                               .window_scale = 7};

constexpr std::uint8_t kPayload[] = "GET / HTTP/1.1\r\nHost: 10.77.0.2\r\n\r\n";
constexpr std::uint8_t kErrorText[] = "state invalid";

Body sample_body(PacketType t) {
  switch (t) {
    case PacketType::kData:
    case PacketType::kFragment:
    case PacketType::kDatagram:
      return PayloadBody{Bytes(kPayload, sizeof kPayload - 1)};
    case PacketType::kSyn: return SynBody{pattern<32>(0x10), kParams, std::nullopt};
    case PacketType::kSynAck:
      return SynAckBody{pattern<32>(0x20), Opening{pattern<32>(0x40), pattern<32>(0x60)}, kParams};
    case PacketType::kAck: {
      AckBody b;
      b.sack_count = 2;
      b.sack[0] = {1000, 2400};
      b.sack[1] = {0xFFFFFF00u, 0x00000100u};  // a block across the 32-bit wrap
      return b;
    }
    case PacketType::kFin: return FinBody{0xDEADBEEF};
    case PacketType::kHeartbeat:
      return HeartbeatBody{52'225'123, -7, 2,
                           DelayNegotiation{3, 40, 12, 10, 513, true}};
    case PacketType::kRecovery:
      return RecoveryBody{0x0123456789ABCDEFull, 77, 29'200, 1'048'576, 0x0A};
    case PacketType::kError:
      return ErrorBody{0x06, 0x010203, Bytes(kErrorText, sizeof kErrorText - 1)};
    case PacketType::kWindowUpdate: return WindowUpdateBody{8'388'608};
    case PacketType::kRst: return RstBody{0x0C};
    case PacketType::kDiscovery: {
      DiscoveryBody b;
      b.discovery_id = 0x1122334455667788ull;
      b.nonce = pattern<16>(0x01);
      b.ephemeral = pattern<32>(0x11);
      b.commitment = pattern<32>(0x31);
      b.features = 0x0003;
      for (std::size_t i = 0; i < b.tags.size(); ++i) b.tags[i] = pattern<kDiscoveryTagSize>(static_cast<std::uint8_t>(i));
      return b;
    }
    case PacketType::kDiscoveryResponse:
      return DiscoveryResponseBody{0x1122334455667788ull, pattern<16>(0x51), pattern<32>(0x61),
                                   pattern<32>(0x81), pattern<32>(0xA1), pattern<32>(0xC1),
                                   pattern<kDiscoveryTagSize>(0x07), 0x0019};
    case PacketType::kDiscoveryConfirm:
      return DiscoveryConfirmBody{0x1122334455667788ull, pattern<16>(0x01), pattern<16>(0x51),
                                  pattern<32>(0x11), pattern<32>(0xA1),
                                  Opening{pattern<32>(0x02), pattern<32>(0x22)},
                                  pattern<32>(0x42), pattern<32>(0x62), pattern<kDiscoveryTagSize>(0x07),
                                  52'225'000, 52'225'100, 0x001F};
    case PacketType::kTimeSyncRequest: return TimeSyncRequestBody{0xCAFEF00D, 1'000};
    case PacketType::kTimeSyncResponse: return TimeSyncResponseBody{0xCAFEF00D, 1'020, 1'007};
    case PacketType::kRekeyRequest: return RekeyRequestBody{0x01020304, pattern<32>(0x90)};
    case PacketType::kRekeyResponse:
      return RekeyResponseBody{0x01020304, pattern<32>(0xB0), pattern<16>(0xD0)};
    case PacketType::kRepairRequest: return RepairRequestBody{0x0A0B0C0D, 4'000'000'000u, 1'024};
    case PacketType::kRepairResponse:
      return RepairResponseBody{0x0A0B0C0D, 4'000'000'100u, 1'024, 0x8877665544332211ull};
    case PacketType::kEmergencyRequest: return EmergencyRequestBody{0x55AA55AA, pattern<32>(0x05)};
    case PacketType::kEmergencyResponse:
      return EmergencyResponseBody{0x55AA55AA, pattern<32>(0x05), pattern<16>(0xE0)};
    case PacketType::kSequenceNeg:
      return SequenceNegBody{NegotiationPhase::kReveal, pattern<32>(0x15),
                             Opening{pattern<32>(0x35), pattern<32>(0x55)}, pattern<16>(0x75)};
    case PacketType::kPathChallenge: return PathChallengeBody{pattern<16>(0x19)};
    case PacketType::kPathResponse: return PathResponseBody{pattern<16>(0x1A)};
    case PacketType::kPmtuProbe: return PmtuProbeBody{0x1B1B1B1B, 1472, 300};
    case PacketType::kPmtuAck: return PmtuAckBody{0x1C1C1C1C, 1400, 8972};
  }
  std::abort();
}

}  // namespace

std::vector<wire::PacketType> all_packet_types() {
  std::vector<PacketType> v;
  for (std::uint8_t t = kFirstPacketType; t <= kLastPacketType; ++t) v.push_back(PacketType(t));
  return v;
}

wire::Packet sample_packet(wire::PacketType t) {
  Packet p;
  Header& h = p.header;
  h.type = t;
  h.session_id = is_discovery_type(t) && t != PacketType::kDiscoveryConfirm ? 0 : 0x9F3C5A7E11223344ull;
  h.packet_number = 0x01000007;
  h.connection_id = 0x0123;
  h.window = 0x4000;
  h.sequence = 0xFFFFFFF0u;
  h.ack = 0x00000010u;
  h.timestamp_ms = 52'225'123;
  h.sack_bitmap = 0x80000001u;
  h.flags = flags::kAck;
  if (t == PacketType::kSyn) h.flags = flags::kSyn;
  if (t == PacketType::kSynAck) h.flags = flags::kSyn | flags::kAck;
  if (t == PacketType::kFin) h.flags = flags::kFin | flags::kAck;
  if (t == PacketType::kRst) h.flags = flags::kRst;
  if (t == PacketType::kData) h.flags = flags::kPsh | flags::kAck;
  if (t == PacketType::kFragment) {
    h.fragment_id = 0x0042;
    h.fragment_index = 2;
    h.fragment_total = 5;
  }
  p.body = sample_body(t);
  h.payload_length = static_cast<std::uint16_t>(body_size(p.body));
  return p;
}

std::vector<std::uint8_t> sample_datagram(wire::PacketType t) {
  Packet p = sample_packet(t);
  std::vector<std::uint8_t> out(kMaxDatagramSize);
  auto n = encode_packet(p.header, p.body, out);
  if (!n) std::abort();
  out.resize(*n);
  return out;
}

}  // namespace buckwild::testing

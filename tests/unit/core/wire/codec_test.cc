#include "core/wire/codec.h"

#include <gtest/gtest.h>

#include <vector>

#include "support/sample_packets.h"

namespace buckwild::wire {
namespace {

using testing::all_packet_types;
using testing::sample_datagram;
using testing::sample_packet;

std::vector<std::uint8_t> encode(const Header& h, const Body& b) {
  std::vector<std::uint8_t> out(kMaxDatagramSize);
  auto n = encode_packet(h, b, out);
  EXPECT_TRUE(n.has_value()) << packet_type_name(h.type);
  out.resize(n.value_or(0));
  return out;
}

ErrorCode header_error(const std::vector<std::uint8_t>& d) {
  auto h = parse_header(d);
  EXPECT_FALSE(h.has_value());
  return h ? ErrorCode::kSuccess : h.error().code;
}

TEST(CodecTest, EveryPacketTypeRoundTrips) {
  for (PacketType t : all_packet_types()) {
    SCOPED_TRACE(packet_type_name(t));
    Packet p = sample_packet(t);
    auto bytes = encode(p.header, p.body);
    ASSERT_EQ(bytes.size(), kOverhead + body_size(p.body));
    auto back = decode_packet(bytes);
    ASSERT_TRUE(back.has_value()) << back.error().what;
    EXPECT_EQ(back->header, p.header);
    EXPECT_EQ(back->body, p.body);
    // Re-encoding the parsed packet reproduces the same bytes.
    EXPECT_EQ(encode(back->header, back->body), bytes);
  }
}

TEST(CodecTest, HeaderLayoutIsBigEndianAtDocumentedOffsets) {
  Packet p = sample_packet(PacketType::kData);
  auto b = encode(p.header, p.body);
  EXPECT_EQ(b[0], 0x01);
  EXPECT_EQ(b[1], 0x04);
  EXPECT_EQ(b[2], flags::kPsh | flags::kAck);
  EXPECT_EQ(b[3], 0x00);
  EXPECT_EQ(b[4], 0x9F);   // session id
  EXPECT_EQ(b[11], 0x44);
  EXPECT_EQ(b[12], 0x01);  // packet number 0x01000007
  EXPECT_EQ(b[15], 0x07);
  EXPECT_EQ(b[16], 0x01);  // connection id 0x0123
  EXPECT_EQ(b[17], 0x23);
  EXPECT_EQ(b[18], 0x40);  // window 0x4000
  EXPECT_EQ(b[20], 0xFF);  // sequence 0xFFFFFFF0
  EXPECT_EQ(b[23], 0xF0);
  EXPECT_EQ(b[27], 0x10);  // ack 0x10
  EXPECT_EQ(b[28], 0x03);  // timestamp 52225123 = 0x031CE463
  EXPECT_EQ(b[31], 0x63);
  EXPECT_EQ(b[38] * 256 + b[39], p.header.payload_length);
  EXPECT_EQ(b[40], 0x80);  // SACK bitmap 0x80000001
  EXPECT_EQ(b[43], 0x01);
}

TEST(CodecTest, EveryTruncationIsRejected) {
  for (PacketType t : all_packet_types()) {
    SCOPED_TRACE(packet_type_name(t));
    auto d = sample_datagram(t);
    for (std::size_t n = 0; n < d.size(); ++n) {
      std::vector<std::uint8_t> cut(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(n));
      EXPECT_FALSE(decode_packet(cut).has_value()) << "length " << n;
    }
  }
}

TEST(CodecTest, ExtraTrailingBytesAreRejected) {
  auto d = sample_datagram(PacketType::kSyn);
  d.push_back(0);
  EXPECT_EQ(header_error(d), ErrorCode::kInvalidPacket);
}

TEST(CodecTest, HeaderFieldsAreValidated) {
  auto base = sample_datagram(PacketType::kAck);
  auto with = [&](std::size_t off, std::uint8_t v) {
    auto d = base;
    d[off] = v;
    return d;
  };
  EXPECT_EQ(header_error(with(0, 0x02)), ErrorCode::kInvalidPacket);  // version
  EXPECT_EQ(header_error(with(0, 0x00)), ErrorCode::kInvalidPacket);
  EXPECT_EQ(header_error(with(1, 0x00)), ErrorCode::kInvalidPacket);  // type
  EXPECT_EQ(header_error(with(1, 0x1D)), ErrorCode::kInvalidPacket);
  EXPECT_EQ(header_error(with(1, 0xFF)), ErrorCode::kInvalidPacket);
  EXPECT_EQ(header_error(with(2, flags::kAck | 0x80)), ErrorCode::kInvalidPacket);  // reserved flag
  EXPECT_EQ(header_error(with(3, 0x01)), ErrorCode::kInvalidPacket);  // reserved byte
  EXPECT_EQ(header_error(with(16, 0x10)), ErrorCode::kInvalidPacket);  // connection id 0x1023 > 4095
  EXPECT_EQ(header_error(with(28, 0x06)), ErrorCode::kTimestampInvalid);  // 0x06…… ≥ one day
  EXPECT_EQ(header_error(with(33, 0x01)), ErrorCode::kFragmentInvalid);  // fragment id on ACK
  EXPECT_EQ(header_error(with(39, static_cast<std::uint8_t>(base[39] + 1))), ErrorCode::kInvalidPacket);
  // A session packet with session id 0.
  auto zero_sid = base;
  std::fill(zero_sid.begin() + 4, zero_sid.begin() + 12, 0);
  EXPECT_EQ(header_error(zero_sid), ErrorCode::kInvalidPacket);
  // A DISCOVERY with a session id.
  auto disc = sample_datagram(PacketType::kDiscovery);
  disc[11] = 1;
  EXPECT_EQ(header_error(disc), ErrorCode::kInvalidPacket);
}

TEST(CodecTest, FragmentFieldsAreValidated) {
  auto base = sample_datagram(PacketType::kFragment);  // index 2 of 5
  auto with_frag = [&](std::uint16_t index, std::uint16_t total) {
    auto d = base;
    d[34] = static_cast<std::uint8_t>(index >> 8);
    d[35] = static_cast<std::uint8_t>(index);
    d[36] = static_cast<std::uint8_t>(total >> 8);
    d[37] = static_cast<std::uint8_t>(total);
    return d;
  };
  EXPECT_TRUE(parse_header(with_frag(0, 2)).has_value());
  EXPECT_TRUE(parse_header(with_frag(254, 255)).has_value());
  EXPECT_EQ(header_error(with_frag(5, 5)), ErrorCode::kFragmentInvalid);
  EXPECT_EQ(header_error(with_frag(0, 1)), ErrorCode::kFragmentInvalid);
  EXPECT_EQ(header_error(with_frag(0, 256)), ErrorCode::kFragmentInvalid);
}

// Mutates one body byte of a sample packet and expects the body parser to refuse it.
void expect_body_rejected(PacketType t, std::size_t body_offset, std::uint8_t value) {
  auto d = sample_datagram(t);
  d[kHeaderSize + body_offset] = value;
  auto p = decode_packet(d);
  ASSERT_FALSE(p.has_value()) << packet_type_name(t) << " offset " << body_offset;
  EXPECT_EQ(p.error().code, ErrorCode::kInvalidPacket);
}

TEST(CodecTest, APmtuProbeIsPaddedToTheSizeItProbes) {
  Header h;
  h.type = PacketType::kPmtuProbe;
  h.session_id = 1;
  std::vector<std::uint8_t> out(1400);
  auto n = encode_packet(h, PmtuProbeBody{7, 1472, 1400 - kOverhead - kPmtuProbeBodyMinSize}, out);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, 1400u);
  auto p = decode_packet(out);
  ASSERT_TRUE(p.has_value());
  const auto& b = std::get<PmtuProbeBody>(p->body);
  EXPECT_EQ(b.probe_id, 7u);
  EXPECT_EQ(b.max_datagram, 1472);
  // Shorter than its fixed part: refused.
  h.payload_length = 4;
  EXPECT_FALSE(parse_body(h, Bytes(out).subspan(kHeaderSize, 4)).has_value());
}

TEST(CodecTest, BodyFieldsAreValidated) {
  expect_body_rejected(PacketType::kSyn, 32 + 14, 15);        // window scale > 14
  expect_body_rejected(PacketType::kSyn, 32 + 15, 1);         // reserved
  expect_body_rejected(PacketType::kSynAck, 96 + 14, 200);    // window scale
  expect_body_rejected(PacketType::kAck, 0, 3);               // SACK count vs length
  expect_body_rejected(PacketType::kAck, 1, 1);               // reserved
  expect_body_rejected(PacketType::kHeartbeat, 7, 1);         // reserved
  expect_body_rejected(PacketType::kHeartbeat, 15, 0);        // delay windows 0
  expect_body_rejected(PacketType::kHeartbeat, 15, 17);       // delay windows 17
  expect_body_rejected(PacketType::kHeartbeat, 8, 0x80);      // reserved delay bits
  expect_body_rejected(PacketType::kRecovery, 20, 0x1B);      // reason out of range
  expect_body_rejected(PacketType::kRecovery, 21, 1);         // reserved
  expect_body_rejected(PacketType::kError, 0, 0x1B);          // error code
  expect_body_rejected(PacketType::kRst, 0, 0x1B);            // reason
  expect_body_rejected(PacketType::kRst, 3, 1);               // reserved
  expect_body_rejected(PacketType::kDiscovery, 91, 0);        // slot count ≠ 64
  expect_body_rejected(PacketType::kDiscoveryResponse, 170, 1);  // reserved
  expect_body_rejected(PacketType::kDiscoveryConfirm, 258, 1);  // reserved
  expect_body_rejected(PacketType::kDiscoveryConfirm, 248, 0xFF);  // echoed timestamp ≥ one day
  expect_body_rejected(PacketType::kTimeSyncRequest, 8, 1);   // reserved
  expect_body_rejected(PacketType::kTimeSyncResponse, 15, 1); // reserved
  expect_body_rejected(PacketType::kPmtuProbe, 6, 1);         // reserved
  expect_body_rejected(PacketType::kPmtuProbe, 8, 1);         // padding not zero
  expect_body_rejected(PacketType::kPmtuProbe, 307, 0x80);    // ... nor its last byte
  expect_body_rejected(PacketType::kRekeyRequest, 36, 1);     // reserved
  expect_body_rejected(PacketType::kRepairRequest, 19, 1);    // reserved
  expect_body_rejected(PacketType::kEmergencyRequest, 43, 1); // reserved
  expect_body_rejected(PacketType::kSequenceNeg, 0, 0);       // phase
  expect_body_rejected(PacketType::kSequenceNeg, 0, 4);
  expect_body_rejected(PacketType::kSequenceNeg, 2, 1);       // reserved
}

TEST(CodecTest, AckOpeningFollowsTheSynFlag) {
  Packet p = sample_packet(PacketType::kAck);
  auto& ack = std::get<AckBody>(p.body);
  ack.has_opening = true;
  ack.opening.value.fill(0xAB);
  std::vector<std::uint8_t> out(kMaxDatagramSize);
  EXPECT_FALSE(encode_packet(p.header, p.body, out).has_value());  // no SYN flag
  p.header.flags |= flags::kSyn;
  auto bytes = encode(p.header, p.body);
  auto back = decode_packet(bytes);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(std::get<AckBody>(back->body), ack);
}

TEST(CodecTest, SackBlocksMustBeNonEmpty) {
  Packet p = sample_packet(PacketType::kAck);
  std::get<AckBody>(p.body).sack[0] = {5, 5};
  std::vector<std::uint8_t> out(kMaxDatagramSize);
  EXPECT_FALSE(encode_packet(p.header, p.body, out).has_value());
  auto d = sample_datagram(PacketType::kAck);
  d[kHeaderSize + 8 + 3] = d[kHeaderSize + 4 + 3];  // end := start in block 0
  d[kHeaderSize + 8 + 2] = d[kHeaderSize + 4 + 2];
  EXPECT_FALSE(decode_packet(d).has_value());
}

TEST(CodecTest, EncoderRefusesMismatchedOrOutOfRangeBodies) {
  std::vector<std::uint8_t> out(kMaxDatagramSize);
  Packet p = sample_packet(PacketType::kSyn);
  p.header.type = PacketType::kFin;
  EXPECT_EQ(encode_packet(p.header, p.body, out).error().code, ErrorCode::kInvalidParameter);

  Packet e = sample_packet(PacketType::kError);
  std::get<ErrorBody>(e.body).code = 0x1B;
  EXPECT_FALSE(encode_packet(e.header, e.body, out).has_value());

  Packet s = sample_packet(PacketType::kData);
  std::vector<std::uint8_t> huge(kMaxBodySize + 1, 0x41);
  s.body = PayloadBody{huge};
  EXPECT_FALSE(encode_packet(s.header, s.body, out).has_value());

  Packet small = sample_packet(PacketType::kData);
  std::vector<std::uint8_t> tiny(10);
  EXPECT_FALSE(encode_packet(small.header, small.body, tiny).has_value());
}

TEST(CodecTest, SynCarriesAStreamTargetWhenPresent) {
  for (std::uint8_t family : {std::uint8_t{4}, std::uint8_t{6}}) {
    SCOPED_TRACE(int{family});
    Packet p = sample_packet(PacketType::kSyn);
    StreamTarget t;
    t.family = family;
    const std::size_t len = family == 4 ? 4 : 16;
    for (std::size_t i = 0; i < len; ++i) {
      t.source[i] = static_cast<std::uint8_t>(10 + i);
      t.destination[i] = static_cast<std::uint8_t>(200 - i);
    }
    t.source_port = 40000;
    t.destination_port = 80;
    std::get<SynBody>(p.body).target = t;
    auto bytes = encode(p.header, p.body);
    ASSERT_EQ(bytes.size(), kOverhead + kSynBodySize + kStreamTargetSize);
    auto back = decode_packet(bytes);
    ASSERT_TRUE(back.has_value()) << back.error().what;
    EXPECT_EQ(back->body, p.body);
    // Family, reserved bytes and the unused tail of an IPv4 address are checked.
    for (std::size_t off : {std::size_t{0}, std::size_t{1}, family == 4 ? std::size_t{4 + 4} : std::size_t{0}}) {
      auto bad = bytes;
      bad[kHeaderSize + kSynBodySize + off] ^= 0x40;
      EXPECT_FALSE(decode_packet(bad).has_value()) << "offset " << off;
    }
  }
  // A port of zero is not a target.
  Packet p = sample_packet(PacketType::kSyn);
  std::get<SynBody>(p.body).target = StreamTarget{};
  std::vector<std::uint8_t> out(kMaxDatagramSize);
  EXPECT_FALSE(encode_packet(p.header, p.body, out).has_value());
}

TEST(CodecTest, EmptyPayloadIsRejected) {
  Packet p = sample_packet(PacketType::kData);
  p.body = PayloadBody{};
  auto bytes = encode(p.header, p.body);
  EXPECT_FALSE(decode_packet(bytes).has_value());
}

TEST(CodecTest, DiscoveryMessagesFitTheIpv6MinimumMtu) {
  for (PacketType t : {PacketType::kDiscovery, PacketType::kDiscoveryResponse,
                       PacketType::kDiscoveryConfirm}) {
    EXPECT_LE(sample_datagram(t).size(), kMaxDiscoveryDatagram) << packet_type_name(t);
  }
}

}  // namespace
}  // namespace buckwild::wire

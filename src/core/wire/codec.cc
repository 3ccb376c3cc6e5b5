#include "core/wire/codec.h"

#include <type_traits>

namespace buckwild::wire {
namespace {

// ---- field groups shared by several bodies ----

void put(ByteWriter& w, const Bytes32& b) { w.bytes(b); }
void put(ByteWriter& w, const Bytes16& b) { w.bytes(b); }
void put(ByteWriter& w, const Opening& o) {
  w.bytes(o.value);
  w.bytes(o.blind);
}
void get(ByteReader& r, Opening& o) {
  r.copy(o.value);
  r.copy(o.blind);
}

void put(ByteWriter& w, const ConnectionParams& p) {
  w.u32(p.initial_window);
  w.u32(p.initial_cwnd);
  w.u32(static_cast<std::uint32_t>(p.time_offset_ms));
  w.u16(p.features);
  w.u8(p.window_scale);
  w.u8(0);
}
bool get(ByteReader& r, ConnectionParams& p) {
  p.initial_window = r.u32();
  p.initial_cwnd = r.u32();
  p.time_offset_ms = static_cast<std::int32_t>(r.u32());
  p.features = r.u16();
  p.window_scale = r.u8();
  return r.u8() == 0 && p.window_scale <= kMaxWindowScale;
}

bool zeros(ByteReader& r, std::size_t n) {
  std::uint8_t acc = 0;
  for (std::uint8_t b : r.bytes(n)) acc |= b;
  return r.ok() && acc == 0;
}

std::uint64_t pack_delay(const DelayNegotiation& d) {
  return std::uint64_t{d.delay_windows} | (std::uint64_t{d.jitter_ms} & 0xFFF) << 8 |
         (std::uint64_t{d.loss_permille} & 0x3FF) << 20 | std::uint64_t{d.sample_count} << 30 |
         (std::uint64_t{d.negotiation_seq} & 0x3FF) << 38 |
         std::uint64_t{d.adaptation_enabled ? 1u : 0u} << 48;
}
bool unpack_delay(std::uint64_t v, DelayNegotiation& d) {
  d.delay_windows = static_cast<std::uint8_t>(v & 0xFF);
  d.jitter_ms = static_cast<std::uint16_t>((v >> 8) & 0xFFF);
  d.loss_permille = static_cast<std::uint16_t>((v >> 20) & 0x3FF);
  d.sample_count = static_cast<std::uint8_t>((v >> 30) & 0xFF);
  d.negotiation_seq = static_cast<std::uint16_t>((v >> 38) & 0x3FF);
  d.adaptation_enabled = ((v >> 48) & 1) != 0;
  return (v >> 49) == 0 && d.delay_windows >= kDelayAllowanceMin &&
         d.delay_windows <= kDelayAllowanceMax && d.loss_permille <= 1000;
}
bool delay_valid(const DelayNegotiation& d) {
  return d.delay_windows >= kDelayAllowanceMin && d.delay_windows <= kDelayAllowanceMax &&
         d.jitter_ms <= 0xFFF && d.loss_permille <= 1000 && d.negotiation_seq <= 0x3FF;
}

// A SACK block must cover at least one and less than 2^31 sequence numbers.
bool sack_valid(const SackBlock& b) {
  std::uint32_t len = b.end - b.start;
  return len != 0 && len < 0x80000000u;
}

// ---- encode: one overload per body; returns false if a value is out of range ----

bool encode(ByteWriter& w, const PayloadBody& b) {
  w.bytes(b.bytes);
  return true;
}
bool target_valid(const StreamTarget& t) {
  if (t.family != 4 && t.family != 6) return false;
  if (t.family == 4) {
    for (std::size_t i = 4; i < 16; ++i) {
      if (t.source[i] != 0 || t.destination[i] != 0) return false;
    }
  }
  return t.destination_port != 0 && t.source_port != 0;
}
bool encode(ByteWriter& w, const SynBody& b) {
  put(w, b.commitment);
  put(w, b.params);
  if (b.target) {
    w.u8(b.target->family);
    w.zeros(3);
    w.bytes(b.target->source);
    w.bytes(b.target->destination);
    w.u16(b.target->source_port);
    w.u16(b.target->destination_port);
    if (!target_valid(*b.target)) return false;
  }
  return b.params.window_scale <= kMaxWindowScale;
}
bool encode(ByteWriter& w, const SynAckBody& b) {
  put(w, b.commitment);
  put(w, b.opening);
  put(w, b.params);
  return b.params.window_scale <= kMaxWindowScale;
}
bool encode(ByteWriter& w, const AckBody& b) {
  if (b.sack_count > kMaxSackBlocks) return false;
  if (b.has_opening) put(w, b.opening);
  w.u8(b.sack_count);
  w.zeros(3);
  for (std::size_t i = 0; i < b.sack_count; ++i) {
    if (!sack_valid(b.sack[i])) return false;
    w.u32(b.sack[i].start);
    w.u32(b.sack[i].end);
  }
  return true;
}
bool encode(ByteWriter& w, const FinBody& b) {
  w.u32(b.final_sequence);
  return true;
}
bool encode(ByteWriter& w, const HeartbeatBody& b) {
  w.u32(b.current_time_ms);
  w.u16(static_cast<std::uint16_t>(b.time_drift_ms));
  w.u8(b.sync_state);
  w.u8(0);
  w.u64(pack_delay(b.delay));
  return b.current_time_ms < kMsPerDay && delay_valid(b.delay);
}
bool encode(ByteWriter& w, const RecoveryBody& b) {
  w.u64(b.recovery_session_id);
  w.u32(b.last_known_sequence);
  w.u32(b.congestion_window);
  w.u32(b.send_window);
  w.u8(b.reason);
  w.zeros(3);
  return b.reason <= kMaxErrorCode;
}
bool encode(ByteWriter& w, const ErrorBody& b) {
  w.u8(b.code);
  w.u8(static_cast<std::uint8_t>(b.details >> 16));
  w.u16(static_cast<std::uint16_t>(b.details));
  w.bytes(b.message);
  return b.code <= kMaxErrorCode && b.details <= 0xFFFFFF && b.message.size() <= kMaxErrorMessage;
}
bool encode(ByteWriter& w, const WindowUpdateBody& b) {
  w.u32(b.window);
  return true;
}
bool encode(ByteWriter& w, const RstBody& b) {
  w.u8(b.reason);
  w.zeros(3);
  return b.reason <= kMaxErrorCode;
}
bool encode(ByteWriter& w, const DiscoveryBody& b) {
  w.u64(b.discovery_id);
  put(w, b.nonce);
  put(w, b.ephemeral);
  put(w, b.commitment);
  w.u16(b.features);
  w.u16(static_cast<std::uint16_t>(kDiscoverySlots));
  for (const auto& tag : b.tags) w.bytes(tag);
  return true;
}
bool encode(ByteWriter& w, const DiscoveryResponseBody& b) {
  w.u64(b.discovery_id);
  put(w, b.nonce);
  put(w, b.ephemeral);
  put(w, b.contribution);
  put(w, b.cookie);
  put(w, b.proof);
  w.bytes(b.matched_tag);
  w.u16(b.features);
  w.u16(0);
  return true;
}
bool encode(ByteWriter& w, const DiscoveryConfirmBody& b) {
  w.u64(b.discovery_id);
  put(w, b.initiator_nonce);
  put(w, b.responder_nonce);
  put(w, b.initiator_ephemeral);
  put(w, b.cookie);
  put(w, b.opening);
  put(w, b.selection_commitment);
  put(w, b.proof);
  w.bytes(b.matched_tag);
  w.u32(b.discovery_timestamp_ms);
  w.u32(b.response_timestamp_ms);
  w.u16(b.features);
  w.u16(0);
  return b.discovery_timestamp_ms < kMsPerDay && b.response_timestamp_ms < kMsPerDay;
}
bool encode(ByteWriter& w, const TimeSyncRequestBody& b) {
  w.u32(b.challenge);
  w.u32(b.local_timestamp_ms);
  w.u64(0);
  return b.local_timestamp_ms < kMsPerDay;
}
bool encode(ByteWriter& w, const TimeSyncResponseBody& b) {
  w.u32(b.challenge);
  w.u32(b.local_timestamp_ms);
  w.u32(b.peer_timestamp_ms);
  w.u32(0);
  return b.local_timestamp_ms < kMsPerDay && b.peer_timestamp_ms < kMsPerDay;
}
bool encode(ByteWriter& w, const PathChallengeBody& b) {
  put(w, b.data);
  return true;
}
bool encode(ByteWriter& w, const PathResponseBody& b) {
  put(w, b.data);
  return true;
}
bool encode(ByteWriter& w, const PmtuProbeBody& b) {
  w.u32(b.probe_id);
  w.u16(b.max_datagram);
  w.u16(0);
  w.zeros(b.padding);
  return true;
}
bool encode(ByteWriter& w, const PmtuAckBody& b) {
  w.u32(b.probe_id);
  w.u16(b.probe_size);
  w.u16(b.max_datagram);
  return true;
}
bool encode(ByteWriter& w, const RekeyRequestBody& b) {
  w.u32(b.nonce);
  put(w, b.ephemeral);
  w.u64(0);
  return true;
}
bool encode(ByteWriter& w, const RekeyResponseBody& b) {
  w.u32(b.nonce);
  put(w, b.ephemeral);
  put(w, b.confirmation);
  return true;
}
bool encode(ByteWriter& w, const RepairRequestBody& b) {
  w.u32(b.nonce);
  w.u32(b.last_known_sequence);
  w.u32(b.repair_window);
  w.u64(0);
  return true;
}
bool encode(ByteWriter& w, const RepairResponseBody& b) {
  w.u32(b.nonce);
  w.u32(b.current_sequence);
  w.u32(b.repair_window);
  w.u64(b.confirmation);
  return true;
}
bool encode(ByteWriter& w, const EmergencyRequestBody& b) {
  w.u32(b.token);
  put(w, b.data);
  w.u64(0);
  return true;
}
bool encode(ByteWriter& w, const EmergencyResponseBody& b) {
  w.u32(b.token);
  put(w, b.data);
  put(w, b.confirmation);
  return true;
}
bool encode(ByteWriter& w, const SequenceNegBody& b) {
  w.u8(static_cast<std::uint8_t>(b.phase));
  w.zeros(3);
  put(w, b.commitment);
  put(w, b.opening);
  put(w, b.challenge);
  auto p = static_cast<std::uint8_t>(b.phase);
  return p >= 1 && p <= 3;
}

// ---- decode: the reader holds exactly the body ----

template <typename T>
Result<Body> fixed(ByteReader& r, std::size_t size, T&& body, bool fields_ok) {
  if (!r.done() || r.position() != size) return fail(ErrorCode::kInvalidPacket, "body size");
  if (!fields_ok) return fail(ErrorCode::kInvalidPacket, "body field out of range");
  return Body{std::forward<T>(body)};
}

Result<Body> decode_ack(const Header& h, ByteReader& r) {
  AckBody b;
  b.has_opening = (h.flags & flags::kSyn) != 0;
  if (b.has_opening) get(r, b.opening);
  b.sack_count = r.u8();
  bool ok = zeros(r, 3) && b.sack_count <= kMaxSackBlocks &&
            r.remaining() == std::size_t{b.sack_count} * 8;
  if (!r.ok() || !ok) return fail(ErrorCode::kInvalidPacket, "ACK SACK section");
  for (std::size_t i = 0; i < b.sack_count; ++i) {
    b.sack[i].start = r.u32();
    b.sack[i].end = r.u32();
    if (!sack_valid(b.sack[i])) return fail(ErrorCode::kInvalidPacket, "ACK SACK block");
  }
  return Body{b};
}

Result<Body> decode_error(ByteReader& r) {
  ErrorBody b;
  b.code = r.u8();
  b.details = std::uint32_t{r.u8()} << 16;
  b.details |= r.u16();
  b.message = r.rest();
  if (!r.ok()) return fail(ErrorCode::kInvalidPacket, "ERROR size");
  if (b.code > kMaxErrorCode) return fail(ErrorCode::kInvalidPacket, "ERROR code");
  if (b.message.size() > kMaxErrorMessage) return fail(ErrorCode::kInvalidPacket, "ERROR message");
  return Body{b};
}

Result<Body> decode_discovery(ByteReader& r) {
  DiscoveryBody b;
  b.discovery_id = r.u64();
  r.copy(b.nonce);
  r.copy(b.ephemeral);
  r.copy(b.commitment);
  b.features = r.u16();
  bool ok = r.u16() == kDiscoverySlots;
  for (auto& tag : b.tags) r.copy(tag);
  return fixed(r, kDiscoveryBodySize, b, ok);
}

}  // namespace

Result<Header> parse_header(Bytes datagram) {
  if (datagram.size() < kOverhead) return fail(ErrorCode::kInvalidPacket, "datagram too short");
  if (datagram.size() > kMaxDatagramSize) return fail(ErrorCode::kInvalidPacket, "datagram too long");
  ByteReader r(datagram.first(kHeaderSize));
  Header h;
  h.version = r.u8();
  std::uint8_t type = r.u8();
  h.flags = r.u8();
  std::uint8_t reserved = r.u8();
  h.session_id = r.u64();
  h.packet_number = r.u32();
  h.connection_id = r.u16();
  h.window = r.u16();
  h.sequence = r.u32();
  h.ack = r.u32();
  h.timestamp_ms = r.u32();
  h.fragment_id = r.u16();
  h.fragment_index = r.u16();
  h.fragment_total = r.u16();
  h.payload_length = r.u16();
  h.sack_bitmap = r.u32();

  if (h.version != kVersion) return fail(ErrorCode::kInvalidPacket, "version");
  if (!is_known_type(type)) return fail(ErrorCode::kInvalidPacket, "packet type");
  h.type = static_cast<PacketType>(type);
  if (reserved != 0) return fail(ErrorCode::kInvalidPacket, "reserved header byte");
  if ((h.flags & flags::kReservedMask) != 0) return fail(ErrorCode::kInvalidPacket, "reserved flag bits");
  if (std::size_t{h.payload_length} != datagram.size() - kOverhead) {
    return fail(ErrorCode::kInvalidPacket, "payload length");
  }
  if (h.connection_id > kMaxConnectionId) return fail(ErrorCode::kInvalidPacket, "connection id");
  if (h.timestamp_ms >= kMsPerDay) return fail(ErrorCode::kTimestampInvalid, "timestamp");
  bool anonymous = h.type == PacketType::kDiscovery || h.type == PacketType::kDiscoveryResponse;
  if ((h.session_id == 0) != anonymous) return fail(ErrorCode::kInvalidPacket, "session id");
  if (h.type == PacketType::kFragment) {
    if (h.fragment_total < 2 || h.fragment_total > kMaxFragments ||
        h.fragment_index >= h.fragment_total) {
      return fail(ErrorCode::kFragmentInvalid, "fragment index/total");
    }
  } else if (h.fragment_id != 0 || h.fragment_index != 0 || h.fragment_total != 0) {
    return fail(ErrorCode::kFragmentInvalid, "fragment fields on a non-FRAGMENT packet");
  }
  return h;
}

void write_header(const Header& h, MutableBytes out) {
  ByteWriter w(out.first(kHeaderSize));
  w.u8(h.version);
  w.u8(static_cast<std::uint8_t>(h.type));
  w.u8(h.flags);
  w.u8(0);
  w.u64(h.session_id);
  w.u32(h.packet_number);
  w.u16(h.connection_id);
  w.u16(h.window);
  w.u32(h.sequence);
  w.u32(h.ack);
  w.u32(h.timestamp_ms);
  w.u16(h.fragment_id);
  w.u16(h.fragment_index);
  w.u16(h.fragment_total);
  w.u16(h.payload_length);
  w.u32(h.sack_bitmap);
}

Result<Body> parse_body(const Header& h, Bytes body) {
  ByteReader r(body);
  switch (h.type) {
    case PacketType::kData:
    case PacketType::kFragment:
    case PacketType::kDatagram:
      if (body.empty()) return fail(ErrorCode::kInvalidPacket, "empty payload");
      return Body{PayloadBody{body}};
    case PacketType::kSyn: {
      SynBody b;
      r.copy(b.commitment);
      bool ok = get(r, b.params);
      if (r.remaining() == kStreamTargetSize) {
        StreamTarget t;
        t.family = r.u8();
        ok = zeros(r, 3) && ok;
        r.copy(t.source);
        r.copy(t.destination);
        t.source_port = r.u16();
        t.destination_port = r.u16();
        ok = ok && target_valid(t);
        b.target = t;
        return fixed(r, kSynBodySize + kStreamTargetSize, b, ok);
      }
      return fixed(r, kSynBodySize, b, ok);
    }
    case PacketType::kSynAck: {
      SynAckBody b;
      r.copy(b.commitment);
      get(r, b.opening);
      bool ok = get(r, b.params);
      return fixed(r, kSynAckBodySize, b, ok);
    }
    case PacketType::kAck:
      return decode_ack(h, r);
    case PacketType::kFin: {
      FinBody b{r.u32()};
      return fixed(r, kFinBodySize, b, true);
    }
    case PacketType::kHeartbeat: {
      HeartbeatBody b;
      b.current_time_ms = r.u32();
      b.time_drift_ms = static_cast<std::int16_t>(r.u16());
      b.sync_state = r.u8();
      bool ok = r.u8() == 0;
      ok = unpack_delay(r.u64(), b.delay) && ok && b.current_time_ms < kMsPerDay;
      return fixed(r, kHeartbeatBodySize, b, ok);
    }
    case PacketType::kRecovery: {
      RecoveryBody b;
      b.recovery_session_id = r.u64();
      b.last_known_sequence = r.u32();
      b.congestion_window = r.u32();
      b.send_window = r.u32();
      b.reason = r.u8();
      bool ok = zeros(r, 3) && b.reason <= kMaxErrorCode;
      return fixed(r, kRecoveryBodySize, b, ok);
    }
    case PacketType::kError:
      return decode_error(r);
    case PacketType::kWindowUpdate: {
      WindowUpdateBody b{r.u32()};
      return fixed(r, kWindowUpdateBodySize, b, true);
    }
    case PacketType::kRst: {
      RstBody b{r.u8()};
      bool ok = zeros(r, 3) && b.reason <= kMaxErrorCode;
      return fixed(r, kRstBodySize, b, ok);
    }
    case PacketType::kDiscovery:
      return decode_discovery(r);
    case PacketType::kDiscoveryResponse: {
      DiscoveryResponseBody b;
      b.discovery_id = r.u64();
      r.copy(b.nonce);
      r.copy(b.ephemeral);
      r.copy(b.contribution);
      r.copy(b.cookie);
      r.copy(b.proof);
      r.copy(b.matched_tag);
      b.features = r.u16();
      bool ok = r.u16() == 0;
      return fixed(r, kDiscoveryResponseBodySize, b, ok);
    }
    case PacketType::kDiscoveryConfirm: {
      DiscoveryConfirmBody b;
      b.discovery_id = r.u64();
      r.copy(b.initiator_nonce);
      r.copy(b.responder_nonce);
      r.copy(b.initiator_ephemeral);
      r.copy(b.cookie);
      get(r, b.opening);
      r.copy(b.selection_commitment);
      r.copy(b.proof);
      r.copy(b.matched_tag);
      b.discovery_timestamp_ms = r.u32();
      b.response_timestamp_ms = r.u32();
      b.features = r.u16();
      bool ok = r.u16() == 0 && b.discovery_timestamp_ms < kMsPerDay &&
                b.response_timestamp_ms < kMsPerDay;
      return fixed(r, kDiscoveryConfirmBodySize, b, ok);
    }
    case PacketType::kTimeSyncRequest: {
      TimeSyncRequestBody b;
      b.challenge = r.u32();
      b.local_timestamp_ms = r.u32();
      bool ok = zeros(r, 8) && b.local_timestamp_ms < kMsPerDay;
      return fixed(r, kTimeSyncRequestBodySize, b, ok);
    }
    case PacketType::kTimeSyncResponse: {
      TimeSyncResponseBody b;
      b.challenge = r.u32();
      b.local_timestamp_ms = r.u32();
      b.peer_timestamp_ms = r.u32();
      bool ok = zeros(r, 4) && b.local_timestamp_ms < kMsPerDay && b.peer_timestamp_ms < kMsPerDay;
      return fixed(r, kTimeSyncResponseBodySize, b, ok);
    }
    case PacketType::kRekeyRequest: {
      RekeyRequestBody b;
      b.nonce = r.u32();
      r.copy(b.ephemeral);
      bool ok = zeros(r, 8);
      return fixed(r, kRekeyRequestBodySize, b, ok);
    }
    case PacketType::kRekeyResponse: {
      RekeyResponseBody b;
      b.nonce = r.u32();
      r.copy(b.ephemeral);
      r.copy(b.confirmation);
      return fixed(r, kRekeyResponseBodySize, b, true);
    }
    case PacketType::kRepairRequest: {
      RepairRequestBody b;
      b.nonce = r.u32();
      b.last_known_sequence = r.u32();
      b.repair_window = r.u32();
      bool ok = zeros(r, 8);
      return fixed(r, kRepairRequestBodySize, b, ok);
    }
    case PacketType::kRepairResponse: {
      RepairResponseBody b;
      b.nonce = r.u32();
      b.current_sequence = r.u32();
      b.repair_window = r.u32();
      b.confirmation = r.u64();
      return fixed(r, kRepairResponseBodySize, b, true);
    }
    case PacketType::kEmergencyRequest: {
      EmergencyRequestBody b;
      b.token = r.u32();
      r.copy(b.data);
      bool ok = zeros(r, 8);
      return fixed(r, kEmergencyRequestBodySize, b, ok);
    }
    case PacketType::kEmergencyResponse: {
      EmergencyResponseBody b;
      b.token = r.u32();
      r.copy(b.data);
      r.copy(b.confirmation);
      return fixed(r, kEmergencyResponseBodySize, b, true);
    }
    case PacketType::kSequenceNeg: {
      SequenceNegBody b;
      std::uint8_t phase = r.u8();
      bool ok = zeros(r, 3) && phase >= 1 && phase <= 3;
      b.phase = static_cast<NegotiationPhase>(phase);
      r.copy(b.commitment);
      get(r, b.opening);
      r.copy(b.challenge);
      return fixed(r, kSequenceNegBodySize, b, ok);
    }
    case PacketType::kPathChallenge: {
      PathChallengeBody b;
      r.copy(b.data);
      return fixed(r, kPathChallengeBodySize, b, true);
    }
    case PacketType::kPathResponse: {
      PathResponseBody b;
      r.copy(b.data);
      return fixed(r, kPathResponseBodySize, b, true);
    }
    case PacketType::kPmtuProbe: {
      // Any size from the fixed part up; the padding is zero bytes.
      if (body.size() < kPmtuProbeBodyMinSize) return fail(ErrorCode::kInvalidPacket, "body length");
      PmtuProbeBody b;
      b.probe_id = r.u32();
      b.max_datagram = r.u16();
      bool ok = r.u16() == 0;
      b.padding = static_cast<std::uint16_t>(body.size() - kPmtuProbeBodyMinSize);
      ok = zeros(r, b.padding) && ok;
      return fixed(r, kPmtuProbeBodyMinSize + b.padding, b, ok);
    }
    case PacketType::kPmtuAck: {
      PmtuAckBody b;
      b.probe_id = r.u32();
      b.probe_size = r.u16();
      b.max_datagram = r.u16();
      return fixed(r, kPmtuAckBodySize, b, true);
    }
  }
  return fail(ErrorCode::kInvalidPacket, "packet type");
}

namespace {

// Which body alternative each packet type carries.
bool body_matches(PacketType t, const Body& b) {
  switch (t) {
    case PacketType::kData:
    case PacketType::kFragment:
    case PacketType::kDatagram: return std::holds_alternative<PayloadBody>(b);
    case PacketType::kSyn: return std::holds_alternative<SynBody>(b);
    case PacketType::kSynAck: return std::holds_alternative<SynAckBody>(b);
    case PacketType::kAck: return std::holds_alternative<AckBody>(b);
    case PacketType::kFin: return std::holds_alternative<FinBody>(b);
    case PacketType::kHeartbeat: return std::holds_alternative<HeartbeatBody>(b);
    case PacketType::kRecovery: return std::holds_alternative<RecoveryBody>(b);
    case PacketType::kError: return std::holds_alternative<ErrorBody>(b);
    case PacketType::kWindowUpdate: return std::holds_alternative<WindowUpdateBody>(b);
    case PacketType::kRst: return std::holds_alternative<RstBody>(b);
    case PacketType::kDiscovery: return std::holds_alternative<DiscoveryBody>(b);
    case PacketType::kDiscoveryResponse: return std::holds_alternative<DiscoveryResponseBody>(b);
    case PacketType::kDiscoveryConfirm: return std::holds_alternative<DiscoveryConfirmBody>(b);
    case PacketType::kTimeSyncRequest: return std::holds_alternative<TimeSyncRequestBody>(b);
    case PacketType::kTimeSyncResponse: return std::holds_alternative<TimeSyncResponseBody>(b);
    case PacketType::kRekeyRequest: return std::holds_alternative<RekeyRequestBody>(b);
    case PacketType::kRekeyResponse: return std::holds_alternative<RekeyResponseBody>(b);
    case PacketType::kRepairRequest: return std::holds_alternative<RepairRequestBody>(b);
    case PacketType::kRepairResponse: return std::holds_alternative<RepairResponseBody>(b);
    case PacketType::kEmergencyRequest: return std::holds_alternative<EmergencyRequestBody>(b);
    case PacketType::kEmergencyResponse: return std::holds_alternative<EmergencyResponseBody>(b);
    case PacketType::kSequenceNeg: return std::holds_alternative<SequenceNegBody>(b);
    case PacketType::kPathChallenge: return std::holds_alternative<PathChallengeBody>(b);
    case PacketType::kPathResponse: return std::holds_alternative<PathResponseBody>(b);
    case PacketType::kPmtuProbe: return std::holds_alternative<PmtuProbeBody>(b);
    case PacketType::kPmtuAck: return std::holds_alternative<PmtuAckBody>(b);
  }
  return false;
}

}  // namespace

std::size_t body_size(const Body& body) {
  return std::visit(
      [](const auto& b) -> std::size_t {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, PayloadBody>) return b.bytes.size();
        else if constexpr (std::is_same_v<T, SynBody>) return kSynBodySize + (b.target ? kStreamTargetSize : 0);
        else if constexpr (std::is_same_v<T, SynAckBody>) return kSynAckBodySize;
        else if constexpr (std::is_same_v<T, AckBody>)
          return kAckBodyMinSize + (b.has_opening ? 64 : 0) + std::size_t{b.sack_count} * 8;
        else if constexpr (std::is_same_v<T, FinBody>) return kFinBodySize;
        else if constexpr (std::is_same_v<T, HeartbeatBody>) return kHeartbeatBodySize;
        else if constexpr (std::is_same_v<T, RecoveryBody>) return kRecoveryBodySize;
        else if constexpr (std::is_same_v<T, ErrorBody>) return kErrorBodyMinSize + b.message.size();
        else if constexpr (std::is_same_v<T, WindowUpdateBody>) return kWindowUpdateBodySize;
        else if constexpr (std::is_same_v<T, RstBody>) return kRstBodySize;
        else if constexpr (std::is_same_v<T, DiscoveryBody>) return kDiscoveryBodySize;
        else if constexpr (std::is_same_v<T, DiscoveryResponseBody>) return kDiscoveryResponseBodySize;
        else if constexpr (std::is_same_v<T, DiscoveryConfirmBody>) return kDiscoveryConfirmBodySize;
        else if constexpr (std::is_same_v<T, TimeSyncRequestBody>) return kTimeSyncRequestBodySize;
        else if constexpr (std::is_same_v<T, TimeSyncResponseBody>) return kTimeSyncResponseBodySize;
        else if constexpr (std::is_same_v<T, RekeyRequestBody>) return kRekeyRequestBodySize;
        else if constexpr (std::is_same_v<T, RekeyResponseBody>) return kRekeyResponseBodySize;
        else if constexpr (std::is_same_v<T, RepairRequestBody>) return kRepairRequestBodySize;
        else if constexpr (std::is_same_v<T, RepairResponseBody>) return kRepairResponseBodySize;
        else if constexpr (std::is_same_v<T, EmergencyRequestBody>) return kEmergencyRequestBodySize;
        else if constexpr (std::is_same_v<T, EmergencyResponseBody>) return kEmergencyResponseBodySize;
        else if constexpr (std::is_same_v<T, PathChallengeBody>) return kPathChallengeBodySize;
        else if constexpr (std::is_same_v<T, PathResponseBody>) return kPathResponseBodySize;
        else if constexpr (std::is_same_v<T, PmtuProbeBody>) return kPmtuProbeBodyMinSize + b.padding;
        else if constexpr (std::is_same_v<T, PmtuAckBody>) return kPmtuAckBodySize;
        else return kSequenceNegBodySize;
      },
      body);
}

Result<std::size_t> write_body(const Header& h, const Body& body, MutableBytes out) {
  if (!body_matches(h.type, body)) return fail(ErrorCode::kInvalidParameter, "body does not match type");
  if (const auto* ack = std::get_if<AckBody>(&body)) {
    if (ack->has_opening != ((h.flags & flags::kSyn) != 0)) {
      return fail(ErrorCode::kInvalidParameter, "ACK opening requires the SYN flag");
    }
  }
  ByteWriter w(out);
  bool values_ok = std::visit([&w](const auto& b) { return encode(w, b); }, body);
  if (!values_ok) return fail(ErrorCode::kInvalidParameter, "body field out of range");
  if (!w.ok()) return fail(ErrorCode::kInvalidParameter, "output buffer too small");
  return w.position();
}

Result<std::size_t> encode_packet(Header h, const Body& body, MutableBytes out) {
  std::size_t size = body_size(body);
  if (size > kMaxBodySize) return fail(ErrorCode::kInvalidParameter, "body too large");
  if (out.size() < kOverhead + size) return fail(ErrorCode::kInvalidParameter, "output buffer too small");
  h.payload_length = static_cast<std::uint16_t>(size);
  auto written = write_body(h, body, out.subspan(kHeaderSize, size));
  if (!written) return std::unexpected(written.error());
  write_header(h, out);
  std::fill_n(out.begin() + static_cast<std::ptrdiff_t>(kHeaderSize + size), kTagSize, 0);
  return kOverhead + size;
}

Result<Packet> decode_packet(Bytes datagram) {
  auto h = parse_header(datagram);
  if (!h) return std::unexpected(h.error());
  auto b = parse_body(*h, datagram.subspan(kHeaderSize, h->payload_length));
  if (!b) return std::unexpected(b.error());
  return Packet{*h, std::move(*b)};
}

}  // namespace buckwild::wire

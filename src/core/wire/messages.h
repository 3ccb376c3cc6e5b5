// Every wire layout and protocol constant of Buckwild v1, in one place.
//
// docs/protocol.md is the prose form of this file; change them together. The
// structs here are plain values: codecs read and write them field by field
// through ByteReader/ByteWriter (codec.h), never by casting onto buffers.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace buckwild::wire {

// ---- Protocol constants (docs/protocol.md §9) ----------------------------------

inline constexpr std::uint8_t kVersion = 0x01;

inline constexpr std::uint32_t kHopIntervalMs = 250;
inline constexpr std::uint32_t kTimeSyncToleranceMs = 50;
inline constexpr std::uint32_t kHeartbeatIntervalMs = 30'000;
inline constexpr std::uint32_t kHeartbeatTimeoutMs = 90'000;
inline constexpr std::uint32_t kMaxPacketLifetimeMs = 60'000;
inline constexpr std::uint32_t kTimestampWindowMs = 30'000;
inline constexpr std::uint32_t kMsPerDay = 86'400'000;
inline constexpr std::uint32_t kDelayAllowanceMin = 1;
inline constexpr std::uint32_t kDelayAllowanceMax = 16;
inline constexpr std::uint32_t kMinRtoMs = 200;
inline constexpr std::uint32_t kMaxRtoMs = 60'000;
inline constexpr std::uint32_t kAckDelayMs = 50;
inline constexpr std::uint32_t kTimeWaitMs = 60'000;
inline constexpr std::uint32_t kMaxRetransmissions = 8;
inline constexpr std::uint32_t kMaxRecoveryAttempts = 5;
inline constexpr std::uint32_t kDiscoveryTimeoutMs = 10'000;
inline constexpr std::uint32_t kDiscoveryRetries = 3;
inline constexpr std::uint32_t kFragmentTimeoutMs = 30'000;

inline constexpr std::uint16_t kMinPort = 1024;
inline constexpr std::uint16_t kMaxPort = 65535;
inline constexpr std::uint32_t kPortRange = 64512;
inline constexpr std::uint16_t kDiscoveryPort = 1025;
inline constexpr std::uint16_t kMaxConnectionId = 4095;
inline constexpr std::uint32_t kOffsetStride = 15;  // port spacing of connection offsets (§10.3)
inline constexpr std::size_t kMaxPskCount = 256;
inline constexpr std::size_t kMaxFragments = 255;
inline constexpr std::uint8_t kMaxWindowScale = 14;

// ---- Packet types (§3) -------------------------------------------------------

enum class PacketType : std::uint8_t {
  kSyn = 0x01,
  kSynAck = 0x02,
  kAck = 0x03,
  kData = 0x04,
  kFin = 0x05,
  kHeartbeat = 0x06,
  kRecovery = 0x07,
  kFragment = 0x08,
  kError = 0x09,
  kWindowUpdate = 0x0A,
  kRst = 0x0B,
  kDiscovery = 0x0C,
  kDiscoveryResponse = 0x0D,
  kDiscoveryConfirm = 0x0E,
  kTimeSyncRequest = 0x0F,
  kTimeSyncResponse = 0x10,
  kRekeyRequest = 0x11,
  kRekeyResponse = 0x12,
  kRepairRequest = 0x13,
  kRepairResponse = 0x14,
  kEmergencyRequest = 0x15,
  kEmergencyResponse = 0x16,
  kSequenceNeg = 0x17,
  kDatagram = 0x18,  // Buckwild extension: one unreliable IP packet (UDP, ICMP, …)
  kPathChallenge = 0x19,  // Buckwild extension: path validation before a roam (§11.6)
  kPathResponse = 0x1A,   // Buckwild extension: the answer, from the path challenged
  kPmtuProbe = 0x1B,      // Buckwild extension: a padded path MTU probe (§11.10)
  kPmtuAck = 0x1C,        // Buckwild extension: the probe's acknowledgment
};

inline constexpr std::uint8_t kFirstPacketType = 0x01;
inline constexpr std::uint8_t kLastPacketType = 0x1C;

inline constexpr bool is_known_type(std::uint8_t t) {
  return t >= kFirstPacketType && t <= kLastPacketType;
}

// Discovery messages travel before any session key exists; everything else is
// protected with the session's packet keys.
inline constexpr bool is_discovery_type(PacketType t) {
  return t == PacketType::kDiscovery || t == PacketType::kDiscoveryResponse ||
         t == PacketType::kDiscoveryConfirm;
}

std::string_view packet_type_name(PacketType t);

// ---- Header flags (§4.2) -------------------------------------------------------

namespace flags {
inline constexpr std::uint8_t kFin = 1u << 0;
inline constexpr std::uint8_t kSyn = 1u << 1;
inline constexpr std::uint8_t kRst = 1u << 2;
inline constexpr std::uint8_t kPsh = 1u << 3;
inline constexpr std::uint8_t kAck = 1u << 4;
inline constexpr std::uint8_t kUrg = 1u << 5;
// The parity of the key epoch the packet is sealed under (§9.5, deviation 29).
inline constexpr std::uint8_t kKeyPhase = 1u << 6;
inline constexpr std::uint8_t kReservedMask = 0x80;
}  // namespace flags

// ---- Common header (§4) --------------------------------------------------------
//
//  0      1      2      3
//  +------+------+------+------+
//  | ver  | type | flags| rsvd |   rsvd must be 0
//  +------+------+------+------+
//  |     session id (64)       |   4
//  +---------------------------+
//  |   packet number (32)      |  12  low 32 bits of the 64-bit per-direction counter
//  +-------------+-------------+
//  | conn id (16)| window (16) |  16  window in units of 2^wscale bytes
//  +-------------+-------------+
//  |     sequence (32)         |  20
//  |     acknowledgment (32)   |  24
//  |     timestamp (32)        |  28  ms since UTC midnight of the sender
//  +-------------+-------------+
//  | frag id (16)| frag idx(16)|  32
//  +-------------+-------------+
//  |frag tot (16)| payload len |  36  payload len = bytes between header and tag
//  +-------------+-------------+
//  |     SACK bitmap (32)      |  40
//  +---------------------------+
//  |  body (payload len bytes) |  44
//  +---------------------------+
//  |  tag (128)                |  AEAD tag or HMAC-SHA256-128
//  +---------------------------+

inline constexpr std::size_t kHeaderSize = 44;
inline constexpr std::size_t kTagSize = 16;
inline constexpr std::size_t kOverhead = kHeaderSize + kTagSize;
// The largest datagram we send or accept: a full IPv4 UDP payload would be 65507,
// but nothing of ours is ever larger than a 9000-byte jumbo frame.
inline constexpr std::size_t kMaxDatagramSize = 9000;
inline constexpr std::size_t kMaxBodySize = kMaxDatagramSize - kOverhead;
// Discovery messages must fit in a 1280-byte IPv6 packet: 1280 − 40 − 8.
inline constexpr std::size_t kMaxDiscoveryDatagram = 1232;

struct Header {
  std::uint8_t version = kVersion;
  PacketType type = PacketType::kData;
  std::uint8_t flags = 0;
  std::uint64_t session_id = 0;
  std::uint32_t packet_number = 0;
  std::uint16_t connection_id = 0;
  std::uint16_t window = 0;
  std::uint32_t sequence = 0;
  std::uint32_t ack = 0;
  std::uint32_t timestamp_ms = 0;
  std::uint16_t fragment_id = 0;
  std::uint16_t fragment_index = 0;
  std::uint16_t fragment_total = 0;
  std::uint16_t payload_length = 0;
  std::uint32_t sack_bitmap = 0;

  friend bool operator==(const Header&, const Header&) = default;
};

// ---- Bodies (§5) ----------------------------------------------------------------
// Sizes are the encoded sizes; variable bodies give their fixed part.

using Bytes32 = std::array<std::uint8_t, 32>;
using Bytes16 = std::array<std::uint8_t, 16>;

// Connection parameters carried by SYN and SYN-ACK.
struct ConnectionParams {
  std::uint32_t initial_window = 0;  // receive window in bytes (unscaled)
  std::uint32_t initial_cwnd = 0;    // bytes
  std::int32_t time_offset_ms = 0;   // sender's measured clock offset to the peer
  std::uint16_t features = 0;        // connection features (§5.1)
  std::uint8_t window_scale = 0;     // 0..14: the header window is in units of 2^window_scale

  friend bool operator==(const ConnectionParams&, const ConnectionParams&) = default;
};
inline constexpr std::size_t kConnectionParamsSize = 4 + 4 + 4 + 2 + 1 + 1;  // + 1 reserved

// A Pedersen commitment opening: the committed value and its blinding scalar.
struct Opening {
  Bytes32 value{};
  Bytes32 blind{};
  friend bool operator==(const Opening&, const Opening&) = default;
};

// Stream mode (§5.13.13): the application connection a SYN asks the peer's
// daemon to make, from `source` to `destination`. IPv4 addresses sit in the
// first 4 bytes of the 16, the rest zero.
struct StreamTarget {
  std::uint8_t family = 4;  // 4 or 6
  std::array<std::uint8_t, 16> source{};
  std::uint16_t source_port = 0;
  std::array<std::uint8_t, 16> destination{};
  std::uint16_t destination_port = 0;
  friend bool operator==(const StreamTarget&, const StreamTarget&) = default;
};
inline constexpr std::size_t kStreamTargetSize = 4 + 16 + 16 + 4;  // family, 3 reserved, addresses, ports

struct SynBody {  // 0x01
  Bytes32 commitment{};
  ConnectionParams params;
  std::optional<StreamTarget> target;  // present only in stream mode
  friend bool operator==(const SynBody&, const SynBody&) = default;
};
inline constexpr std::size_t kSynBodySize = 32 + kConnectionParamsSize;  // without a target
static_assert(kSynBodySize == 48);

struct SynAckBody {  // 0x02
  Bytes32 commitment{};
  Opening opening;  // opens `commitment`: the sender's sequence contribution
  ConnectionParams params;
  friend bool operator==(const SynAckBody&, const SynAckBody&) = default;
};
inline constexpr std::size_t kSynAckBodySize = 32 + 64 + kConnectionParamsSize;
static_assert(kSynAckBodySize == 112);

// A SACK block acknowledges the half-open sequence range [start, end).
struct SackBlock {
  std::uint32_t start = 0;
  std::uint32_t end = 0;
  friend bool operator==(const SackBlock&, const SackBlock&) = default;
};
inline constexpr std::size_t kMaxSackBlocks = 32;

struct AckBody {  // 0x03
  bool has_opening = false;  // the handshake-completing ACK (SYN flag set) opens its SYN's commitment
  Opening opening;
  std::uint8_t sack_count = 0;
  std::array<SackBlock, kMaxSackBlocks> sack{};
  friend bool operator==(const AckBody&, const AckBody&) = default;
};
// Fixed part: count (1) + reserved (3); each block 8; opening 64 when SYN is set.
inline constexpr std::size_t kAckBodyMinSize = 4;

struct FinBody {  // 0x05
  std::uint32_t final_sequence = 0;
  friend bool operator==(const FinBody&, const FinBody&) = default;
};
inline constexpr std::size_t kFinBodySize = 4;

// Delay negotiation word of HEARTBEAT (reference bit layout, bit 0 = LSB).
struct DelayNegotiation {
  std::uint8_t delay_windows = 1;    // bits 0-7: current delay allowance, 1..16
  std::uint16_t jitter_ms = 0;       // bits 8-19: 0..4095
  std::uint16_t loss_permille = 0;   // bits 20-29: 0..1000
  std::uint8_t sample_count = 0;     // bits 30-37
  std::uint16_t negotiation_seq = 0; // bits 38-47: 10-bit rolling counter
  bool adaptation_enabled = false;   // bit 48; bits 49-63 reserved, zero
  friend bool operator==(const DelayNegotiation&, const DelayNegotiation&) = default;
};

struct HeartbeatBody {  // 0x06
  std::uint32_t current_time_ms = 0;  // sender's ms since UTC midnight
  std::int16_t time_drift_ms = 0;
  std::uint8_t sync_state = 0;
  DelayNegotiation delay;
  friend bool operator==(const HeartbeatBody&, const HeartbeatBody&) = default;
};
inline constexpr std::size_t kHeartbeatBodySize = 4 + 2 + 1 + 1 + 8;

struct RecoveryBody {  // 0x07
  std::uint64_t recovery_session_id = 0;
  std::uint32_t last_known_sequence = 0;
  std::uint32_t congestion_window = 0;
  std::uint32_t send_window = 0;
  std::uint8_t reason = 0;
  friend bool operator==(const RecoveryBody&, const RecoveryBody&) = default;
};
inline constexpr std::size_t kRecoveryBodySize = 8 + 4 + 4 + 4 + 1 + 3;

inline constexpr std::size_t kMaxErrorMessage = 256;
struct ErrorBody {  // 0x09
  std::uint8_t code = 0;      // 0x00..0x17
  std::uint32_t details = 0;  // 24 bits
  std::span<const std::uint8_t> message;  // UTF-8, ≤ 256 bytes; a view into the packet
  friend bool operator==(const ErrorBody& a, const ErrorBody& b) {
    return a.code == b.code && a.details == b.details &&
           std::equal(a.message.begin(), a.message.end(), b.message.begin(), b.message.end());
  }
};
inline constexpr std::size_t kErrorBodyMinSize = 4;

struct WindowUpdateBody {  // 0x0A
  std::uint32_t window = 0;  // bytes, unscaled
  friend bool operator==(const WindowUpdateBody&, const WindowUpdateBody&) = default;
};
inline constexpr std::size_t kWindowUpdateBodySize = 4;

struct RstBody {  // 0x0B
  std::uint8_t reason = 0;  // an ErrorCode
  friend bool operator==(const RstBody&, const RstBody&) = default;
};
inline constexpr std::size_t kRstBodySize = 4;

// Discovery (§6). 64 slots of 16-byte tags fit kMaxDiscoveryDatagram: a
// stranger's DISCOVERY matches one of N keys with probability 64·N·2^-128
// (issue #20, defect 8: with 256 slots of 4 bytes it was N·2^-24). An
// initiator offering more than 64 keys offers them 64 at a time.
inline constexpr std::size_t kDiscoveryTagSize = 16;
inline constexpr std::size_t kDiscoverySlots = 64;

struct DiscoveryBody {  // 0x0C
  std::uint64_t discovery_id = 0;
  Bytes16 nonce{};
  Bytes32 ephemeral{};   // X25519 public key
  Bytes32 commitment{};  // Pedersen commitment (ristretto255)
  std::uint16_t features = 0;
  std::array<std::array<std::uint8_t, kDiscoveryTagSize>, kDiscoverySlots> tags{};
  friend bool operator==(const DiscoveryBody&, const DiscoveryBody&) = default;
};
inline constexpr std::size_t kDiscoveryBodySize =
    8 + 16 + 32 + 32 + 2 + 2 + kDiscoverySlots * kDiscoveryTagSize;
static_assert(kDiscoveryBodySize + kOverhead <= kMaxDiscoveryDatagram);

struct DiscoveryResponseBody {  // 0x0D
  std::uint64_t discovery_id = 0;
  Bytes16 nonce{};
  Bytes32 ephemeral{};     // responder's X25519 public key
  Bytes32 contribution{};  // responder's sequence contribution, revealed (§6.3)
  Bytes32 cookie{};        // stateless cookie bound to the initiator's address
  Bytes32 proof{};         // HMAC under the responder's confirmation key
  std::array<std::uint8_t, kDiscoveryTagSize> matched_tag{};  // the initiator's tag that matched
  std::uint16_t features = 0;  // negotiated features
  friend bool operator==(const DiscoveryResponseBody&, const DiscoveryResponseBody&) = default;
};
inline constexpr std::size_t kDiscoveryResponseBodySize =
    8 + 16 + 32 + 32 + 32 + 32 + kDiscoveryTagSize + 2 + 2;

struct DiscoveryConfirmBody {  // 0x0E
  std::uint64_t discovery_id = 0;
  Bytes16 initiator_nonce{};
  Bytes16 responder_nonce{};
  Bytes32 initiator_ephemeral{};
  Bytes32 cookie{};
  Opening opening;                 // opens the DISCOVERY commitment
  Bytes32 selection_commitment{};  // PSK selection commitment
  Bytes32 proof{};                 // HMAC under the initiator's confirmation key
  std::array<std::uint8_t, kDiscoveryTagSize> matched_tag{};
  std::uint32_t discovery_timestamp_ms = 0;  // echo of the DISCOVERY header timestamp
  std::uint32_t response_timestamp_ms = 0;   // echo of the RESPONSE header timestamp
  std::uint16_t features = 0;                // echo of the DISCOVERY features
  friend bool operator==(const DiscoveryConfirmBody&, const DiscoveryConfirmBody&) = default;
};
inline constexpr std::size_t kDiscoveryConfirmBodySize =
    8 + 16 + 16 + 32 + 32 + 64 + 32 + 32 + kDiscoveryTagSize + 4 + 4 + 2 + 2;

struct TimeSyncRequestBody {  // 0x0F
  std::uint32_t challenge = 0;
  std::uint32_t local_timestamp_ms = 0;
  friend bool operator==(const TimeSyncRequestBody&, const TimeSyncRequestBody&) = default;
};
inline constexpr std::size_t kTimeSyncRequestBodySize = 4 + 4 + 8;

struct TimeSyncResponseBody {  // 0x10
  std::uint32_t challenge = 0;
  std::uint32_t local_timestamp_ms = 0;
  std::uint32_t peer_timestamp_ms = 0;
  friend bool operator==(const TimeSyncResponseBody&, const TimeSyncResponseBody&) = default;
};
inline constexpr std::size_t kTimeSyncResponseBodySize = 4 + 4 + 4 + 4;

struct RekeyRequestBody {  // 0x11
  std::uint32_t nonce = 0;
  Bytes32 ephemeral{};  // new X25519 public key (the reference's "new key commitment")
  friend bool operator==(const RekeyRequestBody&, const RekeyRequestBody&) = default;
};
inline constexpr std::size_t kRekeyRequestBodySize = 4 + 32 + 8;

struct RekeyResponseBody {  // 0x12
  std::uint32_t nonce = 0;
  Bytes32 ephemeral{};
  Bytes16 confirmation{};
  friend bool operator==(const RekeyResponseBody&, const RekeyResponseBody&) = default;
};
inline constexpr std::size_t kRekeyResponseBodySize = 4 + 32 + 16;

struct RepairRequestBody {  // 0x13
  std::uint32_t nonce = 0;
  std::uint32_t last_known_sequence = 0;
  std::uint32_t repair_window = 0;
  friend bool operator==(const RepairRequestBody&, const RepairRequestBody&) = default;
};
inline constexpr std::size_t kRepairRequestBodySize = 4 + 4 + 4 + 8;

struct RepairResponseBody {  // 0x14
  std::uint32_t nonce = 0;
  std::uint32_t current_sequence = 0;
  std::uint32_t repair_window = 0;
  std::uint64_t confirmation = 0;
  friend bool operator==(const RepairResponseBody&, const RepairResponseBody&) = default;
};
inline constexpr std::size_t kRepairResponseBodySize = 4 + 4 + 4 + 8;

struct EmergencyRequestBody {  // 0x15
  std::uint32_t token = 0;
  Bytes32 data{};
  friend bool operator==(const EmergencyRequestBody&, const EmergencyRequestBody&) = default;
};
inline constexpr std::size_t kEmergencyRequestBodySize = 4 + 32 + 8;

struct EmergencyResponseBody {  // 0x16
  std::uint32_t token = 0;
  Bytes32 data{};
  Bytes16 confirmation{};
  friend bool operator==(const EmergencyResponseBody&, const EmergencyResponseBody&) = default;
};
inline constexpr std::size_t kEmergencyResponseBodySize = 4 + 32 + 16;

enum class NegotiationPhase : std::uint8_t { kCommit = 1, kReveal = 2, kConfirm = 3 };

struct SequenceNegBody {  // 0x17
  NegotiationPhase phase = NegotiationPhase::kCommit;
  Bytes32 commitment{};
  Opening opening;  // all zero in the COMMIT phase
  Bytes16 challenge{};
  friend bool operator==(const SequenceNegBody&, const SequenceNegBody&) = default;
};
inline constexpr std::size_t kSequenceNegBodySize = 1 + 3 + 32 + 64 + 16;

// Path validation (§11.6, deviation 28): the responder challenges a new
// source address of its peer with 16 random bytes; the initiator echoes them.
struct PathChallengeBody {  // 0x19
  Bytes16 data{};
  friend bool operator==(const PathChallengeBody&, const PathChallengeBody&) = default;
};
inline constexpr std::size_t kPathChallengeBodySize = 16;

struct PathResponseBody {  // 0x1A
  Bytes16 data{};  // the challenge's, echoed
  friend bool operator==(const PathResponseBody&, const PathResponseBody&) = default;
};
inline constexpr std::size_t kPathResponseBodySize = 16;

// Path MTU discovery (§11.10, deviation 32). A PMTU_PROBE is padded with zero
// bytes to the datagram size it probes and tells the receiver the largest
// datagram its sender can receive; the PMTU_ACK echoes the probe's id and
// size and tells the largest datagram the acknowledging side can receive.
struct PmtuProbeBody {  // 0x1B
  std::uint32_t probe_id = 0;
  std::uint16_t max_datagram = 0;  // the sender's largest receivable datagram
  std::uint16_t padding = 0;       // zero bytes after the fixed part (not stored)
  friend bool operator==(const PmtuProbeBody&, const PmtuProbeBody&) = default;
};
inline constexpr std::size_t kPmtuProbeBodyMinSize = 8;

struct PmtuAckBody {  // 0x1C
  std::uint32_t probe_id = 0;      // the probe's, echoed
  std::uint16_t probe_size = 0;    // the probe's datagram size as received
  std::uint16_t max_datagram = 0;  // the acknowledging side's largest receivable datagram
  friend bool operator==(const PmtuAckBody&, const PmtuAckBody&) = default;
};
inline constexpr std::size_t kPmtuAckBodySize = 8;

// The size of a datagram every path carries: the discovery limit (a
// 1280-byte IPv6 packet), where a session's path MTU search starts.
inline constexpr std::size_t kBaseDatagramSize = kMaxDiscoveryDatagram;

// DATA (0x04), FRAGMENT (0x08) and DATAGRAM (0x18) bodies are opaque payload bytes.

}  // namespace buckwild::wire

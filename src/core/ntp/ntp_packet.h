// NTPv4 client mode (RFC 5905 §7.3, §8): the 48-byte packet, its timestamps, and
// the checks a response must pass before it becomes a sample of a server's
// clock. Pure functions: the daemon sends, receives and reads clocks.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <variant>

#include "core/common/bytes.h"

namespace buckwild::ntp {

inline constexpr std::size_t kPacketSize = 48;
inline constexpr std::uint8_t kVersion = 4;
inline constexpr std::uint8_t kModeClient = 3;
inline constexpr std::uint8_t kModeServer = 4;
inline constexpr std::uint8_t kLeapUnsynchronized = 3;
inline constexpr std::uint8_t kMaxStratum = 15;  // 16 means unsynchronized
// Seconds from the NTP era 0 epoch (1900-01-01) to the Unix epoch.
inline constexpr std::int64_t kNtpToUnixSeconds = 2'208'988'800;
// A response whose round trip took longer than this is refused: its offset
// could be wrong by half of it, more than the hop schedule tolerates.
inline constexpr std::int64_t kMaxRoundTripUs = 3'000'000;
// A server whose own distance to its reference (root delay / 2 + root
// dispersion) exceeds this is not a time source (RFC 5905 MAXDIST is 1.5 s).
inline constexpr std::int64_t kMaxRootDistanceUs = 1'500'000;

// The 64-bit NTP timestamp of a Unix time in microseconds (era-free: the
// seconds wrap in 2036 as they do on the wire).
std::uint64_t to_ntp(std::int64_t unix_us);
// The Unix time in microseconds of an NTP timestamp, in the era that puts it
// nearest `near_unix_us` (RFC 5905 §6: a 64-bit timestamp is ambiguous
// modulo 136 years; the receiver's own clock resolves it).
std::int64_t from_ntp(std::uint64_t ntp, std::int64_t near_unix_us);

struct Packet {
  std::uint8_t leap = 0;
  std::uint8_t version = kVersion;
  std::uint8_t mode = kModeClient;
  std::uint8_t stratum = 0;
  std::int8_t poll = 0;
  std::int8_t precision = 0;
  std::uint32_t root_delay = 0;       // NTP short format, 16.16 seconds
  std::uint32_t root_dispersion = 0;  // 16.16 seconds
  std::uint32_t reference_id = 0;     // a KoD's four ASCII letters when stratum is 0
  std::uint64_t reference_ts = 0;
  std::uint64_t origin_ts = 0;
  std::uint64_t receive_ts = 0;
  std::uint64_t transmit_ts = 0;
};

// Writes a client request whose transmit timestamp is `nonce`. The server
// copies it into its answer's origin timestamp; a random one (as chrony sends)
// makes a blind spoof guess 64 bits and does not reveal our clock.
std::array<std::uint8_t, kPacketSize> encode_request(std::uint64_t nonce);

// Parses a datagram's first 48 bytes (extension fields and MACs after them are
// ignored). nullopt if shorter than 48 bytes.
std::optional<Packet> decode(Bytes datagram);

// What a response proved.
struct Sample {
  std::int64_t offset_us = 0;         // the server's clock minus ours, at the exchange
  std::int64_t delay_us = 0;          // round trip minus the server's processing time
  std::int64_t root_distance_us = 0;  // the server's root delay / 2 + root dispersion
  std::uint8_t stratum = 0;
};

// Kiss-o'-Death (RFC 5905 §7.4): the server tells us to go away (DENY, RSTR)
// or to slow down (RATE); other codes carry no instruction and are refused.
enum class Kiss : std::uint8_t { kDeny, kRate, kOther };

// Why a response is not a sample.
enum class Refusal : std::uint8_t {
  kNotServer,       // mode is not 4, or version is not 3 or 4
  kBadOrigin,       // origin timestamp is not our nonce: spoofed, stale or replayed
  kUnsynchronized,  // leap 3, stratum 16+, or zero receive/transmit timestamps
  kBadDelay,        // negative or longer than kMaxRoundTripUs
  kTooFar,          // root distance over kMaxRootDistanceUs
};
const char* refusal_name(Refusal r);
const char* kiss_name(Kiss k);

using Verdict = std::variant<Sample, Kiss, Refusal>;

// Checks a response to the request we sent with `nonce` at our time `t1_us`,
// received at our time `t4_us` (both on the clock whose offset is measured),
// and turns it into a sample (RFC 5905 §8: offset ((T2−T1)+(T3−T4))/2, delay
// (T4−T1)−(T3−T2)). A KoD is reported only if its origin matches our nonce,
// so nobody off-path can silence a server.
Verdict check_response(const Packet& p, std::uint64_t nonce, std::int64_t t1_us,
                       std::int64_t t4_us);

}  // namespace buckwild::ntp

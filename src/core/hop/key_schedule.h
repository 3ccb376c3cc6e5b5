// The key schedule: PSK -> daily key -> session key -> per-direction packet keys.
//
//   daily_key   = HKDF(salt "daily_key_salt", ikm PSK,
//                      info "daily_key" || "YYYY-MM-DD", 32)
//   session_key = HKDF(salt session_id (8 bytes BE), ikm daily_key || dh_shared,
//                      info "session_key" || nonce, 32)
//   packet_key  = HKDF-Expand(session_key, "buckwild packet key " || label, 32)
//   packet_iv   = HKDF-Expand(session_key, "buckwild packet iv "  || label, 12)
//   mac_key     = HKDF-Expand(session_key, "buckwild packet mac " || label, 32)
//
// with label "i2r" or "r2i". All HKDFs are HKDF-SHA256 (RFC 5869). The salt and
// info strings of the first two steps are the reference protocol's.
// tests/vectors/gen_hop_vectors.py is an independent implementation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/common/bytes.h"
#include "core/common/error.h"
#include "core/crypto/secret_bytes.h"

namespace buckwild::hop {

inline constexpr std::size_t kMinPskSize = 16;
inline constexpr std::size_t kMaxPskSize = 64;
inline constexpr std::size_t kDailyKeySize = 32;
inline constexpr std::size_t kSessionKeySize = 32;
inline constexpr std::size_t kMaxSessionNonceSize = 64;
inline constexpr std::size_t kMaxDhSharedSize = 64;
inline constexpr std::size_t kPacketKeySize = 32;
inline constexpr std::size_t kPacketIvSize = 12;
inline constexpr std::size_t kMacKeySize = 32;

// Direction of travel of a datagram. The numeric value is the `dir` byte of the
// port schedule.
enum class Direction : std::uint8_t {
  kInitiatorToResponder = 0,
  kResponderToInitiator = 1,
};

// "i2r" or "r2i".
std::string_view direction_label(Direction dir);

// Daily key of UTC day `day` (days since 1970-01-01) under `psk`.
// Fails: kInvalidParameter if psk is not 16..64 bytes.
Result<crypto::SecretBytes> daily_key(Bytes psk, std::int64_t day);

// Session key. `nonce` is the discovery transcript hash; `dh_shared` is the
// X25519 shared secret, or empty when forward secrecy is off (then the IKM is
// the daily key alone).
// Fails: kInvalidParameter if daily_key is not 32 bytes, nonce is longer than
// 64 bytes or dh_shared is longer than 64 bytes.
Result<crypto::SecretBytes> session_key(Bytes daily_key, std::uint64_t session_id, Bytes nonce,
                                        Bytes dh_shared);

// Keys protecting the packets of one direction of a session.
struct DirectionKeys {
  crypto::SecretBytes packet_key;  // 32 bytes
  crypto::SecretBytes packet_iv;   // 12 bytes
  crypto::SecretBytes mac_key;     // 32 bytes
};

// Packet keys of direction `dir` from `session_key`.
// Fails: kInvalidParameter if session_key is not 32 bytes.
Result<DirectionKeys> derive_direction_keys(const crypto::SecretBytes& session_key, Direction dir);

}  // namespace buckwild::hop

// Packet protection: sealing and opening Buckwild datagrams under one
// direction's packet keys (docs/protocol.md §8).
//
// AEAD mode (default): the 44-byte header is associated data, the body is
// encrypted in place, and the 16-byte AEAD tag follows it. The 96-bit nonce is
// the direction's secret IV XOR the 64-bit packet number (big-endian, right
// aligned), and the packet number only ever increases, so a nonce never repeats
// under one key. HMAC mode (negotiated): the body travels in the clear and the
// tag is HMAC-SHA256(mac key, header || body) truncated to 128 bits.
#pragma once

#include <cstdint>
#include <optional>

#include "core/common/bytes.h"
#include "core/common/error.h"
#include "core/crypto/aead.h"
#include "core/crypto/hmac.h"
#include "core/crypto/replay_guard.h"
#include "core/crypto/secret_bytes.h"
#include "core/wire/messages.h"

namespace buckwild::crypto {

enum class ProtectionMode : std::uint8_t { kAead = 1, kHmac = 2 };

// The secrets of one direction (hop::derive_direction_keys makes them).
struct PacketKeyMaterial {
  Bytes packet_key;  // 32 bytes, AEAD key
  Bytes packet_iv;   // 12 bytes, AEAD IV
  Bytes mac_key;     // 32 bytes, HMAC mode key
};

// A sender stops at this packet number; the session must rekey before it.
inline constexpr std::uint64_t kMaxPacketNumber = (std::uint64_t{1} << 62) - 1;

class PacketSealer {
 public:
  // Fails with kInvalidParameter for key material of the wrong sizes.
  static Result<PacketSealer> create(ProtectionMode mode, AeadAlgorithm algorithm,
                                     const PacketKeyMaterial& keys);

  // Seals one packet in `datagram`. The caller has written the plaintext body at
  // datagram[44, 44 + body_len). This writes the header `h` in front of it (with
  // packet_number and payload_length filled in, and reflected back into `h`),
  // protects the body, and writes the tag after it.
  // Returns the datagram size (60 + body_len).
  // Errors: kInvalidParameter (buffer too small, body too large),
  // kRecoveryFailed (packet numbers exhausted: the session must rekey).
  Result<std::size_t> seal(wire::Header& h, MutableBytes datagram, std::size_t body_len);

  // The packet number the next seal() will use.
  std::uint64_t next_packet_number() const { return next_pn_; }
  ProtectionMode mode() const { return mode_; }

 private:
  PacketSealer(ProtectionMode mode, std::optional<Aead> aead, std::optional<HmacSha256> mac,
               SecretBytes iv)
      : mode_(mode), aead_(std::move(aead)), mac_(std::move(mac)), iv_(std::move(iv)) {}

  ProtectionMode mode_;
  std::optional<Aead> aead_;
  std::optional<HmacSha256> mac_;
  SecretBytes iv_;
  std::uint64_t next_pn_ = 0;
};

struct OpenedPacket {
  wire::Header header;
  MutableBytes body;           // plaintext, in place inside the datagram
  std::uint64_t packet_number; // the full 64-bit packet number
};

class PacketOpener {
 public:
  static Result<PacketOpener> create(ProtectionMode mode, AeadAlgorithm algorithm,
                                     const PacketKeyMaterial& keys);

  // Authenticates and (AEAD mode) decrypts a received datagram in place.
  // Order: parse and validate the header (codec errors); timestamp within
  // ±timestamp_window_ms of `now_ms_of_day`, circular across midnight
  // (kTimestampInvalid); packet number new and inside the replay window
  // (kReplayAttack); tag verifies (kAuthenticationFailed). Only a packet that
  // passes all of them is recorded in the replay window.
  Result<OpenedPacket> open(MutableBytes datagram, std::uint32_t now_ms_of_day,
                            std::uint32_t timestamp_window_ms = wire::kTimestampWindowMs);

  const ReplayWindow& replay_window() const { return replay_; }

 private:
  PacketOpener(ProtectionMode mode, std::optional<Aead> aead, std::optional<HmacSha256> mac,
               SecretBytes iv)
      : mode_(mode), aead_(std::move(aead)), mac_(std::move(mac)), iv_(std::move(iv)) {}

  ProtectionMode mode_;
  std::optional<Aead> aead_;
  std::optional<HmacSha256> mac_;
  SecretBytes iv_;
  ReplayWindow replay_;
};

// The AEAD nonce for packet number `pn` under `iv` (12 bytes).
AeadNonce packet_nonce(Bytes iv, std::uint64_t pn);

}  // namespace buckwild::crypto

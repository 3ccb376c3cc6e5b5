// Session features negotiated during discovery (docs/protocol.md §6.4).
#pragma once

#include <cstdint>
#include <optional>

#include "core/crypto/aead.h"
#include "core/crypto/packet_protection.h"

namespace buckwild::discovery {

namespace feature {
inline constexpr std::uint16_t kChaCha20Poly1305 = 1u << 0;  // AEAD mode, ChaCha20-Poly1305
inline constexpr std::uint16_t kAes256Gcm = 1u << 1;         // AEAD mode, AES-256-GCM
inline constexpr std::uint16_t kHmacOnly = 1u << 2;          // HMAC-SHA256-128, no encryption
inline constexpr std::uint16_t kForwardSecrecy = 1u << 3;    // X25519 mixed into the session key
inline constexpr std::uint16_t kDatagram = 1u << 4;          // DATAGRAM packets (0x18)
inline constexpr std::uint16_t kProtectionMask = kChaCha20Poly1305 | kAes256Gcm | kHmacOnly;
inline constexpr std::uint16_t kKnownMask = 0x001F;
}  // namespace feature

// What a responder accepts and prefers.
struct ResponderPolicy {
  std::uint16_t allowed = feature::kChaCha20Poly1305 | feature::kAes256Gcm |
                          feature::kForwardSecrecy | feature::kDatagram;
  std::uint16_t preferred_protection = feature::kChaCha20Poly1305;  // one protection bit
  bool require_forward_secrecy = true;
};

// The negotiated feature set for an initiator's `offered` features, or nullopt
// when they have no protection mode in common or forward secrecy is required
// and not offered. The result has exactly one protection bit: the preferred
// one if offered, else the first of ChaCha20-Poly1305, AES-256-GCM, HMAC that
// both allow.
std::optional<std::uint16_t> negotiate(std::uint16_t offered, const ResponderPolicy& policy);

// True for a negotiated set the initiator can accept given what it offered:
// only known bits, exactly one protection bit, nothing it did not offer.
bool acceptable_negotiation(std::uint16_t negotiated, std::uint16_t offered);

struct Protection {
  crypto::ProtectionMode mode;
  crypto::AeadAlgorithm algorithm;
};

// The packet protection a negotiated feature set selects.
Protection protection_of(std::uint16_t negotiated);

}  // namespace buckwild::discovery

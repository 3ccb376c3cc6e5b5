#include "core/discovery/features.h"

#include <bit>

namespace buckwild::discovery {

std::optional<std::uint16_t> negotiate(std::uint16_t offered, const ResponderPolicy& policy) {
  const std::uint16_t common = offered & policy.allowed & feature::kKnownMask;
  std::uint16_t protection = 0;
  if (common & policy.preferred_protection & feature::kProtectionMask) {
    protection = policy.preferred_protection & feature::kProtectionMask;
  } else {
    for (std::uint16_t bit : {feature::kChaCha20Poly1305, feature::kAes256Gcm, feature::kHmacOnly}) {
      if (common & bit) {
        protection = bit;
        break;
      }
    }
  }
  if (protection == 0 || std::popcount(protection) != 1) return std::nullopt;
  const bool fs = (common & feature::kForwardSecrecy) != 0;
  if (policy.require_forward_secrecy && !fs) return std::nullopt;
  return static_cast<std::uint16_t>(protection | (common & (feature::kForwardSecrecy | feature::kDatagram)));
}

bool acceptable_negotiation(std::uint16_t negotiated, std::uint16_t offered) {
  return (negotiated & ~feature::kKnownMask) == 0 && (negotiated & ~offered) == 0 &&
         std::popcount(static_cast<unsigned>(negotiated & feature::kProtectionMask)) == 1;
}

Protection protection_of(std::uint16_t negotiated) {
  if (negotiated & feature::kHmacOnly) {
    return {crypto::ProtectionMode::kHmac, crypto::AeadAlgorithm::kChaCha20Poly1305};
  }
  if (negotiated & feature::kAes256Gcm) {
    return {crypto::ProtectionMode::kAead, crypto::AeadAlgorithm::kAes256Gcm};
  }
  return {crypto::ProtectionMode::kAead, crypto::AeadAlgorithm::kChaCha20Poly1305};
}

}  // namespace buckwild::discovery

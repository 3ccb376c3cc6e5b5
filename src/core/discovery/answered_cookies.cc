#include "core/discovery/answered_cookies.h"

namespace buckwild::discovery {

AnsweredCookies::AnsweredCookies(std::size_t slots, Duration lifetime, std::uint64_t salt)
    : lifetime_(lifetime), salt_(salt), slots_(slots == 0 ? 1 : slots) {}

std::uint64_t AnsweredCookies::key_of(const Endpoint& e, Bytes cookie) const {
  // FNV-1a over salt, address, port and cookie, then a final mix. Not a MAC:
  // the cookie itself is authenticated by the full check; this only has to
  // make a guessed pair unlikely to be present (2^-64 per try for a key, and
  // the attacker does not know the salt to aim at a slot).
  std::uint64_t h = 1469598103934665603ull ^ salt_;
  auto mix = [&h](std::uint8_t b) {
    h ^= b;
    h *= 1099511628211ull;
  };
  for (std::uint8_t b : e.address) mix(b);
  mix(static_cast<std::uint8_t>(e.port >> 8));
  mix(static_cast<std::uint8_t>(e.port));
  for (std::uint8_t b : cookie) mix(b);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

void AnsweredCookies::remember(const Endpoint& to, Bytes cookie, TimePoint now) {
  const std::uint64_t k = key_of(to, cookie);
  Slot& s = slots_[k % slots_.size()];
  s.key = k;
  s.at = now;
  s.used = true;
}

bool AnsweredCookies::contains(const Endpoint& from, Bytes cookie, TimePoint now) const {
  const std::uint64_t k = key_of(from, cookie);
  const Slot& s = slots_[k % slots_.size()];
  return s.used && s.key == k && now - s.at < lifetime_;
}

}  // namespace buckwild::discovery

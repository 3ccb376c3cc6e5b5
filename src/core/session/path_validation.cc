#include "core/session/path_validation.h"

#include "core/crypto/constant_time.h"

namespace buckwild::session {

std::optional<Bytes16> PathValidation::on_datagram(const SocketAddress& source, std::size_t size,
                                                   TimePoint now, crypto::RandomSource& rng) {
  expire(now);
  const IpAddress address = source.ip.unmapped();
  if (address == peer_.unmapped()) return std::nullopt;
  // Never more bytes towards an unproven address than it sent us.
  if (size < kChallengeDatagramSize) return std::nullopt;
  std::optional<Challenge>* free = nullptr;
  std::optional<Challenge>* oldest = nullptr;
  for (auto& s : slots_) {
    if (s && s->address == address) {
      // Challenged already: repeat it (the first may have been lost), but
      // not more often than once an interval, whatever the peer sends.
      if (now - s->last_sent < kResendInterval) return std::nullopt;
      s->last_sent = now;
      ++stats_.challenges_sent;
      return s->data;
    }
    if (!s) {
      if (free == nullptr) free = &s;
    } else if (oldest == nullptr || s->started < (*oldest)->started) {
      oldest = &s;
    }
  }
  std::optional<Challenge>* slot = free;
  if (slot == nullptr) {
    // Every slot busy: the oldest challenge gives way.
    slot = oldest;
    ++stats_.failed;
  }
  Challenge c{address, {}, now, now};
  rng.fill(c.data);
  *slot = c;
  ++stats_.started;
  ++stats_.challenges_sent;
  return c.data;
}

bool PathValidation::on_response(const Bytes16& data, const SocketAddress& source, TimePoint now) {
  expire(now);
  const IpAddress address = source.ip.unmapped();
  for (auto& s : slots_) {
    // The answer must come from the address challenged: the same bytes from
    // anywhere else (the old path, a third host) prove nothing about it.
    if (!s || s->address != address) continue;
    if (!crypto::ct_equal(s->data, data)) return false;
    peer_ = address;
    for (auto& other : slots_) other.reset();
    ++stats_.succeeded;
    return true;
  }
  return false;
}

void PathValidation::expire(TimePoint now) {
  for (auto& s : slots_) {
    if (s && now - s->started >= kLifetime) {
      s.reset();
      ++stats_.failed;
    }
  }
}

bool PathValidation::pending() const {
  for (const auto& s : slots_) {
    if (s) return true;
  }
  return false;
}

}  // namespace buckwild::session

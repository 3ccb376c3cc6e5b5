#include "core/discovery/source_limiter.h"

namespace buckwild::discovery {

SourceLimiter::SourceLimiter(double rate, double burst, std::size_t slots, std::uint64_t salt)
    : rate_(rate), burst_(burst), salt_(salt), slots_(slots == 0 ? 1 : slots) {}

std::size_t SourceLimiter::slot_of(const Endpoint& from) const {
  // FNV-1a over salt and address: only for spreading sources over slots.
  std::uint64_t h = 1469598103934665603ull ^ salt_;
  for (std::uint8_t b : from.address) {
    h ^= b;
    h *= 1099511628211ull;
  }
  h ^= h >> 29;
  return static_cast<std::size_t>(h % slots_.size());
}

bool SourceLimiter::allow(const Endpoint& from, TimePoint now) {
  Slot& s = slots_[slot_of(from)];
  if (!s.used || s.address != from.address) {
    s.address = from.address;
    s.used = true;
    s.bucket = TokenBucket(rate_, burst_);
    s.bucket.available(now);
  }
  return s.bucket.take(now);
}

void SourceLimiter::set_rate(double rate, double burst, TimePoint now) {
  rate_ = rate;
  burst_ = burst;
  for (Slot& s : slots_) {
    if (s.used) s.bucket.set_rate(now, rate, burst);
  }
}

}  // namespace buckwild::discovery

#include "core/crypto/replay_guard.h"

#include <algorithm>
#include <limits>

namespace buckwild::crypto {

std::uint64_t expand_packet_number(std::uint32_t wire, std::uint64_t largest_received) {
  constexpr std::uint64_t kWin = std::uint64_t{1} << 32;
  constexpr std::uint64_t kHalfWin = kWin / 2;
  constexpr std::uint64_t kMask = kWin - 1;
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

  // expected = largest + 1 does not exist when largest is 2^64 - 1; every
  // candidate above that is out of range, so the one in the top window is it.
  if (largest_received == kMax) return (kMax & ~kMask) | wire;
  const std::uint64_t expected = largest_received + 1;
  const std::uint64_t candidate = (expected & ~kMask) | wire;

  // RFC 9000 §A.3, with each comparison rearranged so no intermediate value
  // wraps: "candidate <= expected - hwin" and "candidate > expected + hwin".
  if (candidate <= expected && expected - candidate >= kHalfWin && candidate <= kMax - kWin) {
    return candidate + kWin;
  }
  if (candidate > expected && candidate - expected > kHalfWin && candidate >= kWin) {
    return candidate - kWin;
  }
  return candidate;
}

bool ReplayWindow::check(std::uint64_t pn) const {
  if (empty_ || pn > largest_) return true;
  if (largest_ - pn >= kReplayWindowSize) return false;
  return !test_bit(pn);
}

void ReplayWindow::commit(std::uint64_t pn) {
  if (empty_) {
    bits_.fill(0);
    empty_ = false;
    largest_ = pn;
  } else if (pn > largest_) {
    // The ring slots of largest+1 .. pn last held numbers that now fall out of
    // the window; clear exactly those, so the window stays a full 4096 deep.
    const std::uint64_t advance = pn - largest_;
    if (advance >= kReplayWindowSize) {
      bits_.fill(0);
    } else {
      clear_range(largest_ + 1, advance);
    }
    largest_ = pn;
  } else if (largest_ - pn >= kReplayWindowSize) {
    return;
  }
  set_bit(pn);
}

void ReplayWindow::clear_range(std::uint64_t from, std::uint64_t count) {
  std::uint64_t pos = from % kReplayWindowSize;
  while (count > 0) {
    const std::uint64_t bit = pos % 64;
    const std::uint64_t n = std::min<std::uint64_t>(64 - bit, count);
    const std::uint64_t mask = (n == 64) ? ~std::uint64_t{0} : ((std::uint64_t{1} << n) - 1) << bit;
    bits_[pos / 64] &= ~mask;
    pos = (pos + n) % kReplayWindowSize;
    count -= n;
  }
}

bool ReplayWindow::test_bit(std::uint64_t pn) const {
  const std::uint64_t slot = pn % kReplayWindowSize;
  return (bits_[slot / 64] >> (slot % 64)) & 1;
}

void ReplayWindow::set_bit(std::uint64_t pn) {
  const std::uint64_t slot = pn % kReplayWindowSize;
  bits_[slot / 64] |= std::uint64_t{1} << (slot % 64);
}

}  // namespace buckwild::crypto

// Differential target for packet-number expansion and the replay window
// (core/crypto/replay_guard): every step is checked against a plain reference
// model (the closest candidate by 128-bit arithmetic; a set of the numbers
// seen), and any disagreement aborts.
//
// The input is a list of operations, each one byte of kind and then its
// operands:
//   0  receive a packet number near the largest: a signed distance (varint
//      magnitude up to 2^63) from largest + 1, sent as its low 32 bits
//   1  receive a raw 32-bit wire value
//   2  receive an arbitrary 64-bit packet number directly (a jump: also what
//      reaches the top of the number space)
// and bit 0x80 of the kind byte says the packet authenticated (commit it when
// check() passed).
#include <cstdint>
#include <cstdlib>
#include <set>

#include "core/crypto/replay_guard.h"

using namespace buckwild;

namespace {

using u128 = unsigned __int128;

// The 64-bit number with low bits `wire` closest to largest + 1; a tie goes to
// the larger one. Candidates outside 0 .. 2^64 - 1 do not exist.
std::uint64_t reference_expand(std::uint32_t wire, std::uint64_t largest) {
  const u128 expected = u128{largest} + 1;
  const u128 base = (expected >> 32) << 32;
  std::uint64_t best = 0;
  u128 best_distance = ~u128{0};
  bool have = false;
  for (int k = -1; k <= 1; ++k) {
    if (k < 0 && base == 0) continue;
    const u128 c = (k < 0 ? base - (u128{1} << 32) : base + (u128{static_cast<unsigned>(k)} << 32)) | wire;
    if (c > u128{~std::uint64_t{0}}) continue;
    const u128 d = c > expected ? c - expected : expected - c;
    if (!have || d < best_distance || (d == best_distance && c > best)) {
      best = static_cast<std::uint64_t>(c);
      best_distance = d;
      have = true;
    }
  }
  if (!have) std::abort();
  return best;
}

struct ReferenceWindow {
  bool empty = true;
  std::uint64_t largest = 0;
  std::set<std::uint64_t> seen;  // within largest - 4095 .. largest

  bool check(std::uint64_t pn) const {
    if (empty || pn > largest) return true;
    if (largest - pn >= crypto::kReplayWindowSize) return false;
    return !seen.contains(pn);
  }
  void commit(std::uint64_t pn) {
    if (empty) {
      empty = false;
      largest = pn;
    } else if (pn > largest) {
      largest = pn;
    } else if (largest - pn >= crypto::kReplayWindowSize) {
      return;
    }
    seen.insert(pn);
    const std::uint64_t floor = largest >= crypto::kReplayWindowSize - 1
                                    ? largest - (crypto::kReplayWindowSize - 1)
                                    : 0;
    seen.erase(seen.begin(), seen.lower_bound(floor));
  }
};

class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = v << 8 | u8();
    return v;
  }
  std::uint64_t u64() { return std::uint64_t{u32()} << 32 | u32(); }
  // 7 bits a byte, at most 9 bytes (up to 2^63 - 1).
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int i = 0; i < 9; ++i) {
      const std::uint8_t b = u8();
      v |= std::uint64_t{b & 0x7fu} << (7 * i);
      if ((b & 0x80) == 0) break;
    }
    return v;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(data, size);
  crypto::ReplayWindow window;
  ReferenceWindow model;
  for (int step = 0; step < 4096 && !in.empty(); ++step) {
    const std::uint8_t kind = in.u8();
    const bool authentic = (kind & 0x80) != 0;
    std::uint64_t pn = 0;
    switch ((kind & 0x7f) % 3) {
      case 0: {
        const std::uint8_t sign = in.u8();
        const std::uint64_t distance = in.varint();
        const u128 expected = u128{window.largest()} + (window.empty() ? 0 : 1);
        const u128 target = (sign & 1) ? (distance > expected ? 0 : expected - distance)
                                       : expected + distance;
        const std::uint32_t wire = static_cast<std::uint32_t>(target);
        pn = crypto::expand_packet_number(wire, window.largest());
        if (pn != reference_expand(wire, window.largest())) std::abort();
        // Within half the 32-bit space of what was expected, expansion finds
        // the number the sender meant.
        if (distance < (std::uint64_t{1} << 31) && target <= u128{~std::uint64_t{0}} &&
            window.largest() != ~std::uint64_t{0} && pn != static_cast<std::uint64_t>(target))
          std::abort();
        break;
      }
      case 1: {
        const std::uint32_t wire = in.u32();
        pn = crypto::expand_packet_number(wire, window.largest());
        if (pn != reference_expand(wire, window.largest()) || static_cast<std::uint32_t>(pn) != wire)
          std::abort();
        break;
      }
      default:
        pn = in.u64();
        break;
    }
    const bool fresh = window.check(pn);
    if (fresh != model.check(pn)) std::abort();
    if (fresh && authentic) {
      window.commit(pn);
      model.commit(pn);
      if (window.check(pn) || window.largest() != model.largest || window.empty()) std::abort();
    }
  }
  return 0;
}

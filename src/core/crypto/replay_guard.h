// Replay protection for packet numbers.
//
// Each (session, direction) numbers its packets 0, 1, 2, ... with a 64-bit
// packet number of which the wire carries the low 32 bits. The receiver expands
// the wire value against the largest number it has accepted, checks it against
// a 4096-packet sliding window, and commits it once the packet authenticated.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace buckwild::crypto {

inline constexpr std::size_t kReplayWindowSize = 4096;

// The 64-bit packet number whose low 32 bits are `wire` and which is closest to
// largest_received + 1 (RFC 9000 §A.3 with a 32-bit packet number; a tie goes
// to the larger candidate). Candidates below 0 or above 2^64 - 1 are never
// returned: the one that stays in range is used instead. Before anything was
// received pass 0.
std::uint64_t expand_packet_number(std::uint32_t wire, std::uint64_t largest_received);

// Which of the last 4096 packet numbers (largest - 4095 .. largest) were seen,
// as a ring of 64 64-bit words indexed by pn mod 4096. Not thread-safe.
class ReplayWindow {
 public:
  // True if `pn` is new: nothing was committed yet, pn > largest(), or pn is
  // within largest() - 4095 .. largest() and not committed. False if pn is older
  // than largest() - 4095 or was committed.
  bool check(std::uint64_t pn) const;

  // Records `pn` as seen, sliding the window forward when pn > largest() (a jump
  // of 4096 or more forgets everything before pn). Call only after check(pn)
  // returned true and the packet authenticated; committing a number older than
  // the window is a no-op.
  void commit(std::uint64_t pn);

  // Largest committed packet number; 0 when empty().
  std::uint64_t largest() const { return largest_; }
  // True until the first commit().
  bool empty() const { return empty_; }

 private:
  static constexpr std::size_t kWords = kReplayWindowSize / 64;

  // Clears the bits of packet numbers from .. from + count - 1 (count <= 4096).
  void clear_range(std::uint64_t from, std::uint64_t count);
  bool test_bit(std::uint64_t pn) const;
  void set_bit(std::uint64_t pn);

  std::array<std::uint64_t, kWords> bits_{};
  std::uint64_t largest_ = 0;
  bool empty_ = true;
};

}  // namespace buckwild::crypto

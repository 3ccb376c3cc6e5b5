// The bytes all connections' buffers may hold together past what each is
// guaranteed (docs/architecture.md "Transparent TCP": memory). Stream rings
// charge it for storage past their first kGuaranteedRing bytes, which they
// may always hold (so every connection makes progress: a window of that much
// opens as its reader drains it), and reorder pages for all of theirs; both
// give back when they shrink. A host's worst case is then
// flows x 2 x kGuaranteedRing + the limit.
//
// Pure accounting on one thread: no locking, no allocation of its own.
#pragma once

#include <cstddef>
#include <cstdint>

namespace buckwild::conn {

class MemoryBudget {
 public:
  // What a stream ring may hold without asking.
  static constexpr std::size_t kGuaranteedRing = 64 * 1024;

  explicit MemoryBudget(std::size_t limit) : limit_(limit) {}

  // Charges `n` bytes if they fit under the limit; counts a refusal if not.
  bool try_charge(std::size_t n) {
    if (n > available()) {
      ++refusals_;
      return false;
    }
    used_ += n;
    return true;
  }
  // Charges `n` bytes even past the limit (after a new, lower limit).
  void charge(std::size_t n) { used_ += n; }
  void release(std::size_t n) { used_ = n > used_ ? 0 : used_ - n; }

  std::size_t available() const { return used_ >= limit_ ? 0 : limit_ - used_; }
  std::size_t used() const { return used_; }
  std::size_t limit() const { return limit_; }
  // A new limit (a reload): memory held over it stays until released.
  void set_limit(std::size_t limit) { limit_ = limit; }
  // Growth refused because the budget was spent.
  std::uint64_t refusals() const { return refusals_; }

 private:
  std::size_t limit_;
  std::size_t used_ = 0;
  std::uint64_t refusals_ = 0;
};

}  // namespace buckwild::conn

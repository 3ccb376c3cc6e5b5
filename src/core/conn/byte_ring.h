// A FIFO of bytes with a hard capacity, stored as a ring that grows on demand.
//
// Connections keep their send and receive streams in ByteRings. Storage starts
// empty (an idle connection costs nothing) and doubles, up to the capacity, the
// first time more room is needed; after that the ring never allocates again, so
// steady-state traffic is allocation-free. With a MemoryBudget, growth past
// MemoryBudget::kGuaranteedRing is charged to it, and free() counts only the
// room the budget can still give.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/common/bytes.h"
#include "core/conn/memory_budget.h"

namespace buckwild::conn {

class ByteRing {
 public:
  // A ring that will never hold more than `capacity` bytes; its storage is
  // charged to `budget` if there is one (which must outlive it).
  explicit ByteRing(std::size_t capacity, MemoryBudget* budget = nullptr)
      : capacity_(capacity), budget_(budget) {}
  ~ByteRing() { release_storage(); }
  ByteRing(ByteRing&& other) noexcept;
  ByteRing& operator=(ByteRing&& other) noexcept;
  ByteRing(const ByteRing&) = delete;
  ByteRing& operator=(const ByteRing&) = delete;

  std::size_t size() const { return size_; }
  std::size_t capacity() const { return capacity_; }
  // The bytes push() takes now: the capacity's room, and with a budget no
  // more than the storage it can still grow to.
  std::size_t free() const;
  bool empty() const { return size_ == 0; }
  // Bytes of storage currently allocated (for memory accounting).
  std::size_t allocated() const { return buf_.capacity(); }

  // Appends as much of `in` as fits; returns the number of bytes appended.
  std::size_t push(Bytes in);

  // Copies out.size() bytes starting `offset` bytes after the front into `out`.
  // Precondition: offset + out.size() <= size() (asserted).
  void copy_out(std::size_t offset, MutableBytes out) const;

  // Discards the first `n` bytes. Precondition: n <= size() (asserted).
  void pop(std::size_t n);

  // Releases the storage when the ring is empty (an idle connection's memory
  // goes back to the allocator); a no-op otherwise.
  void release_if_empty();

 private:
  void grow(std::size_t needed);
  // The largest storage the budget allows (the capacity without one).
  std::size_t storage_limit() const;
  void release_storage();

  std::vector<std::uint8_t> buf_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  std::size_t capacity_;
  MemoryBudget* budget_;
  std::size_t charged_ = 0;  // buf_'s bytes past kGuaranteedRing: those charged to the budget
};

}  // namespace buckwild::conn

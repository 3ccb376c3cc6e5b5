// A FIFO of bytes with a hard capacity, stored as a ring that grows on demand.
//
// Connections keep their send and receive streams in ByteRings. Storage starts
// empty (an idle connection costs nothing) and doubles, up to the capacity, the
// first time more room is needed; after that the ring never allocates again, so
// steady-state traffic is allocation-free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/common/bytes.h"

namespace buckwild::conn {

class ByteRing {
 public:
  // A ring that will never hold more than `capacity` bytes.
  explicit ByteRing(std::size_t capacity) : capacity_(capacity) {}

  std::size_t size() const { return size_; }
  std::size_t capacity() const { return capacity_; }
  std::size_t free() const { return capacity_ - size_; }
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

  std::vector<std::uint8_t> buf_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  std::size_t capacity_;
};

}  // namespace buckwild::conn

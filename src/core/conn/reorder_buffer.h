// Out-of-order segments waiting for the gap before them to fill.
//
// A ring of `slots` fixed-size slots; slot d holds the segment d positions after
// the next expected one (d = 0 is the next expected segment itself, which only
// sits here when the in-order stream had no room for it). Lookup and insertion
// are O(1), duplicates are recognised by an occupied slot, and the memory is
// bounded by construction: at most slots x (slot_size + 2) bytes, allocated the
// first time a segment arrives out of order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/common/bytes.h"

namespace buckwild::conn {

class ReorderBuffer {
 public:
  // `slots` >= 1 slots of `slot_size` >= 1 bytes each.
  ReorderBuffer(std::size_t slots, std::size_t slot_size);

  enum class Store { kStored, kDuplicate, kRejected };
  // Stores `payload` (1..slot_size bytes) as the segment `distance` ahead of the
  // next expected one. kDuplicate if that slot is already occupied; kRejected
  // if distance >= slots() or the payload is empty or too large.
  Store store(std::size_t distance, Bytes payload);

  bool has(std::size_t distance) const;
  // The payload at distance 0, or an empty span.
  Bytes front() const;
  // The next expected segment arrived (or front() was consumed): everything
  // moves one position closer and slot 0 is freed.
  void advance();

  // Frees the storage while nothing is stored (it is allocated again on the
  // next store).
  void release_if_empty();

  std::size_t count() const { return count_; }
  std::size_t slots() const { return slots_; }
  std::size_t slot_size() const { return slot_size_; }
  // Bytes of storage allocated (for memory accounting).
  std::size_t allocated() const {
    return storage_.capacity() + lengths_.capacity() * sizeof(std::uint16_t);
  }

 private:
  std::size_t slot(std::size_t distance) const { return (head_ + distance) % slots_; }

  std::vector<std::uint8_t> storage_;    // slots x slot_size, allocated on first store
  std::vector<std::uint16_t> lengths_;   // 0 = empty; allocated on first store
  std::size_t slot_size_;
  std::size_t slots_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
};

}  // namespace buckwild::conn

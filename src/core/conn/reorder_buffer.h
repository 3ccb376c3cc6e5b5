// Out-of-order segments waiting for the gap before them to fill.
//
// A ring of `slots` fixed-size slots; slot d holds the segment d positions after
// the next expected one (d = 0 is the next expected segment itself, which only
// sits here when the in-order stream had no room for it). Lookup and insertion
// are O(1) and duplicates are recognised by an occupied slot. Storage comes in
// pages of kSlotsPerPage slots, allocated when a segment first lands in one
// and freed when its last one leaves, so memory follows what is held (a lost
// segment costs the page or two its followers land in, not the whole range),
// and with a MemoryBudget each page is charged to it: a page the budget
// cannot give refuses the segment (the sender sends it again).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/common/bytes.h"
#include "core/conn/memory_budget.h"

namespace buckwild::conn {

class ReorderBuffer {
 public:
  static constexpr std::size_t kSlotsPerPage = 16;  // fewer if there are fewer slots

  // `slots` >= 1 slots of `slot_size` >= 1 bytes each; pages charged to
  // `budget` if there is one (which must outlive the buffer).
  ReorderBuffer(std::size_t slots, std::size_t slot_size, MemoryBudget* budget = nullptr);
  ~ReorderBuffer();
  ReorderBuffer(ReorderBuffer&& other) noexcept;
  ReorderBuffer& operator=(ReorderBuffer&& other) noexcept;
  ReorderBuffer(const ReorderBuffer&) = delete;
  ReorderBuffer& operator=(const ReorderBuffer&) = delete;

  enum class Store { kStored, kDuplicate, kRejected };
  // Stores `payload` (1..slot_size bytes) as the segment `distance` ahead of the
  // next expected one. kDuplicate if that slot is already occupied; kRejected
  // if distance >= slots(), the payload is empty or too large, or the budget
  // cannot give its page.
  Store store(std::size_t distance, Bytes payload);

  bool has(std::size_t distance) const;
  // Empties the slot at `distance` (a store the caller takes back).
  void erase(std::size_t distance);
  // The payload at distance 0, or an empty span.
  Bytes front() const;
  // The next expected segment arrived (or front() was consumed): everything
  // moves one position closer and slot 0 is freed.
  void advance();

  // Frees the slot table while nothing is stored (pages go as they empty).
  void release_if_empty();

  std::size_t count() const { return count_; }
  std::size_t slots() const { return slots_; }
  std::size_t slot_size() const { return slot_size_; }
  // Bytes of storage allocated (for memory accounting).
  std::size_t allocated() const {
    return pages_in_use_ * page_bytes() + lengths_.capacity() * sizeof(std::uint16_t) +
           pages_.capacity() * sizeof(Page);
  }

 private:
  struct Page {
    std::unique_ptr<std::uint8_t[]> bytes;
    std::uint8_t used = 0;  // occupied slots in it
  };
  std::size_t slot(std::size_t distance) const { return (head_ + distance) % slots_; }
  std::size_t page_bytes() const { return per_page_ * slot_size_; }
  std::uint8_t* slot_bytes(std::size_t i) const {
    return pages_[i / per_page_].bytes.get() + (i % per_page_) * slot_size_;
  }
  void free_slot(std::size_t i);

  std::vector<Page> pages_;              // slots / per_page_ (rounded up), on first store
  std::vector<std::uint16_t> lengths_;   // 0 = empty; allocated on first store
  std::size_t slot_size_;
  std::size_t slots_;
  std::size_t per_page_;
  MemoryBudget* budget_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::size_t pages_in_use_ = 0;
};

}  // namespace buckwild::conn

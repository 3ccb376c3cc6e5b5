#include "core/conn/reorder_buffer.h"

#include <cassert>
#include <cstring>
#include <utility>

namespace buckwild::conn {

ReorderBuffer::ReorderBuffer(std::size_t slots, std::size_t slot_size, MemoryBudget* budget)
    : slot_size_(slot_size),
      slots_(slots),
      per_page_(slots < kSlotsPerPage ? slots : kSlotsPerPage),
      budget_(budget) {
  assert(slots >= 1 && slot_size >= 1 && slot_size <= 0xFFFF);
}

ReorderBuffer::~ReorderBuffer() {
  if (budget_ != nullptr) budget_->release(pages_in_use_ * page_bytes());
}

ReorderBuffer::ReorderBuffer(ReorderBuffer&& other) noexcept
    : pages_(std::move(other.pages_)),
      lengths_(std::move(other.lengths_)),
      slot_size_(other.slot_size_),
      slots_(other.slots_),
      per_page_(other.per_page_),
      budget_(other.budget_),
      head_(other.head_),
      count_(other.count_),
      pages_in_use_(other.pages_in_use_) {
  other.pages_.clear();
  other.lengths_.clear();
  other.count_ = other.pages_in_use_ = 0;
}

ReorderBuffer& ReorderBuffer::operator=(ReorderBuffer&& other) noexcept {
  if (this == &other) return *this;
  if (budget_ != nullptr) budget_->release(pages_in_use_ * page_bytes());
  pages_ = std::move(other.pages_);
  lengths_ = std::move(other.lengths_);
  slot_size_ = other.slot_size_;
  slots_ = other.slots_;
  per_page_ = other.per_page_;
  budget_ = other.budget_;
  head_ = other.head_;
  count_ = other.count_;
  pages_in_use_ = other.pages_in_use_;
  other.pages_.clear();
  other.lengths_.clear();
  other.count_ = other.pages_in_use_ = 0;
  return *this;
}

ReorderBuffer::Store ReorderBuffer::store(std::size_t distance, Bytes payload) {
  if (distance >= slots_ || payload.empty() || payload.size() > slot_size_) {
    return Store::kRejected;
  }
  if (lengths_.empty()) {
    lengths_.assign(slots_, 0);
    pages_.resize((slots_ + per_page_ - 1) / per_page_);
  }
  const std::size_t i = slot(distance);
  if (lengths_[i] != 0) return Store::kDuplicate;
  Page& page = pages_[i / per_page_];
  if (!page.bytes) {
    if (budget_ != nullptr && !budget_->try_charge(page_bytes())) return Store::kRejected;
    page.bytes = std::make_unique_for_overwrite<std::uint8_t[]>(page_bytes());
    ++pages_in_use_;
  }
  std::memcpy(slot_bytes(i), payload.data(), payload.size());
  lengths_[i] = static_cast<std::uint16_t>(payload.size());
  ++page.used;
  ++count_;
  return Store::kStored;
}

bool ReorderBuffer::has(std::size_t distance) const {
  return !lengths_.empty() && distance < slots_ && lengths_[slot(distance)] != 0;
}

Bytes ReorderBuffer::front() const {
  if (lengths_.empty()) return {};
  const std::size_t i = slot(0);
  if (lengths_[i] == 0) return {};
  return Bytes(slot_bytes(i), lengths_[i]);
}

void ReorderBuffer::free_slot(std::size_t i) {
  lengths_[i] = 0;
  --count_;
  Page& page = pages_[i / per_page_];
  if (--page.used == 0) {
    page.bytes.reset();
    --pages_in_use_;
    if (budget_ != nullptr) budget_->release(page_bytes());
  }
}

void ReorderBuffer::erase(std::size_t distance) {
  if (has(distance)) free_slot(slot(distance));
}

void ReorderBuffer::advance() {
  if (!lengths_.empty()) {
    const std::size_t i = slot(0);
    if (lengths_[i] != 0) free_slot(i);
  }
  head_ = (head_ + 1) % slots_;
}

void ReorderBuffer::release_if_empty() {
  if (count_ != 0) return;
  assert(pages_in_use_ == 0);
  std::vector<Page>().swap(pages_);
  std::vector<std::uint16_t>().swap(lengths_);
}

}  // namespace buckwild::conn

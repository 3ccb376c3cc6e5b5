#include "core/conn/reorder_buffer.h"

#include <cassert>
#include <cstring>

namespace buckwild::conn {

ReorderBuffer::ReorderBuffer(std::size_t slots, std::size_t slot_size)
    : slot_size_(slot_size), slots_(slots) {
  assert(slots >= 1 && slot_size >= 1 && slot_size <= 0xFFFF);
}

ReorderBuffer::Store ReorderBuffer::store(std::size_t distance, Bytes payload) {
  if (distance >= slots_ || payload.empty() || payload.size() > slot_size_) {
    return Store::kRejected;
  }
  if (lengths_.empty()) {
    lengths_.assign(slots_, 0);
    storage_.resize(slots_ * slot_size_);
  }
  const std::size_t i = slot(distance);
  if (lengths_[i] != 0) return Store::kDuplicate;
  std::memcpy(storage_.data() + i * slot_size_, payload.data(), payload.size());
  lengths_[i] = static_cast<std::uint16_t>(payload.size());
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
  return Bytes(storage_.data() + i * slot_size_, lengths_[i]);
}

void ReorderBuffer::advance() {
  if (!lengths_.empty()) {
    const std::size_t i = slot(0);
    if (lengths_[i] != 0) {
      lengths_[i] = 0;
      --count_;
    }
  }
  head_ = (head_ + 1) % slots_;
}

void ReorderBuffer::release_if_empty() {
  if (count_ != 0) return;
  std::vector<std::uint8_t>().swap(storage_);
  std::vector<std::uint16_t>().swap(lengths_);
}

}  // namespace buckwild::conn

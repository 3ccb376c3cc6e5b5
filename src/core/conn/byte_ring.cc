#include "core/conn/byte_ring.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace buckwild::conn {
namespace {
constexpr std::size_t kMinAllocation = 4096;
}

ByteRing::ByteRing(ByteRing&& other) noexcept
    : buf_(std::move(other.buf_)),
      head_(other.head_),
      size_(other.size_),
      capacity_(other.capacity_),
      budget_(other.budget_),
      charged_(other.charged_) {
  other.buf_.clear();
  other.head_ = other.size_ = other.charged_ = 0;
}

ByteRing& ByteRing::operator=(ByteRing&& other) noexcept {
  if (this == &other) return *this;
  release_storage();
  buf_ = std::move(other.buf_);
  head_ = other.head_;
  size_ = other.size_;
  capacity_ = other.capacity_;
  budget_ = other.budget_;
  charged_ = other.charged_;
  other.buf_.clear();
  other.head_ = other.size_ = other.charged_ = 0;
  return *this;
}

std::size_t ByteRing::storage_limit() const {
  if (budget_ == nullptr) return capacity_;
  const std::size_t unguarded = buf_.size() > MemoryBudget::kGuaranteedRing
                                    ? buf_.size()
                                    : MemoryBudget::kGuaranteedRing;
  return std::min(capacity_, unguarded + budget_->available());
}

std::size_t ByteRing::free() const { return std::max(buf_.size(), storage_limit()) - size_; }

std::size_t ByteRing::push(Bytes in) {
  const std::size_t n = std::min(in.size(), free());
  if (n == 0) return 0;
  if (size_ + n > buf_.size()) grow(size_ + n);
  const std::size_t cap = buf_.size();
  const std::size_t tail = (head_ + size_) % cap;
  const std::size_t first = std::min(n, cap - tail);
  std::memcpy(buf_.data() + tail, in.data(), first);
  if (n > first) std::memcpy(buf_.data(), in.data() + first, n - first);
  size_ += n;
  return n;
}

void ByteRing::copy_out(std::size_t offset, MutableBytes out) const {
  assert(offset + out.size() <= size_);
  if (out.empty()) return;
  const std::size_t cap = buf_.size();
  const std::size_t start = (head_ + offset) % cap;
  const std::size_t first = std::min(out.size(), cap - start);
  std::memcpy(out.data(), buf_.data() + start, first);
  if (out.size() > first) std::memcpy(out.data() + first, buf_.data(), out.size() - first);
}

void ByteRing::pop(std::size_t n) {
  assert(n <= size_);
  size_ -= n;
  head_ = size_ == 0 ? 0 : (head_ + n) % buf_.size();
}

void ByteRing::release_if_empty() {
  if (size_ != 0 || buf_.empty()) return;
  release_storage();
  head_ = 0;
}

void ByteRing::release_storage() {
  std::vector<std::uint8_t>().swap(buf_);
  if (budget_ != nullptr) budget_->release(charged_);
  charged_ = 0;
}

// Doubles (at least) to fit `needed` bytes, never past the capacity or what
// the budget allows (free() said `needed` fits), and linearises the contents
// at the start of the new storage.
void ByteRing::grow(std::size_t needed) {
  std::size_t next = std::max({needed, buf_.size() * 2, kMinAllocation});
  next = std::min(next, std::max(needed, storage_limit()));
  assert(next >= needed && next <= capacity_);
  if (budget_ != nullptr) {
    // Only the bytes past kGuaranteedRing are charged (free() made sure
    // they fit).
    const std::size_t above = next > MemoryBudget::kGuaranteedRing ? next - MemoryBudget::kGuaranteedRing : 0;
    if (above > charged_ && !budget_->try_charge(above - charged_)) budget_->charge(above - charged_);
    charged_ = std::max(charged_, above);
  }
  std::vector<std::uint8_t> bigger(next);
  if (size_ > 0) {
    const std::size_t cap = buf_.size();
    const std::size_t first = std::min(size_, cap - head_);
    std::memcpy(bigger.data(), buf_.data() + head_, first);
    if (size_ > first) std::memcpy(bigger.data() + first, buf_.data(), size_ - first);
  }
  buf_.swap(bigger);
  head_ = 0;
}

}  // namespace buckwild::conn

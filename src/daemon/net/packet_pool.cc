#include "daemon/net/packet_pool.h"

#include <cassert>
#include <new>

namespace buckwild::daemon {

void PacketPool::AlignedDelete::operator()(std::uint8_t* p) const {
  ::operator delete[](p, std::align_val_t{kAlignment});
}

PacketPool::PacketPool(std::size_t count, std::size_t buffer_size)
    : count_(count),
      buffer_size_(buffer_size),
      stride_((buffer_size + kAlignment - 1) / kAlignment * kAlignment),
      storage_(static_cast<std::uint8_t*>(
          ::operator new[](stride_* count, std::align_val_t{kAlignment}))) {
  assert(count >= 1 && buffer_size >= 1 && count <= UINT32_MAX);
  free_.reserve(count);
  // Hand out low indices first: the most recently used buffers stay warm.
  for (std::size_t i = count; i > 0; --i) free_.push_back(static_cast<std::uint32_t>(i - 1));
}

PacketPool::~PacketPool() {
  // A Buffer outliving its pool would write into freed memory when released.
  assert(free_.size() == count_ && "PacketPool destroyed while buffers are still out");
}

PacketPool::Buffer PacketPool::acquire() {
  if (free_.empty()) return Buffer();
  std::uint32_t index = free_.back();
  free_.pop_back();
  return Buffer(this, index);
}

MutableBytes PacketPool::Buffer::space() const {
  if (pool_ == nullptr) return {};
  return {pool_->slot(index_), pool_->buffer_size_};
}

std::size_t PacketPool::Buffer::capacity() const {
  return pool_ != nullptr ? pool_->buffer_size_ : 0;
}

void PacketPool::Buffer::set_length(std::size_t n) {
  assert(n <= capacity());
  length_ = n;
}

void PacketPool::Buffer::release() {
  if (pool_ == nullptr) return;
  pool_->give_back(index_);
  pool_ = nullptr;
  length_ = 0;
}

}  // namespace buckwild::daemon

// Fixed-size packet buffers, allocated once: the data path takes and returns
// buffers without touching the heap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "core/common/bytes.h"

namespace buckwild::daemon {

// `count` buffers of `buffer_size` bytes each, in one cache-line-aligned
// block. Not thread-safe. The pool must outlive every Buffer taken from it
// (asserted in debug builds).
class PacketPool {
 public:
  // A move-only handle to one buffer; gives it back to the pool when destroyed.
  // A default-constructed or moved-from Buffer is empty (holds nothing).
  class Buffer {
   public:
    Buffer() = default;
    Buffer(Buffer&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)),
          index_(other.index_),
          length_(std::exchange(other.length_, 0)) {}
    Buffer& operator=(Buffer&& other) noexcept {
      if (this != &other) {
        release();
        pool_ = std::exchange(other.pool_, nullptr);
        index_ = other.index_;
        length_ = std::exchange(other.length_, 0);
      }
      return *this;
    }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    ~Buffer() { release(); }

    explicit operator bool() const { return pool_ != nullptr; }
    // The whole buffer (capacity bytes); empty for an empty handle.
    MutableBytes space() const;
    std::size_t capacity() const;
    // The bytes in use: the first length() bytes of space().
    MutableBytes payload() const { return space().first(length_); }
    std::size_t length() const { return length_; }
    // Precondition: n <= capacity().
    void set_length(std::size_t n);
    // Returns the buffer to the pool now; the handle becomes empty.
    void release();

   private:
    friend class PacketPool;
    Buffer(PacketPool* pool, std::uint32_t index) : pool_(pool), index_(index) {}
    PacketPool* pool_ = nullptr;
    std::uint32_t index_ = 0;
    std::size_t length_ = 0;
  };

  // Preconditions: count >= 1, buffer_size >= 1, count < 2^32.
  PacketPool(std::size_t count, std::size_t buffer_size);
  PacketPool(const PacketPool&) = delete;
  PacketPool& operator=(const PacketPool&) = delete;
  ~PacketPool();

  // A free buffer (length 0), or an empty handle when all are in use: the
  // caller drops the packet and counts it (backpressure, never growth).
  Buffer acquire();

  std::size_t buffer_size() const { return buffer_size_; }
  std::size_t count() const { return count_; }
  std::size_t available() const { return free_.size(); }

 private:
  struct AlignedDelete {
    void operator()(std::uint8_t* p) const;
  };
  static constexpr std::size_t kAlignment = 64;

  std::uint8_t* slot(std::uint32_t index) const { return storage_.get() + index * stride_; }
  void give_back(std::uint32_t index) { free_.push_back(index); }

  std::size_t count_;
  std::size_t buffer_size_;
  std::size_t stride_;
  std::unique_ptr<std::uint8_t[], AlignedDelete> storage_;
  std::vector<std::uint32_t> free_;  // stack of free indices; capacity reserved up front
};

}  // namespace buckwild::daemon

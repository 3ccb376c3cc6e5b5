// Reads a fuzzer's input as a stream of numbers and byte runs; past the end,
// zeros and empty runs (so a target never reads out of bounds).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "core/common/bytes.h"

namespace buckwild::fuzz {

class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>((u8() << 8) | u8()); }
  std::uint32_t u32() { return (std::uint32_t{u16()} << 16) | u16(); }
  Bytes bytes(std::size_t n) {
    n = std::min(n, size_ - std::min(pos_, size_));
    Bytes out(data_ + pos_, n);
    pos_ += n;
    return out;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

}  // namespace buckwild::fuzz

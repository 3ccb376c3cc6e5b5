// Bounds-checked big-endian reading and writing over spans.
//
// Both types use a sticky failure flag: once a read or write would cross the end
// of the span, every later call is a no-op (reads yield zero) and ok() is false.
// Callers do a sequence of reads and check ok() once, which keeps codecs short
// without ever touching memory outside the span.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace buckwild {

using Bytes = std::span<const std::uint8_t>;
using MutableBytes = std::span<std::uint8_t>;

class ByteReader {
 public:
  explicit ByteReader(Bytes in) : in_(in) {}

  std::uint8_t u8() { return static_cast<std::uint8_t>(take(1)); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(take(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(take(4)); }
  std::uint64_t u64() { return take(8); }

  // Returns the next `n` bytes as a view into the input (empty on overrun).
  Bytes bytes(std::size_t n) {
    if (!ok_ || n > remaining()) {
      ok_ = false;
      return {};
    }
    Bytes out = in_.subspan(pos_, n);
    pos_ += n;
    return out;
  }

  // Copies the next N bytes into `out` (zero-filled on overrun).
  template <std::size_t N>
  void copy(std::array<std::uint8_t, N>& out) {
    Bytes b = bytes(N);
    if (b.size() == N) {
      std::memcpy(out.data(), b.data(), N);
    } else {
      out.fill(0);
    }
  }

  // Returns everything not read yet and marks it read.
  Bytes rest() { return bytes(remaining()); }

  std::size_t remaining() const { return ok_ ? in_.size() - pos_ : 0; }
  std::size_t position() const { return pos_; }
  bool ok() const { return ok_; }
  // True when every byte was read and no read overran.
  bool done() const { return ok_ && pos_ == in_.size(); }

 private:
  std::uint64_t take(std::size_t n) {
    if (!ok_ || n > in_.size() - pos_) {
      ok_ = false;
      return 0;
    }
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = (v << 8) | in_[pos_ + i];
    pos_ += n;
    return v;
  }

  Bytes in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

class ByteWriter {
 public:
  explicit ByteWriter(MutableBytes out) : out_(out) {}

  void u8(std::uint8_t v) { put(v, 1); }
  void u16(std::uint16_t v) { put(v, 2); }
  void u32(std::uint32_t v) { put(v, 4); }
  void u64(std::uint64_t v) { put(v, 8); }

  void bytes(Bytes b) {
    if (!ok_ || b.size() > out_.size() - pos_) {
      ok_ = false;
      return;
    }
    if (!b.empty()) std::memcpy(out_.data() + pos_, b.data(), b.size());
    pos_ += b.size();
  }

  void zeros(std::size_t n) {
    if (!ok_ || n > out_.size() - pos_) {
      ok_ = false;
      return;
    }
    std::memset(out_.data() + pos_, 0, n);
    pos_ += n;
  }

  std::size_t position() const { return pos_; }
  bool ok() const { return ok_; }
  MutableBytes written() const { return out_.first(pos_); }

 private:
  void put(std::uint64_t v, std::size_t n) {
    if (!ok_ || n > out_.size() - pos_) {
      ok_ = false;
      return;
    }
    for (std::size_t i = 0; i < n; ++i) {
      out_[pos_ + i] = static_cast<std::uint8_t>(v >> (8 * (n - 1 - i)));
    }
    pos_ += n;
  }

  MutableBytes out_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

// Big-endian stores and loads for fixed offsets in buffers the caller has sized.
inline void store_be32(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}
inline void store_be64(std::uint8_t* p, std::uint64_t v) {
  store_be32(p, static_cast<std::uint32_t>(v >> 32));
  store_be32(p + 4, static_cast<std::uint32_t>(v));
}
inline std::uint32_t load_be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

}  // namespace buckwild

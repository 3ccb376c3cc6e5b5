#include "core/crypto/secret_bytes.h"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "core/crypto/constant_time.h"
#include "core/crypto/random.h"

namespace buckwild::crypto {

void ensure_sodium() {
  // C++ guarantees a function-local static is initialised exactly once, even
  // with concurrent callers, so sodium_init() runs once per process.
  static const bool initialised = [] {
    if (sodium_init() < 0) {
      std::fputs("buckwild: sodium_init() failed; cannot protect key material\n", stderr);
      std::abort();
    }
    return true;
  }();
  (void)initialised;
}

SecretBytes::SecretBytes(std::size_t size) {
  if (size == 0) return;
  ensure_sodium();
  auto* p = static_cast<std::uint8_t*>(sodium_malloc(size));
  if (p == nullptr) {
    std::fputs("buckwild: sodium_malloc() failed; refusing to keep secrets in unlocked memory\n",
               stderr);
    std::abort();
  }
  // sodium_malloc fills the region with a non-zero pattern on purpose.
  sodium_memzero(p, size);
  data_ = p;
  size_ = size;
}

SecretBytes SecretBytes::copy_of(Bytes bytes) {
  SecretBytes out(bytes.size());
  for (std::size_t i = 0; i < bytes.size(); ++i) out.data_[i] = bytes[i];
  return out;
}

SecretBytes SecretBytes::random(std::size_t size, RandomSource& rng) {
  SecretBytes out(size);
  if (size != 0) rng.fill(out.mutable_view());
  return out;
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SecretBytes::~SecretBytes() {
  release();
}

bool SecretBytes::equals(Bytes other) const {
  return ct_equal(view(), other);
}

void SecretBytes::release() {
  if (data_ == nullptr) return;
  sodium_memzero(data_, size_);
#ifndef NDEBUG
  // Catches a wipe that was optimised away or a buffer written through a
  // dangling pointer between the wipe and the free.
  if (sodium_is_zero(data_, size_) != 1) {
    std::fputs("buckwild: SecretBytes wipe did not read back as zero\n", stderr);
    std::abort();
  }
#endif
  sodium_free(data_);
  data_ = nullptr;
  size_ = 0;
}

}  // namespace buckwild::crypto

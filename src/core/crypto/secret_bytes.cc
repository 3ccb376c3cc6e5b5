#include "core/crypto/secret_bytes.h"

#include <sodium.h>

#include <atomic>
#include <bitset>
#include <cstdio>
#include <cstdlib>
#include <mutex>
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

namespace {

std::atomic<std::uint64_t> verified_wipes{0};

// Small secrets (keys, nonces, derived material: nearly all of them) come from
// fixed slots inside one sodium_malloc'd region — locked, guard-paged, canaried
// as a whole — instead of one sodium_malloc each. A sodium_malloc costs an
// mmap, two mprotects and an mlock, and its free the reverse: tens of µs, which
// made a discovery handshake spend most of its time in system calls. Larger
// secrets, and any beyond the pool, still get their own sodium_malloc.
class SlotPool {
 public:
  static constexpr std::size_t kSlotSize = 128;
  static constexpr std::size_t kSlots = 4096;  // 512 KiB locked

  static SlotPool& instance() {
    static SlotPool pool;
    return pool;
  }

  std::uint8_t* take(std::size_t size) {
    if (base_ == nullptr || size > kSlotSize) return nullptr;
    std::lock_guard lock(mutex_);
    for (std::size_t n = 0; n < kSlots; ++n) {
      std::size_t i = (next_ + n) % kSlots;
      if (!used_[i]) {
        used_[i] = true;
        next_ = (i + 1) % kSlots;
        return base_ + i * kSlotSize;
      }
    }
    return nullptr;
  }

  // True if `p` was a pool slot (and is now free again).
  bool give_back(std::uint8_t* p) {
    if (base_ == nullptr || p < base_ || p >= base_ + kSlots * kSlotSize) return false;
    std::lock_guard lock(mutex_);
    used_[static_cast<std::size_t>(p - base_) / kSlotSize] = false;
    return true;
  }

 private:
  SlotPool() {
    ensure_sodium();
    // Without locked memory for the pool, every secret falls back to its own sodium_malloc.
    base_ = static_cast<std::uint8_t*>(sodium_malloc(kSlots * kSlotSize));
  }

  std::mutex mutex_;
  std::uint8_t* base_ = nullptr;
  std::bitset<kSlots> used_;
  std::size_t next_ = 0;
};

}  // namespace

SecretBytes::SecretBytes(std::size_t size) {
  if (size == 0) return;
  ensure_sodium();
  if (std::uint8_t* slot = SlotPool::instance().take(size)) {
    sodium_memzero(slot, size);
    data_ = slot;
    size_ = size;
    return;
  }
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

std::uint64_t SecretBytes::wipes_verified() { return verified_wipes.load(std::memory_order_relaxed); }

bool SecretBytes::equals(Bytes other) const {
  return ct_equal(view(), other);
}

void SecretBytes::release() {
  if (data_ == nullptr) return;
  sodium_memzero(data_, size_);
  // In every build, not only debug ones (the architecture asks for runtime
  // verification of zeroing): catches a wipe that was optimised away or a
  // buffer written through a dangling pointer between the wipe and the free.
  // It reads at most 128 bytes for nearly every secret.
  if (sodium_is_zero(data_, size_) != 1) {
    std::fputs("buckwild: SecretBytes wipe did not read back as zero\n", stderr);
    std::abort();
  }
  verified_wipes.fetch_add(1, std::memory_order_relaxed);
  if (!SlotPool::instance().give_back(data_)) sodium_free(data_);
  data_ = nullptr;
  size_ = 0;
}

}  // namespace buckwild::crypto

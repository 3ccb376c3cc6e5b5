// Secret material (PSKs, keys, nonces, shared secrets) in locked, guarded memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/common/bytes.h"
#include "core/common/error.h"

namespace buckwild::crypto {

class RandomSource;

// A fixed-size buffer of secret bytes in memory from libsodium's sodium_malloc:
// guard pages around it, a canary in front, the pages mlock()ed so they never
// reach swap. Secrets up to 128 bytes take a slot in one such region shared by
// the process (cheap); larger ones get a sodium_malloc of their own. The
// destructor zeroes the bytes (sodium_memzero), checks in every build that
// every byte reads back as zero (aborting the process if not), and returns them
// (slot) or frees them (sodium_free, which also unlocks). Move-only; a
// moved-from object is empty.
class SecretBytes {
 public:
  SecretBytes() = default;
  // Allocates `size` zeroed bytes. Aborts the process if the secure allocator
  // fails: running on without locked memory for keys is not an option.
  explicit SecretBytes(std::size_t size);
  // Allocates and copies `bytes` in.
  static SecretBytes copy_of(Bytes bytes);
  // Allocates `size` bytes filled from `rng`.
  static SecretBytes random(std::size_t size, RandomSource& rng);

  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes();

  std::uint8_t* data() { return data_; }
  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  Bytes view() const { return {data_, size_}; }
  MutableBytes mutable_view() { return {data_, size_}; }

  // Constant-time equality of contents (sizes compared first).
  bool equals(Bytes other) const;

  // How many wipes the process has checked read back as zero (for tests and
  // diagnostics; every release of a non-empty secret is one).
  static std::uint64_t wipes_verified();

 private:
  void release();

  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

// Initialises libsodium once per process (idempotent, thread-safe). Every
// function here calls it; the daemon calls it early to fail fast.
void ensure_sodium();

}  // namespace buckwild::crypto

#include "core/crypto/constant_time.h"

#include <openssl/crypto.h>

namespace buckwild::crypto {

bool ct_equal(Bytes a, Bytes b) {
  // Lengths are public (they are wire sizes), so an early exit on them leaks nothing.
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace buckwild::crypto

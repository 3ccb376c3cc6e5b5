// Comparison without data-dependent timing.
#pragma once

#include "core/common/bytes.h"

namespace buckwild::crypto {

// True when `a` and `b` have the same length and contents. The time taken
// depends only on the lengths (CRYPTO_memcmp).
bool ct_equal(Bytes a, Bytes b);

}  // namespace buckwild::crypto

// HKDF-SHA256 (RFC 5869). Outputs are secrets and live in SecretBytes.
#pragma once

#include "core/common/bytes.h"
#include "core/crypto/secret_bytes.h"

namespace buckwild::crypto {

// HKDF-Extract: PRK = HMAC-SHA256(salt, ikm). An empty salt means 32 zero bytes.
SecretBytes hkdf_extract(Bytes salt, Bytes ikm);

// HKDF-Expand: `length` bytes (1 ≤ length ≤ 8160) from `prk` and `info`.
// Returns kInvalidParameter for a length out of range or a PRK shorter than 32 bytes.
Result<SecretBytes> hkdf_expand(Bytes prk, Bytes info, std::size_t length);

// Extract then expand.
Result<SecretBytes> hkdf(Bytes salt, Bytes ikm, Bytes info, std::size_t length);

}  // namespace buckwild::crypto

// Base64 for secrets: PSKs go between text and locked memory without passing
// through std::string or other unlocked heap buffers.
#pragma once

#include <expected>

#include "core/common/bytes.h"
#include "core/crypto/secret_bytes.h"

namespace buckwild::daemon {

enum class Base64Problem { kEmpty, kInvalid };

// Decodes standard base64 (RFC 4648 §4, "+/" alphabet; the '=' padding may be
// present or left out) into locked memory. Leading and trailing ASCII
// whitespace is ignored (a key file may end in a newline); inner whitespace is
// invalid. Uses libsodium's constant-time decoder so that decoding does not
// leak key bits through timing. The scratch buffer is locked memory too.
std::expected<crypto::SecretBytes, Base64Problem> decode_base64_secret(Bytes text);

// Encodes `data` as padded standard base64 into locked memory (no terminator:
// the returned size is exactly the text length).
crypto::SecretBytes encode_base64_secret(Bytes data);

}  // namespace buckwild::daemon

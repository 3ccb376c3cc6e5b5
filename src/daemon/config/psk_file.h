// Pre-shared keys from configuration text or key files, straight into locked
// memory. Problems are described without ever quoting key material.
#pragma once

#include <cstddef>
#include <expected>
#include <string>

#include "core/common/bytes.h"
#include "core/crypto/secret_bytes.h"

namespace buckwild::daemon {

inline constexpr std::size_t kMinPskBytes = 16;
inline constexpr std::size_t kMaxPskBytes = 64;
// A key file holds base64 text and perhaps a newline; anything larger is not one.
inline constexpr std::size_t kMaxKeyFileBytes = 4096;

// Decodes base64 `text` into a PSK of 16..64 bytes. Fails with a problem such
// as "is not valid base64 (standard alphabet)" or "decodes to 8 bytes; a PSK
// must be 16..64 bytes (buckwild genpsk makes 32)".
std::expected<crypto::SecretBytes, std::string> decode_psk(Bytes text);

// Reads a key file: a regular file of at most 4 KiB, not accessible by group
// or others (like ssh, so a world-readable key is refused rather than used),
// holding the key in base64 (surrounding whitespace ignored). Read into locked
// memory. Fails with a problem naming the path: "cannot open /etc/x: No such
// file or directory", "/etc/x is accessible by group or others (mode 0644);
// run: chmod 600 /etc/x", "the key in /etc/x decodes to 8 bytes; ...".
std::expected<crypto::SecretBytes, std::string> read_psk_file(const std::string& path);

}  // namespace buckwild::daemon

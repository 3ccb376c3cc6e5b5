// Connection offsets: a secret permutation of the 4096 connection ids of a
// session, so that connections hop on distinct ports.
//
// For the daily key of a day and a session id:
//   material = HKDF-SHA256(salt "connection_offset_salt", ikm daily_key,
//                          info "port_offset" || session_id (8 bytes BE), 256)
//   T[r][x]  = material[r*64 + x] & 0x3F        r in 0..3, x in 0..63
//   pi(id):  L = id >> 6, R = id & 63;
//            4 times: (L, R) = (R, L ^ T[r][R]);  return (L << 6) | R
// A balanced Feistel network is a permutation whatever its round functions, so
// distinct connection ids always get distinct offsets. (The reference derives
// each offset by HKDF-then-truncate, which can collide.)
#pragma once

#include "core/wire/messages.h"

#include <cstddef>
#include <cstdint>
#include <utility>

#include "core/common/bytes.h"
#include "core/common/error.h"
#include "core/crypto/secret_bytes.h"

namespace buckwild::hop {

inline constexpr std::uint16_t kMaxConnectionOffset = 4095;
using wire::kMaxConnectionId;  // id 0 is session-level traffic
inline constexpr std::size_t kConnectionIdCount = 4096;

// The offset permutation of one (day, session). Move-only; the round table is
// a secret and lives in SecretBytes.
class ConnectionOffsets {
 public:
  // Derives the permutation from the daily key of the day and the session id.
  // Fails: kInvalidParameter if daily_key is not 32 bytes.
  static Result<ConnectionOffsets> create(Bytes daily_key, std::uint64_t session_id);

  // Offset of `connection_id`, 0..4095. Precondition: connection_id <= 4095 (asserted).
  std::uint16_t offset(std::uint16_t connection_id) const;

 private:
  explicit ConnectionOffsets(crypto::SecretBytes table) : table_(std::move(table)) {}

  crypto::SecretBytes table_;  // 4 rounds x 64 entries, each 0..63
};

}  // namespace buckwild::hop

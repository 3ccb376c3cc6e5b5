// What a completed discovery hands to the session layer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/crypto/secret_bytes.h"
#include "core/wire/messages.h"

namespace buckwild::discovery {

struct Established {
  bool initiator = false;
  std::uint64_t session_id = 0;
  std::size_t psk_index = 0;       // index into this host's PskSet
  std::uint16_t features = 0;      // negotiated (features.h)
  crypto::SecretBytes session_key; // 32 bytes
  std::int64_t day = 0;            // UTC day whose daily key made the session key
  std::int32_t clock_offset_ms = 0;  // estimate of (peer's clock − ours)
  // The round trip that estimate was measured over (it is wrong by at most
  // half of it), ms; nullopt when unknown.
  std::optional<std::int32_t> clock_rtt_ms;
  std::uint32_t initial_sequence_i2r = 0;  // connection 0, initiator → responder
  std::uint32_t initial_sequence_r2i = 0;
  // The SEQUENCE_NEG (phase CONFIRM) the responder sends under the new session
  // keys and the initiator expects: it confirms both sides derived the same
  // session from the same contributions (§6.3 step 9).
  wire::SequenceNegBody sequence_confirm;
};

}  // namespace buckwild::discovery

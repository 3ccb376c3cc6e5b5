// The hashes and keys of the discovery exchange (docs/protocol.md §6.3). Every
// function here is a pure function of its inputs; initiator and responder call
// the same ones, so they cannot disagree about the construction.
#pragma once

#include <array>
#include <cstdint>

#include "core/common/bytes.h"
#include "core/common/error.h"
#include "core/crypto/hmac.h"
#include "core/crypto/pedersen.h"
#include "core/crypto/secret_bytes.h"
#include "core/wire/messages.h"

namespace buckwild::discovery {

using Tag = std::array<std::uint8_t, wire::kDiscoveryTagSize>;

// H1 = SHA-256("buckwild discovery v1 h1" || BE32(ts_I) || BE64(discovery_id) ||
//              nonce_I || ephemeral_I || commitment_I || BE16(features_I))
crypto::Digest discovery_hash(std::uint32_t discovery_timestamp_ms, const wire::DiscoveryBody& d);

// tag = first 16 bytes of HMAC(tag_key, "tag" || H1).
Tag psk_tag(crypto::HmacSha256& tag_mac, const crypto::Digest& h1);

// TH = SHA-256("buckwild discovery v1 th" || H1 || matched_tag || BE32(ts_R) ||
//              nonce_R || ephemeral_R || contribution_R || cookie || BE16(features_R))
crypto::Digest response_hash(const crypto::Digest& h1, std::uint32_t response_timestamp_ms,
                             const wire::DiscoveryResponseBody& r);

struct ProofKeys {
  crypto::SecretBytes responder;  // K_R, 32 bytes
  crypto::SecretBytes initiator;  // K_I, 32 bytes
};

// K_R || K_I = HKDF(salt "buckwild discovery v1", IKM tag_key || dh, info "proof keys" || TH, 64).
// `dh` is empty when forward secrecy is not negotiated.
Result<ProofKeys> proof_keys(Bytes tag_key, Bytes dh, const crypto::Digest& th);

// proof_R = HMAC(K_R, "response" || TH)
crypto::Digest response_proof(const ProofKeys& k, const crypto::Digest& th);

// The PSK selection commitment: Pedersen(v, r) with v = HMAC(K_I, "psk selection" || TH)
// and r = the scalar from HKDF-Expand(K_I, "psk selection blind", 64) reduced mod ℓ.
Result<crypto::Commitment> selection_commitment(const ProofKeys& k, const crypto::Digest& th);

// Session id = first 8 bytes of SHA-256("buckwild session id" || TH || s_I || s_R),
// big-endian; 0 maps to 1 (0 is reserved for anonymous discovery packets).
std::uint64_t derive_session_id(const crypto::Digest& th, Bytes contribution_i, Bytes contribution_r);

// TH_C = SHA-256("buckwild discovery v1 thc" || TH || BE64(session_id) || BE32(ts_C) ||
//                opening.value || opening.blind || selection_commitment)
crypto::Digest confirm_hash(const crypto::Digest& th, std::uint64_t session_id,
                            std::uint32_t confirm_timestamp_ms, const wire::Opening& opening,
                            const crypto::Commitment& selection);

// proof_I = HMAC(K_I, "confirm" || TH_C)
crypto::Digest confirm_proof(const ProofKeys& k, const crypto::Digest& thc);

// Initial sequence numbers of connection 0, one per direction:
// BE32(SHA-256("buckwild session isn" || s_I || s_R || dir)[0..4)).
std::uint32_t initial_sequence(Bytes contribution_i, Bytes contribution_r, std::uint8_t dir);

// The UTC day (days since 1970-01-01) on which a peer's `peer_ms_of_day` lies,
// judged from our own Unix time: the day that puts it closest to `now_unix_ms`.
std::int64_t peer_day(std::int64_t now_unix_ms, std::uint32_t peer_ms_of_day);

}  // namespace buckwild::discovery

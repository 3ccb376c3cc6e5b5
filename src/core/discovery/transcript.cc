#include "core/discovery/transcript.h"

#include <sodium.h>

#include <cstring>
#include <string_view>

#include "core/crypto/hkdf.h"
#include "core/hop/time_window.h"

namespace buckwild::discovery {
namespace {

Bytes ascii(std::string_view s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

template <std::size_t N>
std::array<std::uint8_t, N> be(std::uint64_t v) {
  std::array<std::uint8_t, N> out{};
  for (std::size_t i = 0; i < N; ++i) out[i] = static_cast<std::uint8_t>(v >> (8 * (N - 1 - i)));
  return out;
}

}  // namespace

crypto::Digest discovery_hash(std::uint32_t ts, const wire::DiscoveryBody& d) {
  auto ts_be = be<4>(ts);
  auto id_be = be<8>(d.discovery_id);
  auto f_be = be<2>(d.features);
  return crypto::sha256({ascii("buckwild discovery v1 h1"), ts_be, id_be, d.nonce, d.ephemeral,
                         d.commitment, f_be});
}

Tag psk_tag(crypto::HmacSha256& tag_mac, const crypto::Digest& h1) {
  crypto::Digest full = tag_mac.compute({ascii("tag"), h1});
  Tag t;
  std::memcpy(t.data(), full.data(), t.size());
  return t;
}

crypto::Digest response_hash(const crypto::Digest& h1, std::uint32_t ts,
                             const wire::DiscoveryResponseBody& r) {
  auto ts_be = be<4>(ts);
  auto f_be = be<2>(r.features);
  return crypto::sha256({ascii("buckwild discovery v1 th"), h1, r.matched_tag, ts_be, r.nonce,
                         r.ephemeral, r.contribution, r.cookie, f_be});
}

Result<ProofKeys> proof_keys(Bytes tag_key, Bytes dh, const crypto::Digest& th) {
  crypto::SecretBytes ikm(tag_key.size() + dh.size());
  std::memcpy(ikm.data(), tag_key.data(), tag_key.size());
  if (!dh.empty()) std::memcpy(ikm.data() + tag_key.size(), dh.data(), dh.size());
  std::array<std::uint8_t, 10 + 32> info{};
  std::memcpy(info.data(), "proof keys", 10);
  std::memcpy(info.data() + 10, th.data(), th.size());
  auto okm = crypto::hkdf(ascii("buckwild discovery v1"), ikm.view(), info, 64);
  if (!okm) return std::unexpected(okm.error());
  return ProofKeys{crypto::SecretBytes::copy_of(okm->view().first(32)),
                   crypto::SecretBytes::copy_of(okm->view().subspan(32, 32))};
}

crypto::Digest response_proof(const ProofKeys& k, const crypto::Digest& th) {
  return crypto::hmac_sha256(k.responder.view(), {ascii("response"), th});
}

Result<crypto::Commitment> selection_commitment(const ProofKeys& k, const crypto::Digest& th) {
  crypto::Digest v = crypto::hmac_sha256(k.initiator.view(), {ascii("psk selection"), th});
  auto wide = crypto::hkdf_expand(k.initiator.view(), ascii("psk selection blind"), 64);
  if (!wide) return std::unexpected(wide.error());
  crypto::SecretBytes blind(32);
  crypto::ensure_sodium();
  crypto_core_ristretto255_scalar_reduce(blind.data(), wide->data());
  return crypto::pedersen_commit(v, blind.view());
}

std::uint64_t derive_session_id(const crypto::Digest& th, Bytes ci, Bytes cr) {
  crypto::Digest d = crypto::sha256({ascii("buckwild session id"), th, ci, cr});
  std::uint64_t id = 0;
  for (int i = 0; i < 8; ++i) id = (id << 8) | d[static_cast<std::size_t>(i)];
  return id == 0 ? 1 : id;
}

crypto::Digest confirm_hash(const crypto::Digest& th, std::uint64_t session_id, std::uint32_t ts,
                            const wire::Opening& opening, const crypto::Commitment& selection) {
  auto sid = be<8>(session_id);
  auto ts_be = be<4>(ts);
  return crypto::sha256({ascii("buckwild discovery v1 thc"), th, sid, ts_be, opening.value,
                         opening.blind, selection});
}

crypto::Digest confirm_proof(const ProofKeys& k, const crypto::Digest& thc) {
  return crypto::hmac_sha256(k.initiator.view(), {ascii("confirm"), thc});
}

std::uint32_t initial_sequence(Bytes ci, Bytes cr, std::uint8_t dir) {
  std::uint8_t d[1] = {dir};
  crypto::Digest h = crypto::sha256({ascii("buckwild session isn"), ci, cr, Bytes(d, 1)});
  return load_be32(h.data());
}

std::int64_t peer_day(std::int64_t now_unix_ms, std::uint32_t peer_ms_of_day) {
  const std::int64_t day_ms = wire::kMsPerDay;
  std::int64_t today = now_unix_ms >= 0 ? now_unix_ms / day_ms : -((-now_unix_ms + day_ms - 1) / day_ms);
  std::int64_t best = today;
  std::int64_t best_dist = -1;
  for (std::int64_t d = today - 1; d <= today + 1; ++d) {
    std::int64_t dist = d * day_ms + peer_ms_of_day - now_unix_ms;
    if (dist < 0) dist = -dist;
    if (best_dist < 0 || dist < best_dist) {
      best = d;
      best_dist = dist;
    }
  }
  return best;
}

}  // namespace buckwild::discovery

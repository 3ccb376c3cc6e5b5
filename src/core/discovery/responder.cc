#include "core/discovery/responder.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <string_view>

#include "core/crypto/constant_time.h"
#include "core/crypto/hkdf.h"
#include "core/crypto/pedersen.h"
#include "core/crypto/x25519.h"
#include "core/discovery/envelope.h"
#include "core/discovery/transcript.h"
#include "core/hop/key_schedule.h"
#include "core/hop/time_window.h"

namespace buckwild::discovery {
namespace {

Bytes ascii(std::string_view s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

std::uint64_t random_u64(crypto::RandomSource& rng) {
  std::uint8_t b[8];
  rng.fill(MutableBytes(b, 8));
  std::uint64_t v = 0;
  for (std::uint8_t x : b) v = (v << 8) | x;
  return v;
}

bool fresh(std::uint32_t ts, std::int64_t now_unix_ms) {
  return hop::timestamp_fresh(ts, hop::ms_since_midnight(now_unix_ms), wire::kTimestampWindowMs);
}


// What the CONFIRM budget can establish while one cookie secret verifies.
std::size_t recent_capacity(const ResponderLimits& limits) {
  const double burst = std::max(1.0, limits.work_per_second / 10);
  const double most = limits.work_per_second * static_cast<double>(kCookieLifetime) / 1e6 + burst + 1;
  if (most >= static_cast<double>(limits.max_recent_sessions)) return limits.max_recent_sessions;
  return static_cast<std::size_t>(most);
}

}  // namespace

// Everything the responder contributes to one exchange, re-derivable from the
// cookie secret and the initiator's values.
struct Responder::Derived {
  // Derives e_R: as secret as the ephemeral key itself (issue #20, defect 9).
  crypto::SecretBytes seed;
  wire::Bytes16 nonce;
  crypto::SecretBytes ephemeral_private;
  wire::Bytes32 contribution;
  Fingerprint pad;  // hides the selected key's fingerprint in the cookie
  const crypto::SecretBytes* secret = nullptr;

  // cookie = first 24 bytes of HMAC(secret, "cookie" || seed || hint) || hint,
  // hint = fingerprint XOR pad.
  wire::Bytes32 cookie(const Fingerprint& fingerprint) const {
    Fingerprint hint;
    for (std::size_t i = 0; i < hint.size(); ++i) hint[i] = fingerprint[i] ^ pad[i];
    crypto::Digest mac = crypto::hmac_sha256(secret->view(), {ascii("cookie"), seed.view(), hint});
    wire::Bytes32 c;
    std::copy_n(mac.begin(), 24, c.begin());
    std::copy(hint.begin(), hint.end(), c.begin() + 24);
    return c;
  }
};

Responder::Responder(const PskSet& psks, ResponderPolicy policy, ResponderLimits limits,
                     crypto::RandomSource& rng, TimePoint now)
    : psks_(psks),
      policy_(policy),
      rng_(rng),
      sources_(limits.per_source_rate, limits.per_source_burst, limits.source_slots, random_u64(rng)),
      work_(limits.work_per_second, std::max(1.0, limits.work_per_second / 10)),
      confirm_work_(limits.work_per_second, std::max(1.0, limits.work_per_second / 10)),
      reserved_checks_(limits.reserved_checks_per_second,
                       std::max(1.0, limits.reserved_checks_per_second / 10)),
      per_psk_rate_(limits.per_source_rate),
      per_psk_burst_(limits.per_source_burst),
      answered_(limits.answered_slots, kCookieLifetime, random_u64(rng)),
      secrets_{crypto::SecretBytes::random(32, rng), crypto::SecretBytes::random(32, rng)},
      secret_made_{now, now},
      rotated_at_(now),
      recent_(kCookieLifetime, recent_capacity(limits)) {}

void Responder::set_limits(const ResponderLimits& limits, TimePoint now) {
  sources_.set_rate(limits.per_source_rate, limits.per_source_burst, now);
  const double burst = std::max(1.0, limits.work_per_second / 10);
  work_.set_rate(now, limits.work_per_second, burst);
  confirm_work_.set_rate(now, limits.work_per_second, burst);
  reserved_checks_.set_rate(now, limits.reserved_checks_per_second,
                            std::max(1.0, limits.reserved_checks_per_second / 10));
  per_psk_rate_ = limits.per_source_rate;
  per_psk_burst_ = limits.per_source_burst;
  for (Reserved& r : reserved_) r.bucket.set_rate(now, per_psk_rate_, per_psk_burst_);
  recent_.set_capacity(recent_capacity(limits));
}

void Responder::set_reserved(const std::vector<std::size_t>& psk_indices, TimePoint now) {
  std::vector<std::size_t> sorted;
  for (std::size_t i : psk_indices) {
    if (i < psks_.size()) sorted.push_back(i);
  }
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::vector<Reserved> next;
  for (std::size_t i : sorted) {
    // A PSK that stays keeps its bucket: a reload must not refill it.
    auto it = std::find_if(reserved_.begin(), reserved_.end(),
                           [i](const Reserved& r) { return r.psk_index == i; });
    next.push_back(it != reserved_.end() ? std::move(*it)
                                          : Reserved{i, TokenBucket(per_psk_rate_, per_psk_burst_)});
    next.back().bucket.available(now);
  }
  reserved_ = std::move(next);
}

namespace {

// Whether `t` is among a DISCOVERY's slots. Every slot is compared, as two
// 64-bit words without a branch: a flood of junk DISCOVERYs reaches this for
// each reserved PSK before any budget, so it must cost tens of nanoseconds
// (sorting the 64 slots for a binary search cost a microsecond), and the time
// it takes says nothing about where, or whether, the tag matched.
bool slots_contain(const std::array<Tag, wire::kDiscoverySlots>& slots, const Tag& t) {
  static_assert(sizeof(Tag) == 2 * sizeof(std::uint64_t));
  std::uint64_t t0, t1;
  std::memcpy(&t0, t.data(), 8);
  std::memcpy(&t1, t.data() + 8, 8);
  std::uint64_t hit = 0;
  for (const Tag& s : slots) {
    std::uint64_t s0, s1;
    std::memcpy(&s0, s.data(), 8);
    std::memcpy(&s1, s.data() + 8, 8);
    hit |= static_cast<std::uint64_t>(((s0 ^ t0) | (s1 ^ t1)) == 0);
  }
  return hit != 0;
}

}  // namespace

std::optional<std::pair<std::size_t, Tag>> Responder::match_reserved(
    const crypto::Digest& h1, const std::array<Tag, wire::kDiscoverySlots>& slots) const {
  std::optional<std::pair<std::size_t, Tag>> found;
  for (const Reserved& r : reserved_) {
    Tag t = psk_tag(psks_.tag_mac(r.psk_index), h1);
    if (!found && slots_contain(slots, t)) {
      found.emplace(r.psk_index, t);
    }
  }
  return found;
}

TimePoint Responder::next_expiry() const { return rotated_at_ + kCookieRotation; }

void Responder::on_expiry(TimePoint now) { rotate(now); }

void Responder::rotate(TimePoint now) {
  // The ephemeral keys of past exchanges die with the secret: forward secrecy
  // for the responder's share holds from at most 60 s after a RESPONSE.
  if (now - rotated_at_ >= 2 * kCookieRotation) {
    secrets_[1] = crypto::SecretBytes::random(32, rng_);
    secrets_[0] = crypto::SecretBytes::random(32, rng_);
    secret_made_ = {now, now};
    rotated_at_ = now;
  } else if (now - rotated_at_ >= kCookieRotation) {
    secrets_[1] = std::move(secrets_[0]);
    secret_made_[1] = secret_made_[0];
    secrets_[0] = crypto::SecretBytes::random(32, rng_);
    secret_made_[0] = now;
    rotated_at_ = now;
  }
}

bool Responder::admit(const Endpoint& from, TimePoint now) {
  if (!sources_.allow(from, now)) {
    ++counters_.rate_limited;
    return false;
  }
  return true;
}

Responder::Derived Responder::derive(const crypto::SecretBytes& secret, const Endpoint& from,
                                     std::uint32_t ts_i, const crypto::Digest& h1,
                                     const Tag& matched) const {
  std::uint8_t port_ts[6];
  port_ts[0] = static_cast<std::uint8_t>(from.port >> 8);
  port_ts[1] = static_cast<std::uint8_t>(from.port);
  store_be32(port_ts + 2, ts_i);
  Derived d;
  crypto::Digest seed = crypto::hmac_sha256(secret.view(), {ascii("responder seed"), from.address,
                                                            Bytes(port_ts, 6), h1, matched});
  d.seed = crypto::SecretBytes::copy_of(seed);
  sodium_memzero(seed.data(), seed.size());
  auto okm = crypto::hkdf_expand(d.seed.view(), ascii("responder values"), 16 + 32 + 32 + 8).value();
  std::memcpy(d.nonce.data(), okm.data(), 16);
  d.ephemeral_private = crypto::SecretBytes::copy_of(okm.view().subspan(16, 32));
  std::memcpy(d.contribution.data(), okm.data() + 48, 32);
  std::memcpy(d.pad.data(), okm.data() + 80, 8);
  d.secret = &secret;
  return d;
}

std::optional<std::vector<std::uint8_t>> Responder::consume_discovery(Bytes datagram,
                                                                      const Endpoint& from,
                                                                      std::int64_t now_unix_ms,
                                                                      TimePoint now) {
  auto packet = decode_discovery(datagram, wire::PacketType::kDiscovery);
  if (!packet) {
    ++counters_.malformed;
    return std::nullopt;
  }
  const std::uint32_t ts_i = packet->header.timestamp_ms;
  if (!fresh(ts_i, now_unix_ms)) {
    ++counters_.stale;
    return std::nullopt;
  }
  const auto& d = std::get<wire::DiscoveryBody>(packet->body);
  const crypto::Digest h1 = discovery_hash(ts_i, d);
  const std::array<Tag, wire::kDiscoverySlots>& slots = d.tags;
  std::optional<std::size_t> selected;
  Tag matched{};

  // 1. The listed peers' PSKs, before any budget a stranger can drain: a
  //    flood of junk from spoofed sources (the victim's own address among
  //    them) matches none of them, so it never touches what the peer's
  //    DISCOVERY is answered from, its PSK's own bucket. The check itself
  //    is bounded in total (reserved_checks_per_second).
  bool reserved_checked = false;
  if (!reserved_.empty() && reserved_checks_.take(now, static_cast<double>(reserved_.size()))) {
    reserved_checked = true;
    if (auto m = match_reserved(h1, slots)) {
      auto it = std::find_if(reserved_.begin(), reserved_.end(),
                             [&](const Reserved& r) { return r.psk_index == m->first; });
      if (!it->bucket.take(now)) {
        ++counters_.rate_limited;
        return std::nullopt;
      }
      selected = m->first;
      matched = m->second;
    }
  }

  // 2. Everyone else, within its source's bucket and the shared budget: the
  //    first of our PSKs (in preference order) whose tag is among the
  //    initiator's slots. Keys we do not share never match, so they cannot
  //    influence anything we send. Every tag is computed, match or not:
  //    stopping at the first match would let a timing observer learn the
  //    shared key's rank among ours.
  if (!selected) {
    if (!admit(from, now)) return std::nullopt;
    if (!work_.take(now)) {
      ++counters_.overloaded;
      return std::nullopt;
    }
    for (std::size_t i = 0; i < psks_.size(); ++i) {
      if (reserved_checked && std::any_of(reserved_.begin(), reserved_.end(),
                                          [i](const Reserved& r) { return r.psk_index == i; })) {
        continue;  // checked above, no match
      }
      Tag t = psk_tag(psks_.tag_mac(i), h1);
      if (slots_contain(slots, t) && !selected) {
        selected = i;
        matched = t;
      }
    }
  }
  if (!selected) {
    ++counters_.no_shared_psk;
    return std::nullopt;
  }
  rotate(now);
  auto negotiated = negotiate(d.features, policy_);
  if (!negotiated) {
    ++counters_.no_common_features;
    return std::nullopt;
  }
  const bool fs = (*negotiated & feature::kForwardSecrecy) != 0;

  Derived v = derive(secrets_[0], from, ts_i, h1, matched);
  wire::DiscoveryResponseBody r;
  r.discovery_id = d.discovery_id;
  r.nonce = v.nonce;
  r.contribution = v.contribution;
  r.cookie = v.cookie(psks_.fingerprint(*selected));
  r.matched_tag = matched;
  r.features = *negotiated;
  crypto::SecretBytes dh;
  if (fs) {
    r.ephemeral = crypto::x25519_public_from_private(v.ephemeral_private.view()).value();
    auto shared = crypto::x25519_shared(v.ephemeral_private.view(), d.ephemeral);
    if (!shared) {
      ++counters_.bad_proof;
      return std::nullopt;
    }
    dh = std::move(*shared);
  }
  const std::uint32_t ts_r = hop::ms_since_midnight(now_unix_ms);
  const crypto::Digest th = response_hash(h1, ts_r, r);
  auto keys = proof_keys(psks_.tag_key(*selected).view(), dh.view(), th);
  if (!keys) return std::nullopt;
  r.proof = response_proof(*keys, th);
  answered_.remember(from, r.cookie, now);  // what its CONFIRM must echo
  ++counters_.responses;
  return encode_discovery(discovery_header(wire::PacketType::kDiscoveryResponse, 0, ts_r), r);
}

Result<Established> Responder::consume_confirm(Bytes datagram, const Endpoint& from,
                                               std::int64_t arrived_unix_ms, TimePoint now) {
  auto packet = decode_discovery(datagram, wire::PacketType::kDiscoveryConfirm);
  if (!packet) {
    ++counters_.malformed;
    return std::unexpected(packet.error());
  }
  const std::uint32_t ts_c = packet->header.timestamp_ms;
  const std::uint64_t session_id = packet->header.session_id;
  if (!fresh(ts_c, arrived_unix_ms)) {
    ++counters_.stale;
    return fail(ErrorCode::kTimestampInvalid, "CONFIRM timestamp outside the window");
  }
  const auto& confirm = std::get<wire::DiscoveryConfirmBody>(packet->body);
  // First and cheapest: the cookie must be one a RESPONSE of ours carried to
  // this very source. Junk from anywhere (the victim's address included) is
  // dropped here, before any budget and before the two scalar
  // multiplications below; only who saw our RESPONSE gets further. No
  // per-source bucket: a spoofer of the initiator's address could drain it.
  if (!answered_.contains(from, confirm.cookie, now)) {
    ++counters_.bad_cookie;
    return fail(ErrorCode::kAuthenticationFailed, "no RESPONSE of ours carried this cookie here");
  }
  // CONFIRMs have a budget of their own: a flood of junk DISCOVERYs, which needs
  // no key, must not stop initiators that already hold a valid cookie.
  if (!confirm_work_.take(now)) {
    ++counters_.overloaded;
    return fail(ErrorCode::kMemoryExhausted, "discovery work budget exhausted");
  }
  rotate(now);
  const auto& c = confirm;
  auto refuse = [this](ErrorCode code, const char* what) -> Result<Established> {
    ++counters_.bad_proof;
    return fail(code, what);
  };

  // Rebuild the DISCOVERY's hashed part; the commitment comes from the opening,
  // so a wrong opening changes H1 and the cookie below fails.
  auto commitment = crypto::pedersen_commit(c.opening.value, c.opening.blind);
  if (!commitment) return refuse(ErrorCode::kPedersenCommitmentFailed, "opening is not a valid commitment");
  wire::DiscoveryBody d;
  d.discovery_id = c.discovery_id;
  d.nonce = c.initiator_nonce;
  d.ephemeral = c.initiator_ephemeral;
  d.commitment = *commitment;
  d.features = c.features;
  const crypto::Digest h1 = discovery_hash(c.discovery_timestamp_ms, d);

  // The cookie's last 8 bytes hide the selected key's fingerprint; its first 24
  // authenticate them together with everything the seed covers.
  Fingerprint hint;
  std::copy(c.cookie.begin() + 24, c.cookie.end(), hint.begin());
  std::optional<Derived> v;
  std::optional<std::size_t> selected;
  for (std::size_t k = 0; k < secrets_.size(); ++k) {
    // However late the rotations run, a secret verifies for kCookieLifetime
    // after it was made and no longer: the replay memory below holds each
    // session exactly that long.
    if (now - secret_made_[k] >= kCookieLifetime) continue;
    Derived candidate = derive(secrets_[k], from, c.discovery_timestamp_ms, h1, c.matched_tag);
    Fingerprint fp;
    for (std::size_t i = 0; i < fp.size(); ++i) fp[i] = hint[i] ^ candidate.pad[i];
    auto index = psks_.find(fp);
    if (index && crypto::ct_equal(candidate.cookie(fp), c.cookie)) {
      v = std::move(candidate);
      selected = index;
      break;
    }
  }
  if (!v) {
    ++counters_.bad_cookie;
    return fail(ErrorCode::kAuthenticationFailed, "cookie does not verify");
  }
  if (!crypto::ct_equal(v->nonce, c.responder_nonce)) return refuse(ErrorCode::kAuthenticationFailed, "responder nonce");
  if (psk_tag(psks_.tag_mac(*selected), h1) != c.matched_tag) {
    return refuse(ErrorCode::kPskNotFound, "matched tag is not the selected key's");
  }
  auto negotiated = negotiate(c.features, policy_);
  if (!negotiated) return refuse(ErrorCode::kDiscoveryFailed, "no common features");
  const bool fs = (*negotiated & feature::kForwardSecrecy) != 0;

  wire::DiscoveryResponseBody r;
  r.discovery_id = c.discovery_id;
  r.nonce = v->nonce;
  r.contribution = v->contribution;
  r.cookie = c.cookie;
  r.matched_tag = c.matched_tag;
  r.features = *negotiated;
  crypto::SecretBytes dh;
  if (fs) {
    r.ephemeral = crypto::x25519_public_from_private(v->ephemeral_private.view()).value();
    auto shared = crypto::x25519_shared(v->ephemeral_private.view(), c.initiator_ephemeral);
    if (!shared) return refuse(ErrorCode::kAuthenticationFailed, "initiator ephemeral key");
    dh = std::move(*shared);
  }
  const crypto::Digest th = response_hash(h1, c.response_timestamp_ms, r);
  auto keys = proof_keys(psks_.tag_key(*selected).view(), dh.view(), th);
  if (!keys) return std::unexpected(keys.error());

  // DISCOVERY_CONFIRM: selection commitment, session id, then the proof.
  auto sel = selection_commitment(*keys, th);
  if (!sel || !crypto::ct_equal(*sel, c.selection_commitment)) {
    return refuse(ErrorCode::kPedersenCommitmentFailed, "PSK selection commitment does not verify");
  }
  if (derive_session_id(th, c.opening.value, v->contribution) != session_id) {
    return refuse(ErrorCode::kSessionNotFound, "session id does not follow from the contributions");
  }
  const crypto::Digest thc = confirm_hash(th, session_id, ts_c, c.opening, *sel);
  if (!crypto::ct_equal(confirm_proof(*keys, thc), c.proof)) {
    return refuse(ErrorCode::kAuthenticationFailed, "initiator proof does not verify");
  }
  if (recent_.contains(session_id, now)) {
    ++counters_.replayed;
    replayed_session_ = session_id;
    return fail(ErrorCode::kReplayAttack, "CONFIRM of an already established session");
  }

  Established e;
  e.initiator = false;
  e.session_id = session_id;
  e.psk_index = *selected;
  e.features = *negotiated;
  e.day = peer_day(arrived_unix_ms, ts_c);
  auto daily = hop::daily_key(psks_.key(*selected).view(), e.day);
  if (!daily) return std::unexpected(daily.error());
  auto sk = hop::session_key(daily->view(), session_id, thc, dh.view());
  if (!sk) return std::unexpected(sk.error());
  e.session_key = std::move(*sk);
  // Remembered last, once nothing else can refuse the session; a session the
  // memory cannot hold is not made (its CONFIRM could make it a second time).
  if (!recent_.remember(session_id, now)) {
    ++counters_.overloaded;
    return fail(ErrorCode::kMemoryExhausted, "too many sessions established in the last minute to remember");
  }
  // The initiator stamped CONFIRM about half way between our RESPONSE and now.
  const std::uint32_t arrived_ms = hop::ms_since_midnight(arrived_unix_ms);
  const std::int32_t rtt = hop::circular_delta_ms(arrived_ms, c.response_timestamp_ms);
  const std::uint32_t mid = static_cast<std::uint32_t>(
      (std::int64_t{c.response_timestamp_ms} + rtt / 2 + wire::kMsPerDay) % wire::kMsPerDay);
  e.clock_offset_ms = hop::circular_delta_ms(ts_c, mid);
  if (rtt >= 0) e.clock_rtt_ms = rtt;
  e.initial_sequence_i2r = initial_sequence(c.opening.value, v->contribution, 0);
  e.initial_sequence_r2i = initial_sequence(c.opening.value, v->contribution, 1);
  e.sequence_confirm.phase = wire::NegotiationPhase::kConfirm;
  e.sequence_confirm.commitment = *commitment;
  e.sequence_confirm.opening.value = v->contribution;
  e.sequence_confirm.opening.blind = c.opening.value;
  std::memcpy(e.sequence_confirm.challenge.data(), thc.data(), 16);
  ++counters_.sessions;
  return e;
}

}  // namespace buckwild::discovery

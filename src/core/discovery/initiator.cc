#include "core/discovery/initiator.h"

#include <algorithm>
#include <cstring>

#include <sodium.h>

#include "core/crypto/constant_time.h"
#include "core/crypto/pedersen.h"
#include "core/discovery/envelope.h"
#include "core/discovery/features.h"
#include "core/hop/key_schedule.h"
#include "core/hop/time_window.h"

namespace buckwild::discovery {
namespace {

std::uint64_t random_u64(crypto::RandomSource& rng) {
  std::uint8_t b[8];
  rng.fill(MutableBytes(b, 8));
  std::uint64_t v = 0;
  for (std::uint8_t x : b) v = (v << 8) | x;
  return v;
}

std::uint32_t ms_of_day(std::int64_t unix_ms) { return hop::ms_since_midnight(unix_ms); }

std::int64_t day_of(std::int64_t unix_ms) {
  return hop::day_of_window(hop::window_at(unix_ms));
}

}  // namespace

Initiator::Initiator(const PskSet& psks, std::uint16_t offered, crypto::RandomSource& rng)
    : psks_(psks), offered_(offered), rng_(rng) {}

void Initiator::schedule(TimePoint now) {
  // Retransmit at 1, 2 and 4 s intervals; give up at 10 s after the phase began.
  if (retries_ < std::size(kRetryIntervals)) {
    next_expiry_ = std::min(now + kRetryIntervals[retries_], started_ + kDiscoveryTimeout);
  } else {
    next_expiry_ = started_ + kDiscoveryTimeout;
  }
}

std::vector<std::uint8_t> Initiator::start(std::int64_t now_unix_ms, TimePoint now) {
  // DISCOVERY: fresh values for every discovery, so nothing PSK-dependent repeats.
  wire::DiscoveryBody d;
  discovery_id_ = random_u64(rng_);
  d.discovery_id = discovery_id_;
  rng_.fill(nonce_);
  d.nonce = nonce_;
  ephemeral_ = crypto::x25519_generate(rng_);
  d.ephemeral = ephemeral_.public_key;
  contribution_ = crypto::SecretBytes::random(32, rng_);
  blind_ = crypto::random_blind(rng_);
  commitment_ = crypto::pedersen_commit(contribution_.view(), blind_).value();
  d.commitment = commitment_;
  d.features = offered_;
  discovery_ts_ = ms_of_day(now_unix_ms);
  h1_ = discovery_hash(discovery_ts_, d);

  // The real tags sit at random slots among random padding, so neither their
  // number nor their order says anything about the key set.
  own_tags_.clear();
  first_offered_ = next_offered_ < psks_.size() ? next_offered_ : 0;
  const std::size_t offered = std::min(psks_.size() - first_offered_, wire::kDiscoverySlots);
  for (std::size_t i = 0; i < offered; ++i) {
    own_tags_.push_back(psk_tag(psks_.tag_mac(first_offered_ + i), h1_));
  }
  next_offered_ = first_offered_ + offered;
  for (auto& slot : d.tags) rng_.fill(slot);
  std::array<std::uint16_t, wire::kDiscoverySlots> order;
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::uint16_t>(i);
  for (std::size_t i = order.size() - 1; i > 0; --i) {  // Fisher–Yates
    std::size_t j = static_cast<std::size_t>(random_u64(rng_) % (i + 1));
    std::swap(order[i], order[j]);
  }
  for (std::size_t i = 0; i < own_tags_.size(); ++i) d.tags[order[i]] = own_tags_[i];

  pending_ = encode_discovery(discovery_header(wire::PacketType::kDiscovery, 0, discovery_ts_), d);
  state_ = State::kInitiated;
  started_ = now;
  started_unix_ms_ = now_unix_ms;
  last_tx_ = now;
  retries_ = 0;
  schedule(now);
  return pending_;
}

Result<Initiator::Outcome> Initiator::consume_response(Bytes datagram,
                                                       std::int64_t arrived_unix_ms,
                                                       std::int64_t now_unix_ms, TimePoint now) {
  if (state_ != State::kInitiated) return fail(ErrorCode::kStateInvalid, "no discovery awaiting a response");
  auto packet = decode_discovery(datagram, wire::PacketType::kDiscoveryResponse);
  if (!packet) return std::unexpected(packet.error());
  const auto& r = std::get<wire::DiscoveryResponseBody>(packet->body);
  if (r.discovery_id != discovery_id_) return fail(ErrorCode::kSessionNotFound, "another discovery id");
  if (!hop::timestamp_fresh(packet->header.timestamp_ms, ms_of_day(now_unix_ms),
                            wire::kTimestampWindowMs)) {
    return fail(ErrorCode::kTimestampInvalid, "RESPONSE timestamp outside the window");
  }
  if (!acceptable_negotiation(r.features, offered_)) {
    return fail(ErrorCode::kDiscoveryFailed, "responder negotiated features we did not offer");
  }
  // Offering forward secrecy means requiring it: no silent downgrade.
  if ((offered_ & feature::kForwardSecrecy) && !(r.features & feature::kForwardSecrecy)) {
    return fail(ErrorCode::kDiscoveryFailed, "responder declined forward secrecy");
  }
  const bool fs = (r.features & feature::kForwardSecrecy) != 0;

  crypto::SecretBytes dh;
  if (fs) {
    auto shared = crypto::x25519_shared(ephemeral_.private_key.view(), r.ephemeral);
    if (!shared) return std::unexpected(shared.error());
    dh = std::move(*shared);
  }

  // DISCOVERY_RESPONSE: find which of our keys the matched tag belongs to and
  // check the responder proved knowledge of it (and of its DH share).
  const std::uint32_t ts_r = packet->header.timestamp_ms;
  const crypto::Digest th = response_hash(h1_, ts_r, r);
  std::optional<std::size_t> selected;
  std::optional<ProofKeys> keys;
  bool tag_known = false;
  for (std::size_t i = 0; i < own_tags_.size() && !selected; ++i) {
    if (own_tags_[i] != r.matched_tag) continue;
    tag_known = true;
    auto k = proof_keys(psks_.tag_key(first_offered_ + i).view(), dh.view(), th);
    if (!k) return std::unexpected(k.error());
    if (crypto::ct_equal(response_proof(*k, th), r.proof)) {
      selected = first_offered_ + i;
      keys = std::move(*k);
    }
  }
  if (!tag_known) return fail(ErrorCode::kPskNotFound, "matched tag is none of ours");
  if (!selected) return fail(ErrorCode::kAuthenticationFailed, "responder proof does not verify");

  // DISCOVERY_CONFIRM: open our commitment, commit to the selection, prove.
  const std::uint64_t session_id = derive_session_id(th, contribution_.view(), r.contribution);
  auto sel = selection_commitment(*keys, th);
  if (!sel) return std::unexpected(sel.error());
  wire::DiscoveryConfirmBody c;
  c.discovery_id = discovery_id_;
  c.initiator_nonce = nonce_;
  c.responder_nonce = r.nonce;
  c.initiator_ephemeral = ephemeral_.public_key;
  c.cookie = r.cookie;
  std::memcpy(c.opening.value.data(), contribution_.data(), 32);
  c.opening.blind = blind_;
  c.selection_commitment = *sel;
  c.matched_tag = r.matched_tag;
  c.discovery_timestamp_ms = discovery_ts_;
  c.response_timestamp_ms = ts_r;
  c.features = offered_;
  // CONFIRM's stamp: half way between the RESPONSE's arrival and now, when
  // the CONFIRM is sent. The responder takes ts_C for the midpoint of its
  // RESPONSE and the CONFIRM's arrival (§6.3 step 8): so it is, on a
  // symmetric path, however long we took to answer.
  const std::int64_t stamped_unix =
      arrived_unix_ms + std::max<std::int64_t>(0, now_unix_ms - arrived_unix_ms) / 2;
  const std::uint32_t ts_c = ms_of_day(stamped_unix);
  const crypto::Digest thc = confirm_hash(th, session_id, ts_c, c.opening, *sel);
  c.proof = confirm_proof(*keys, thc);

  Established e;
  e.initiator = true;
  e.session_id = session_id;
  e.psk_index = *selected;
  e.features = r.features;
  e.day = day_of(stamped_unix);
  auto daily = hop::daily_key(psks_.key(*selected).view(), e.day);
  if (!daily) return std::unexpected(daily.error());
  auto sk = hop::session_key(daily->view(), session_id, thc, dh.view());
  if (!sk) return std::unexpected(sk.error());
  e.session_key = std::move(*sk);
  // The responder stamped its clock about half way between our last send and
  // the RESPONSE's arrival. The round trip bounds the error only when the
  // RESPONSE answers that send: after a retransmission it may answer an
  // earlier one, and the round trip is left unknown.
  const std::int64_t sent_unix = started_unix_ms_ + (last_tx_ - started_) / 1000;
  const std::int64_t rtt_ms = arrived_unix_ms - sent_unix;
  const std::int64_t mid_unix = sent_unix + rtt_ms / 2;
  e.clock_offset_ms = static_cast<std::int32_t>(hop::circular_delta_ms(ts_r, ms_of_day(mid_unix)));
  if (retries_ == 0 && rtt_ms >= 0 && rtt_ms <= wire::kTimestampWindowMs) {
    e.clock_rtt_ms = static_cast<std::int32_t>(rtt_ms);
  }
  e.initial_sequence_i2r = initial_sequence(contribution_.view(), r.contribution, 0);
  e.initial_sequence_r2i = initial_sequence(contribution_.view(), r.contribution, 1);
  e.sequence_confirm.phase = wire::NegotiationPhase::kConfirm;
  e.sequence_confirm.commitment = commitment_;
  e.sequence_confirm.opening.value = r.contribution;
  std::memcpy(e.sequence_confirm.opening.blind.data(), contribution_.data(), 32);
  std::memcpy(e.sequence_confirm.challenge.data(), thc.data(), 16);
  expected_confirm_ = e.sequence_confirm;

  pending_ = encode_discovery(
      discovery_header(wire::PacketType::kDiscoveryConfirm, session_id, ts_c), c);
  state_ = State::kResponded;
  started_ = now;
  last_tx_ = now;
  retries_ = 0;
  schedule(now);
  return Outcome{std::move(e), pending_};
}

void Initiator::forget_secrets() {
  // The exchange is over: its ephemeral key and contribution must not outlive it.
  ephemeral_ = crypto::X25519KeyPair{};
  contribution_ = crypto::SecretBytes();
  sodium_memzero(blind_.data(), blind_.size());
}

Result<void> Initiator::consume_sequence_confirm(const wire::SequenceNegBody& confirm) {
  if (state_ != State::kResponded) return fail(ErrorCode::kStateInvalid, "no CONFIRM outstanding");
  if (!(confirm == expected_confirm_)) {
    return fail(ErrorCode::kSequenceInvalid, "sequence confirmation does not match");
  }
  state_ = State::kCompleted;
  next_expiry_ = kNever;
  pending_.clear();
  forget_secrets();
  return {};
}

std::optional<std::vector<std::uint8_t>> Initiator::on_expiry(TimePoint now) {
  if (now < next_expiry_ || (state_ != State::kInitiated && state_ != State::kResponded)) {
    return std::nullopt;
  }
  if (now >= started_ + kDiscoveryTimeout) {
    state_ = State::kFailed;
    next_expiry_ = kNever;
    forget_secrets();
    return std::nullopt;
  }
  ++retries_;
  last_tx_ = now;
  schedule(now);
  return pending_;
}

}  // namespace buckwild::discovery

#include "core/session/rekey.h"

#include <algorithm>
#include <cstring>
#include <string_view>

#include "core/crypto/constant_time.h"
#include "core/crypto/hkdf.h"
#include "core/crypto/hmac.h"
#include "core/discovery/features.h"
#include "core/hop/key_schedule.h"
#include "core/wire/codec.h"

namespace buckwild::session {
namespace {

void put_be(std::uint8_t* p, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * (bytes - 1 - i)));
}

std::uint8_t phase_flag(std::uint32_t epoch) {
  return (epoch & 1) != 0 ? wire::flags::kKeyPhase : 0;
}

Bytes text(std::string_view s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

hop::Direction out_direction(bool initiator) {
  return initiator ? hop::Direction::kInitiatorToResponder : hop::Direction::kResponderToInitiator;
}
hop::Direction in_direction(bool initiator) { return out_direction(!initiator); }

Result<hop::DirectionKeys> keys_of(const crypto::SecretBytes& key, hop::Direction dir) {
  auto k = hop::derive_direction_keys(key, dir);
  if (!k) return fail(ErrorCode::kInvalidParameter, "session key");
  return k;
}

crypto::PacketKeyMaterial material(const hop::DirectionKeys& k) {
  return crypto::PacketKeyMaterial{k.packet_key.view(), k.packet_iv.view(), k.mac_key.view()};
}

}  // namespace

Result<crypto::SecretBytes> rekey_session_key(const crypto::SecretBytes& previous,
                                              std::uint64_t session_id, std::uint32_t epoch,
                                              Bytes shared, const wire::Bytes32& requester,
                                              const wire::Bytes32& responder) {
  if (previous.size() != hop::kSessionKeySize) {
    return fail(ErrorCode::kInvalidParameter, "session key must be 32 bytes");
  }
  std::uint8_t salt[12];
  put_be(salt, session_id, 8);
  put_be(salt + 8, epoch, 4);
  // The IKM holds the previous key: it lives in locked memory too.
  crypto::SecretBytes ikm(previous.size() + shared.size());
  std::memcpy(ikm.data(), previous.data(), previous.size());
  if (!shared.empty()) std::memcpy(ikm.data() + previous.size(), shared.data(), shared.size());
  constexpr std::string_view kLabel = "buckwild rekey";
  std::uint8_t info[kLabel.size() + 64];
  std::memcpy(info, kLabel.data(), kLabel.size());
  std::memcpy(info + kLabel.size(), requester.data(), 32);
  std::memcpy(info + kLabel.size() + 32, responder.data(), 32);
  return crypto::hkdf(Bytes(salt, sizeof salt), ikm.view(), Bytes(info, sizeof info),
                      hop::kSessionKeySize);
}

wire::Bytes16 rekey_confirmation(const crypto::SecretBytes& key, std::uint32_t epoch,
                                 const wire::Bytes32& requester, const wire::Bytes32& responder) {
  wire::Bytes16 out{};
  auto mac = crypto::HmacSha256::create(key.view());
  if (!mac) return out;
  std::uint8_t e[4];
  put_be(e, epoch, 4);
  const auto d = mac->compute({text("buckwild rekey confirmation"), Bytes(e, 4),
                               Bytes(requester.data(), 32), Bytes(responder.data(), 32)});
  std::memcpy(out.data(), d.data(), out.size());
  return out;
}

Result<SessionKeys> SessionKeys::create(const crypto::SecretBytes& session_key,
                                        std::uint64_t session_id, bool initiator,
                                        std::uint16_t features, TimePoint now) {
  const auto protection = discovery::protection_of(features);
  auto out = keys_of(session_key, out_direction(initiator));
  auto in = keys_of(session_key, in_direction(initiator));
  if (!out) return std::unexpected(out.error());
  if (!in) return std::unexpected(in.error());
  auto sealer = crypto::PacketSealer::create(protection.mode, protection.algorithm, material(*out));
  auto opener = crypto::PacketOpener::create(protection.mode, protection.algorithm, material(*in));
  if (!sealer) return std::unexpected(sealer.error());
  if (!opener) return std::unexpected(opener.error());
  return SessionKeys(crypto::SecretBytes::copy_of(session_key.view()), session_id, initiator,
                     protection.mode, protection.algorithm, std::move(*sealer), std::move(*opener), now);
}

SessionKeys::SessionKeys(crypto::SecretBytes key, std::uint64_t session_id, bool initiator,
                         crypto::ProtectionMode mode, crypto::AeadAlgorithm algorithm,
                         crypto::PacketSealer sealer, crypto::PacketOpener opener, TimePoint now)
    : key_(std::move(key)),
      session_id_(session_id),
      initiator_(initiator),
      mode_(mode),
      algorithm_(algorithm),
      packet_bound_(mode == crypto::ProtectionMode::kAead && algorithm == crypto::AeadAlgorithm::kAes256Gcm
                        ? kRekeyAfterPacketsAesGcm
                        : kRekeyAfterPackets),
      sealer_(std::move(sealer)),
      key_since_(now) {
  receivers_[0].emplace(Receiver{0, std::move(opener), kNever});
}

Result<crypto::PacketSealer> SessionKeys::sealer_for(const crypto::SecretBytes& key) const {
  auto k = keys_of(key, out_direction(initiator_));
  if (!k) return std::unexpected(k.error());
  return crypto::PacketSealer::create(mode_, algorithm_, material(*k));
}

Result<crypto::PacketOpener> SessionKeys::opener_for(const crypto::SecretBytes& key) const {
  auto k = keys_of(key, in_direction(initiator_));
  if (!k) return std::unexpected(k.error());
  return crypto::PacketOpener::create(mode_, algorithm_, material(*k));
}

Result<std::size_t> SessionKeys::seal(wire::Header& h, MutableBytes out, std::size_t body_len) {
  h.flags = static_cast<std::uint8_t>((h.flags & ~wire::flags::kKeyPhase) | phase_flag(send_epoch_));
  return sealer_.seal(h, out, body_len);
}

Result<crypto::OpenedPacket> SessionKeys::open(MutableBytes datagram, std::uint32_t now_ms_of_day,
                                               TimePoint now) {
  const unsigned phase =
      datagram.size() > 2 && (datagram[2] & wire::flags::kKeyPhase) != 0 ? 1u : 0u;
  auto& r = receivers_[phase];
  if (r && r->release_at <= now) r.reset();
  if (!r) return fail(ErrorCode::kAuthenticationFailed, "no key for this key phase");
  auto opened = r->opener.open(datagram, now_ms_of_day);
  if (!opened) return opened;
  if (r->epoch < recv_epoch_) {
    ++stats_.old_key_opened;
  } else if (r->epoch > recv_epoch_) {
    complete(now);  // the peer sends under the new epoch
  }
  return opened;
}

void SessionKeys::complete(TimePoint now) {
  if (!pending_ || !pending_->key) return;  // unreachable: a next epoch's opener has a pending exchange
  const std::uint32_t epoch = pending_->epoch;
  if (pending_->role == Role::kResponder) {
    // The requester has the key (its packet opened under it): switch sending.
    auto sealer = sealer_for(*pending_->key);
    if (sealer) sealer_ = std::move(*sealer);  // the old sealer's key is released
    send_epoch_ = epoch;
    key_since_ = now;
  }
  recv_epoch_ = epoch;
  auto& old = slot(epoch - 1);
  if (old) old->release_at = now + kOldKeyGrace;
  key_ = std::move(*pending_->key);  // the old session key is zeroed
  pending_.reset();
  ++stats_.rekeys;
}

bool SessionKeys::next_slot_free(TimePoint now) {
  auto& s = slot(send_epoch_ + 1);
  if (s && s->release_at <= now) s.reset();
  return !s;
}

bool SessionKeys::start(crypto::RandomSource& rng, TimePoint now) {
  if (pending_ || !next_slot_free(now)) return false;
  auto kp = crypto::x25519_generate(rng);
  Pending p;
  p.role = Role::kRequester;
  p.stage = Stage::kAwaitResponse;
  p.epoch = send_epoch_ + 1;
  p.private_key = std::move(kp.private_key);
  std::copy(kp.public_key.begin(), kp.public_key.end(), p.our_public.begin());
  p.next_send = now;
  pending_.emplace(std::move(p));
  wanted_ = false;
  ++stats_.rekeys_requested;
  return true;
}

void SessionKeys::request_at(TimePoint at) {
  wanted_at_ = wanted_ ? std::min(wanted_at_, at) : at;
  wanted_ = true;
}

void SessionKeys::request_automatic(TimePoint now) {
  if (now >= automatic_from()) request();
}

bool SessionKeys::message_due(TimePoint now) const {
  if (!pending_) {
    if (!wanted_ || now < wanted_at_) return false;
    const auto& s = receivers_[(send_epoch_ + 1) & 1];
    return !s || s->release_at <= now;
  }
  return pending_->owed || (pending_->next_send != kNever && now >= pending_->next_send &&
                            pending_->attempts < kMaxRekeyAttempts);
}

std::optional<SessionKeys::Message> SessionKeys::make_message(crypto::RandomSource& rng,
                                                              Duration retry_interval, TimePoint now) {
  if (!pending_ && !(wanted_ && now >= wanted_at_ && start(rng, now))) return std::nullopt;
  if (!message_due(now)) return std::nullopt;
  Pending& p = *pending_;
  p.owed = false;
  if (p.role == Role::kResponder) {
    if (!p.key) {
      // REKEY_RESPONSE: our fresh contribution; the new key is installed for
      // receiving before the RESPONSE leaves, so the requester's first packet
      // under it opens.
      auto kp = crypto::x25519_generate(rng);
      std::copy(kp.public_key.begin(), kp.public_key.end(), p.our_public.begin());
      auto shared = crypto::x25519_shared(kp.private_key.view(), Bytes(p.peer_public.data(), 32));
      if (!shared) {
        ++stats_.rekey_invalid;
        pending_.reset();
        return std::nullopt;
      }
      auto key = rekey_session_key(key_, session_id_, p.epoch, shared->view(), p.peer_public,
                                   p.our_public);
      auto opener = key ? opener_for(*key) : Result<crypto::PacketOpener>(std::unexpected(key.error()));
      if (!opener) {
        pending_.reset();
        return std::nullopt;
      }
      p.confirmation = rekey_confirmation(*key, p.epoch, p.peer_public, p.our_public);
      slot(p.epoch).emplace(Receiver{p.epoch, std::move(*opener), kNever});
      p.key.emplace(std::move(*key));
    }
    wire::RekeyResponseBody b;
    b.nonce = p.epoch;
    b.ephemeral = p.our_public;
    b.confirmation = p.confirmation;
    return Message{wire::PacketType::kRekeyResponse, wire::flags::kAck, b};
  }
  // REKEY_REQUEST, or REKEY_CONFIRM (the same body with ACK, under the new key).
  ++p.attempts;
  if (p.attempts > 1) ++stats_.rekey_retries;
  const Duration wait = std::min(retry_interval << std::min(p.attempts - 1, 16), kMaxRekeyRetryInterval);
  p.next_send = now + wait;
  wire::RekeyRequestBody b;
  b.nonce = p.epoch;
  b.ephemeral = p.our_public;
  const std::uint8_t flags = p.stage == Stage::kAwaitPeerSwitch ? wire::flags::kAck : 0;
  return Message{wire::PacketType::kRekeyRequest, flags, b};
}

SessionKeys::Answer SessionKeys::on_message(const wire::Header& h, const wire::Body& body,
                                            TimePoint now) {
  if (const auto* req = std::get_if<wire::RekeyRequestBody>(&body)) return on_request(h, *req, now);
  if (const auto* resp = std::get_if<wire::RekeyResponseBody>(&body)) return on_response(*resp, now);
  return Answer::kNone;
}

SessionKeys::Answer SessionKeys::on_request(const wire::Header& h, const wire::RekeyRequestBody& b,
                                            TimePoint now) {
  if ((h.flags & wire::flags::kAck) != 0) {
    // REKEY_CONFIRM: opening it under the new epoch completed our switch
    // (open()); answer so the requester learns we switched too.
    if (b.nonce == send_epoch_ && b.nonce == recv_epoch_ &&
        (h.flags & wire::flags::kKeyPhase) == phase_flag(b.nonce)) {
      return Answer::kHeartbeat;
    }
    ++stats_.rekey_invalid;
    return Answer::kNone;
  }
  // REKEY_REQUEST for the next epoch.
  if (b.nonce != send_epoch_ + 1 || b.nonce != recv_epoch_ + 1) {
    ++stats_.rekey_invalid;  // a late duplicate of a finished exchange, or nonsense
    return Answer::kNone;
  }
  if (pending_) {
    if (pending_->role == Role::kResponder) {
      if (pending_->peer_public == b.ephemeral) {
        pending_->owed = true;  // our RESPONSE was lost: send it again
        pending_->give_up_at = now + kRekeyResponderPatience;
        return Answer::kRekeyMessage;
      }
      pending_.reset();  // the requester started over with a new contribution
    } else if (pending_->stage == Stage::kAwaitResponse && !initiator_) {
      pending_.reset();  // both asked at once: the session initiator's request wins
    } else {
      return Answer::kNone;  // ours wins (or is past this point)
    }
  }
  // The next epoch's phase may still hold the previous epoch's opener in its
  // grace: the requester has long switched, it goes.
  slot(b.nonce).reset();
  Pending p;
  p.role = Role::kResponder;
  p.stage = Stage::kAwaitConfirm;
  p.epoch = b.nonce;
  p.peer_public = b.ephemeral;
  p.owed = true;
  p.give_up_at = now + kRekeyResponderPatience;
  pending_.emplace(std::move(p));
  wanted_ = false;  // a rekey is under way, whoever asked
  return Answer::kRekeyMessage;
}

SessionKeys::Answer SessionKeys::on_response(const wire::RekeyResponseBody& b, TimePoint now) {
  if (!pending_ || pending_->role != Role::kRequester || b.nonce != pending_->epoch) {
    ++stats_.rekey_invalid;
    return Answer::kNone;
  }
  Pending& p = *pending_;
  if (p.stage == Stage::kAwaitPeerSwitch) {
    if (p.peer_public != b.ephemeral) {
      ++stats_.rekey_invalid;
      return Answer::kNone;
    }
    p.owed = true;  // a RESPONSE again: our CONFIRM was lost
    return Answer::kRekeyMessage;
  }
  auto shared = crypto::x25519_shared(p.private_key.view(), Bytes(b.ephemeral.data(), 32));
  if (!shared) {
    ++stats_.rekey_invalid;
    return Answer::kNone;
  }
  auto key = rekey_session_key(key_, session_id_, p.epoch, shared->view(), p.our_public, b.ephemeral);
  if (!key) return Answer::kNone;
  const auto expected = rekey_confirmation(*key, p.epoch, p.our_public, b.ephemeral);
  if (!crypto::ct_equal(Bytes(expected.data(), 16), Bytes(b.confirmation.data(), 16))) {
    ++stats_.rekey_invalid;
    return Answer::kNone;
  }
  auto opener = opener_for(*key);
  auto sealer = sealer_for(*key);
  if (!opener || !sealer) return Answer::kNone;
  // The responder receives under the new key already: switch sending now
  // (packet numbers restart at 0 under the new key), keep receiving under
  // both until the responder's first packet under the new one.
  slot(p.epoch).emplace(Receiver{p.epoch, std::move(*opener), kNever});
  sealer_ = std::move(*sealer);
  send_epoch_ = p.epoch;
  key_since_ = now;
  p.key.emplace(std::move(*key));
  p.private_key = crypto::SecretBytes();  // our X25519 private key is no longer needed
  p.peer_public = b.ephemeral;
  p.stage = Stage::kAwaitPeerSwitch;
  p.attempts = 0;
  p.owed = true;
  return Answer::kRekeyMessage;
}

void SessionKeys::on_expiry(TimePoint now) {
  for (auto& r : receivers_) {
    if (r && r->release_at <= now) r.reset();
  }
  if (!pending_) return;
  Pending& p = *pending_;
  if (p.role == Role::kResponder) {
    if (now >= p.give_up_at) {
      // Never confirmed: the requester gave up. The next epoch's opener goes too.
      if (slot(p.epoch) && slot(p.epoch)->epoch == p.epoch) slot(p.epoch).reset();
      pending_.reset();
      ++stats_.rekey_failures;
    }
    return;
  }
  if (p.attempts >= kMaxRekeyAttempts && p.next_send != kNever && now >= p.next_send) {
    if (p.stage == Stage::kAwaitResponse) {
      pending_.reset();  // abandoned; whatever wanted the rekey asks again
      ++stats_.rekey_failures;
      ++stats_.requests_abandoned;
      abandoned_at_ = now;
    } else {
      // CONFIRMs unanswered: we already send under the new key; the peer
      // switches on our first packet that reaches it.
      p.next_send = kNever;
    }
  }
}

TimePoint SessionKeys::next_expiry() const {
  TimePoint t = kNever;
  for (const auto& r : receivers_) {
    if (r) t = std::min(t, r->release_at);
  }
  if (pending_) {
    if (pending_->owed) return 0;
    t = std::min({t, pending_->next_send, pending_->give_up_at});
  } else if (wanted_) {
    const auto& s = receivers_[(send_epoch_ + 1) & 1];
    t = std::min(t, std::max(wanted_at_, s ? s->release_at : 0));
  }
  return t;
}

}  // namespace buckwild::session

// A session's packet keys over time: key epochs and the rekey exchange
// (docs/protocol.md §9.5, deviation 29).
//
// Epoch 0 is the key discovery established; each rekey derives epoch n + 1
// from epoch n's session key and a fresh X25519 exchange, so a key that is
// released (zeroed) cannot be recomputed from anything kept (forward secrecy
// within a session). The header's KEY_PHASE flag carries the epoch's parity;
// a receiver holds at most two epochs' openers, one per phase.
//
// Make-before-break, in this order:
//   requester                                   responder
//   REKEY_REQUEST(n+1, pub_q)  — old key —>      installs the n+1 opener
//                              <— old key —      REKEY_RESPONSE(n+1, pub_r, confirmation)
//   installs the n+1 opener, sends under n+1
//   REKEY_CONFIRM (REQUEST + ACK) — new key —>   first n+1 packet: sends under n+1
//                              <— new key —      HEARTBEAT (the answer)
// Each side installs the new key for receiving before its peer can send under
// it, and keeps the old one for kOldKeyGrace after the peer's first packet
// under the new one, so no datagram is rejected during the switch. Each
// epoch's sealer is created once and numbers its packets from 0: (key, packet
// number) never repeats, so neither does a nonce.
#pragma once

#include <cstdint>
#include <optional>

#include "core/common/bytes.h"
#include "core/common/error.h"
#include "core/common/time.h"
#include "core/crypto/packet_protection.h"
#include "core/crypto/random.h"
#include "core/crypto/secret_bytes.h"
#include "core/crypto/x25519.h"
#include "core/wire/codec.h"
#include "core/wire/messages.h"

namespace buckwild::session {

// How long an old epoch's opener outlives the peer's first packet under the
// new one: longer than the widest delay allowance (16 windows = 4 s) plus a
// round trip, so a straggler sent just before the switch still opens.
inline constexpr Duration kOldKeyGrace = seconds(5);
// An unanswered REKEY_REQUEST (or REKEY_CONFIRM) is sent again after the
// retry interval, doubled after each try up to kMaxRekeyRetryInterval; after
// kMaxRekeyAttempts unanswered REQUESTs the attempt is abandoned (counted) and
// the trigger that wanted it fires again later. A responder whose RESPONSE
// is never confirmed drops the exchange after kRekeyResponderPatience.
inline constexpr int kMaxRekeyAttempts = 5;
// After an abandoned exchange the key's own triggers (its age, its packet
// bound) ask again no sooner than this: the recovery strategy REKEY
// (rekey_recovery.h) spaces the next exchanges on its backoff meanwhile, and
// without it the session still tries twice a minute, not back to back.
inline constexpr Duration kRekeyReaskAfter = seconds(30);
inline constexpr Duration kRekeyResponderPatience = seconds(40);
inline constexpr Duration kMaxRekeyRetryInterval = seconds(4);
// The packets one epoch's key may seal per direction before a rekey starts
// (docs/protocol.md §9.5): AES-256-GCM 2^24 — with 9000-byte datagrams an
// attacker's advantage against confidentiality stays below 2^-60 (RFC 9001
// §6.6, App. B.1); ChaCha20-Poly1305 and HMAC mode 2^32 — far below their
// limits, and the 32-bit wire packet number then never wraps under one key.
inline constexpr std::uint64_t kRekeyAfterPacketsAesGcm = std::uint64_t{1} << 24;
inline constexpr std::uint64_t kRekeyAfterPackets = std::uint64_t{1} << 32;

// session_key[n+1] = HKDF(salt = BE64(session_id) || BE32(epoch), IKM =
// previous || shared, info = "buckwild rekey" || requester || responder, 32)
// (docs/protocol.md §9.5; vector in its appendix A.4). Fails
// (kInvalidParameter) for a previous key that is not 32 bytes.
Result<crypto::SecretBytes> rekey_session_key(const crypto::SecretBytes& previous,
                                              std::uint64_t session_id, std::uint32_t epoch,
                                              Bytes shared, const wire::Bytes32& requester,
                                              const wire::Bytes32& responder);
// The REKEY_RESPONSE's confirmation: HMAC-SHA256(key, "buckwild rekey
// confirmation" || BE32(epoch) || requester || responder), first 16 bytes.
wire::Bytes16 rekey_confirmation(const crypto::SecretBytes& key, std::uint32_t epoch,
                                 const wire::Bytes32& requester, const wire::Bytes32& responder);

struct RekeyStats {
  std::uint64_t rekeys = 0;          // completed (either side asked)
  std::uint64_t rekeys_requested = 0;  // exchanges this side started
  std::uint64_t rekey_retries = 0;   // REQUESTs and CONFIRMs sent again
  std::uint64_t rekey_failures = 0;  // exchanges dropped (either role)
  // ... of them: ours, abandoned after kMaxRekeyAttempts unanswered REQUESTs
  // (the recovery strategy REKEY's trigger and failed attempts).
  std::uint64_t requests_abandoned = 0;
  std::uint64_t rekey_invalid = 0;   // REKEY messages ignored (stale, wrong epoch, bad confirmation)
  std::uint64_t old_key_opened = 0;  // packets opened with the previous epoch's key
};

class SessionKeys {
 public:
  // Epoch 0 from the session key of discovery. Fails (kInvalidParameter) for
  // key material of the wrong size.
  static Result<SessionKeys> create(const crypto::SecretBytes& session_key, std::uint64_t session_id,
                                    bool initiator, std::uint16_t features, TimePoint now);

  // Seals under the sending epoch, setting KEY_PHASE to its parity. Errors as
  // PacketSealer::seal.
  Result<std::size_t> seal(wire::Header& h, MutableBytes out, std::size_t body_len);

  // Opens with the opener of the packet's KEY_PHASE. The first packet that
  // opens under the next epoch completes the switch (see the file comment).
  // Errors as PacketOpener::open; kAuthenticationFailed when no key of that
  // phase is held.
  Result<crypto::OpenedPacket> open(MutableBytes datagram, std::uint32_t now_ms_of_day, TimePoint now);

  // Asks for a rekey: the next make_message() starts one as soon as none is
  // under way and the previous epoch's key has been released. Idempotent.
  void request() { request_at(0); }
  // The same, not before `at` (an earlier request stands).
  void request_at(TimePoint at);
  // A trigger of the key's own (age, packet bound) asks: as request(),
  // unless an exchange was abandoned less than kRekeyReaskAfter ago.
  void request_automatic(TimePoint now);
  // When request_automatic() asks again (0: at once).
  TimePoint automatic_from() const { return abandoned_at_ == kNever ? 0 : abandoned_at_ + kRekeyReaskAfter; }
  bool wanted() const { return wanted_; }
  // When the wanted exchange may start.
  TimePoint wanted_at() const { return wanted_at_; }
  // A REKEY message (or CONFIRM) is due now.
  bool message_due(TimePoint now) const;
  // Writes the due message's type, flags and body (REQUEST, its retry, the
  // RESPONSE owed, or CONFIRM) for the caller to seal. nullopt when none is due.
  struct Message {
    wire::PacketType type;
    std::uint8_t flags;
    wire::Body body;
  };
  std::optional<Message> make_message(crypto::RandomSource& rng, Duration retry_interval,
                                      TimePoint now);

  // A REKEY_REQUEST or REKEY_RESPONSE that opened (its header and body).
  // Returns true when the peer must be answered at once (make_message for a
  // RESPONSE; a heartbeat for a CONFIRM, sealed under the new key).
  enum class Answer : std::uint8_t { kNone, kRekeyMessage, kHeartbeat };
  Answer on_message(const wire::Header& h, const wire::Body& body, TimePoint now);

  // Releases the previous epoch's opener once its grace has passed and gives
  // up on exhausted attempts; next_expiry() says when that or a retry is due.
  void on_expiry(TimePoint now);
  TimePoint next_expiry() const;

  std::uint32_t epoch() const { return send_epoch_; }
  // When the sending epoch's key was put in force.
  TimePoint key_since() const { return key_since_; }
  // Packets sealed under the sending epoch's key.
  std::uint64_t sent_under_key() const { return sealer_.next_packet_number(); }
  // The per-direction bound for this session's algorithm (kRekeyAfterPackets*).
  std::uint64_t packet_bound() const { return packet_bound_; }
  bool in_progress() const { return pending_.has_value(); }
  const RekeyStats& stats() const { return stats_; }

 private:
  enum class Role : std::uint8_t { kRequester, kResponder };
  enum class Stage : std::uint8_t {
    kAwaitResponse,    // requester: REQUEST sent
    kAwaitPeerSwitch,  // requester: sends under n+1, CONFIRM sent, waits for a packet under n+1
    kAwaitConfirm,     // responder: RESPONSE sent, waits for a packet under n+1
  };
  struct Pending {
    Role role = Role::kRequester;
    Stage stage = Stage::kAwaitResponse;
    std::uint32_t epoch = 0;  // n + 1
    crypto::SecretBytes private_key;  // ours; released once the key is derived
    wire::Bytes32 our_public{};
    wire::Bytes32 peer_public{};
    std::optional<crypto::SecretBytes> key;  // epoch n + 1's session key, once derived
    wire::Bytes16 confirmation{};
    int attempts = 0;  // REQUESTs (or CONFIRMs) sent
    TimePoint next_send = kNever;
    bool owed = false;  // the RESPONSE (or CONFIRM) is due at once
    TimePoint give_up_at = kNever;  // responder: no CONFIRM by then, the exchange is dropped
  };
  struct Receiver {
    std::uint32_t epoch;
    crypto::PacketOpener opener;
    TimePoint release_at = kNever;
  };

  SessionKeys(crypto::SecretBytes key, std::uint64_t session_id, bool initiator,
              crypto::ProtectionMode mode, crypto::AeadAlgorithm algorithm,
              crypto::PacketSealer sealer, crypto::PacketOpener opener, TimePoint now);
  Result<crypto::PacketSealer> sealer_for(const crypto::SecretBytes& key) const;
  Result<crypto::PacketOpener> opener_for(const crypto::SecretBytes& key) const;

  bool start(crypto::RandomSource& rng, TimePoint now);
  Answer on_request(const wire::Header& h, const wire::RekeyRequestBody& b, TimePoint now);
  Answer on_response(const wire::RekeyResponseBody& b, TimePoint now);
  // Whether the slot of the next epoch is free (releasing it if its grace passed).
  bool next_slot_free(TimePoint now);
  // The first packet under epoch n + 1 opened: n + 1 is the key in force.
  void complete(TimePoint now);
  std::optional<Receiver>& slot(std::uint32_t epoch) { return receivers_[epoch & 1]; }

  crypto::SecretBytes key_;  // the session key of the epoch in force (send_epoch_ once complete)
  std::uint64_t session_id_;
  bool initiator_;
  crypto::ProtectionMode mode_;
  crypto::AeadAlgorithm algorithm_;
  std::uint64_t packet_bound_;
  std::uint32_t send_epoch_ = 0;
  crypto::PacketSealer sealer_;
  std::optional<Receiver> receivers_[2];
  std::uint32_t recv_epoch_ = 0;  // the newest epoch the peer has sent under
  std::optional<Pending> pending_;
  bool wanted_ = false;
  TimePoint wanted_at_ = 0;
  TimePoint abandoned_at_ = kNever;  // our last exchange abandoned
  TimePoint key_since_;
  RekeyStats stats_;
};

}  // namespace buckwild::session

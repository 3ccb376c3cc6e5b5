// The initiator's side of discovery (docs/protocol.md §6.3):
//
//   IDLE --start--> INITIATED --consume_response--> RESPONDED
//        --consume_sequence_confirm--> COMPLETED
//   INITIATED/RESPONDED --no answer by 10 s--> FAILED
//
// DISCOVERY is sent at 0, 1, 3 and 7 s after start (the same bytes each time:
// the responder answers a retransmission identically); CONFIRM likewise after
// RESPONDED. Time comes from the caller: `now` (monotonic) drives retries and
// `now_unix_ms` stamps messages.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/common/bytes.h"
#include "core/common/error.h"
#include "core/common/time.h"
#include "core/crypto/random.h"
#include "core/crypto/secret_bytes.h"
#include "core/crypto/x25519.h"
#include "core/discovery/established.h"
#include "core/discovery/psk_set.h"
#include "core/discovery/transcript.h"

namespace buckwild::discovery {

inline constexpr Duration kRetryIntervals[] = {seconds(1), seconds(2), seconds(4)};
inline constexpr Duration kDiscoveryTimeout = seconds(10);

class Initiator {
 public:
  enum class State : std::uint8_t { kIdle, kInitiated, kResponded, kCompleted, kFailed };

  struct Outcome {
    Established session;
    std::vector<std::uint8_t> confirm;  // the DISCOVERY_CONFIRM datagram to send
  };

  // `psks` must outlive the Initiator. `offered` is the feature set this host
  // offers (features.h).
  Initiator(const PskSet& psks, std::uint16_t offered, crypto::RandomSource& rng);

  // IDLE → INITIATED: draws fresh nonces, ephemeral key and contribution, and
  // returns the DISCOVERY datagram for the responder's discovery port.
  std::vector<std::uint8_t> start(std::int64_t now_unix_ms, TimePoint now);

  // INITIATED → RESPONDED. Verifies a DISCOVERY_RESPONSE and returns the session
  // and the CONFIRM to send. A response that does not verify changes nothing:
  // kStateInvalid (not INITIATED), kSessionNotFound (another discovery id),
  // kInvalidPacket, kTimestampInvalid (responder's clock over 30 s away), kDiscoveryFailed (unacceptable features),
  // kPskNotFound (matched tag is none of ours), kAuthenticationFailed (proof).
  // `arrived_unix_ms`: our Unix time when the RESPONSE arrived (the kernel's
  // receive stamp), from which the clock offset is measured; the CONFIRM,
  // sent at `now_unix_ms`, is stamped half way between the two.
  Result<Outcome> consume_response(Bytes datagram, std::int64_t arrived_unix_ms,
                                   std::int64_t now_unix_ms, TimePoint now);
  // Processed as it arrives.
  Result<Outcome> consume_response(Bytes datagram, std::int64_t now_unix_ms, TimePoint now) {
    return consume_response(datagram, now_unix_ms, now_unix_ms, now);
  }

  // RESPONDED → COMPLETED when `confirm` equals what the responder must send.
  // kStateInvalid or kSequenceInvalid otherwise (state unchanged).
  Result<void> consume_sequence_confirm(const wire::SequenceNegBody& confirm);

  // When on_expiry() wants to run; kNever in IDLE, COMPLETED, FAILED.
  TimePoint next_expiry() const { return next_expiry_; }

  // Retransmits the pending message (DISCOVERY or CONFIRM) when its time has
  // come, or moves to FAILED at the timeout (and returns nothing).
  std::optional<std::vector<std::uint8_t>> on_expiry(TimePoint now);

  State state() const { return state_; }
  std::uint64_t discovery_id() const { return discovery_id_; }

 private:
  void schedule(TimePoint now);
  void forget_secrets();

  const PskSet& psks_;
  std::uint16_t offered_;
  crypto::RandomSource& rng_;

  State state_ = State::kIdle;
  std::uint64_t discovery_id_ = 0;
  std::uint32_t discovery_ts_ = 0;
  wire::Bytes16 nonce_{};
  crypto::Digest h1_{};
  // The keys offered in this discovery: PSKs first_offered_ ... first_offered_
  // + own_tags_.size() - 1, own_tags_[i] the tag of PSK first_offered_ + i.
  // More keys than slots are offered a slot-full at a time, the next batch at
  // the next start().
  std::vector<Tag> own_tags_;
  std::size_t first_offered_ = 0;
  std::size_t next_offered_ = 0;
  crypto::X25519KeyPair ephemeral_;
  crypto::SecretBytes contribution_;  // s_I, 32 bytes
  crypto::Scalar blind_{};            // r_I
  crypto::Commitment commitment_{};
  wire::SequenceNegBody expected_confirm_;

  std::vector<std::uint8_t> pending_;  // the datagram being retransmitted
  TimePoint started_ = 0;           // when the current phase began
  std::int64_t started_unix_ms_ = 0;  // Unix time at start()
  TimePoint last_tx_ = 0;           // the latest (re)transmission
  TimePoint next_expiry_ = kNever;
  std::size_t retries_ = 0;
};

}  // namespace buckwild::discovery

// The connection handshake: sequence commitments and initial sequence numbers.
//
// Each side picks a random 32-byte contribution x and blinding scalar r and
// commits to x with C = Pedersen(x, r) (core/crypto/pedersen.h):
//
//   SYN              C_a                        commits before seeing anything
//   SYN-ACK          C_b, (x_b, r_b)            commits and opens at once
//   ACK (SYN flag)   (x_a, r_a)                 opens C_a
//
// Each side checks the peer's opening against the commitment it received. Once
// both contributions are known, the initial sequence number (ISN) of each
// direction is
//
//   ISN(dir) = BE32(SHA-256("buckwild isn v1" || x_low || x_high || dir)[0..4])
//
// where "low" is the side whose commitment is lexicographically smaller and dir
// is 0 for low -> high, 1 for high -> low. Ordering by commitment rather than by
// who sent the first SYN gives both sides the same answer in every open,
// simultaneous or not, without either knowing how the other saw it. Neither
// side can choose an ISN: the opener is bound to x_a before it sees x_b, and
// the responder sees only a hiding commitment when it picks x_b.
//
// create_* builds a message's body from local state; consume_* checks a
// received one and records what it reveals.
#pragma once

#include <cstdint>

#include "core/common/error.h"
#include "core/conn/seq.h"
#include "core/crypto/pedersen.h"
#include "core/wire/messages.h"

namespace buckwild::crypto {
class RandomSource;
}

namespace buckwild::conn {

// ISN of direction `dir` (0: low -> high, 1: high -> low) for contributions
// x_low and x_high.
Seq derive_isn(const wire::Bytes32& x_low, const wire::Bytes32& x_high, std::uint8_t dir);

class Handshake {
 public:
  // A fresh contribution and its commitment. Fails (kPedersenCommitmentFailed)
  // only if the commitment cannot be computed.
  static Result<Handshake> create(crypto::RandomSource& rng);

  Handshake(const Handshake&) = delete;
  Handshake& operator=(const Handshake&) = delete;
  Handshake(Handshake&&) = default;
  Handshake& operator=(Handshake&&) = default;
  ~Handshake();

  const crypto::Commitment& commitment() const { return commitment_; }
  wire::Opening opening() const { return wire::Opening{value_, blind_}; }
  bool has_peer_commitment() const { return has_peer_commitment_; }
  const crypto::Commitment& peer_commitment() const { return peer_commitment_; }
  // Both contributions are known: the ISNs can be derived.
  bool complete() const { return complete_; }

  wire::SynBody create_syn(const wire::ConnectionParams& params) const;
  // Records the peer's commitment. Fails with kStateInvalid if a different
  // commitment was already recorded for this connection.
  Result<void> consume_syn(const wire::SynBody& syn);

  wire::SynAckBody create_syn_ack(const wire::ConnectionParams& params) const;
  // Records the peer's commitment (or checks it against the one from its SYN)
  // and verifies the opening. Fails with kPedersenCommitmentFailed if the
  // commitment changed or the opening does not open it. Once complete(), a
  // repeat is checked by comparing the value (the commitment binds it).
  Result<void> consume_syn_ack(const wire::SynAckBody& syn_ack);

  // The body of the handshake-completing ACK: our opening, no SACK blocks.
  wire::AckBody create_opening_ack() const;
  // Verifies an opening (from an ACK with the SYN flag) against the peer's
  // commitment. Fails with kStateInvalid if no commitment was received yet,
  // kPedersenCommitmentFailed if it does not open it. Once complete(), a
  // repeat is checked by comparing the value.
  Result<void> consume_opening(const wire::Opening& opening);

  // After complete(): whether our commitment sorts first, and the ISNs.
  bool local_is_low() const;
  Seq send_isn() const;
  Seq receive_isn() const;

 private:
  Handshake() = default;

  wire::Bytes32 value_{};
  wire::Bytes32 blind_{};
  crypto::Commitment commitment_{};
  crypto::Commitment peer_commitment_{};
  wire::Bytes32 peer_value_{};
  bool has_peer_commitment_ = false;
  bool complete_ = false;
};

}  // namespace buckwild::conn

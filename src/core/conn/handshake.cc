#include "core/conn/handshake.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <string_view>

#include "core/crypto/hmac.h"
#include "core/crypto/random.h"

namespace buckwild::conn {
namespace {

constexpr std::string_view kIsnLabel = "buckwild isn v1";

Bytes label_bytes() {
  return Bytes(reinterpret_cast<const std::uint8_t*>(kIsnLabel.data()), kIsnLabel.size());
}

}  // namespace

Seq derive_isn(const wire::Bytes32& x_low, const wire::Bytes32& x_high, std::uint8_t dir) {
  const std::uint8_t d[1] = {dir};
  const crypto::Digest h = crypto::sha256({label_bytes(), x_low, x_high, Bytes(d, 1)});
  return load_be32(h.data());
}

Result<Handshake> Handshake::create(crypto::RandomSource& rng) {
  Handshake hs;
  rng.fill(hs.value_);
  const crypto::Scalar blind = crypto::random_blind(rng);
  std::copy(blind.begin(), blind.end(), hs.blind_.begin());
  auto c = crypto::pedersen_commit(hs.value_, hs.blind_);
  if (!c) return std::unexpected(c.error());
  hs.commitment_ = *c;
  return hs;
}

Handshake::~Handshake() {
  // The contribution is public once opened; before that it must not linger.
  volatile std::uint8_t* v = value_.data();
  volatile std::uint8_t* b = blind_.data();
  for (std::size_t i = 0; i < value_.size(); ++i) v[i] = 0;
  for (std::size_t i = 0; i < blind_.size(); ++i) b[i] = 0;
}

// ---- SYN --------------------------------------------------------------------------------

wire::SynBody Handshake::create_syn(const wire::ConnectionParams& params) const {
  return wire::SynBody{commitment_, params, std::nullopt};
}

Result<void> Handshake::consume_syn(const wire::SynBody& syn) {
  if (has_peer_commitment_) {
    if (syn.commitment != peer_commitment_) {
      return fail(ErrorCode::kStateInvalid, "SYN with a different commitment");
    }
    return {};
  }
  peer_commitment_ = syn.commitment;
  has_peer_commitment_ = true;
  return {};
}

// ---- SYN-ACK ------------------------------------------------------------------------------

wire::SynAckBody Handshake::create_syn_ack(const wire::ConnectionParams& params) const {
  return wire::SynAckBody{commitment_, opening(), params};
}

Result<void> Handshake::consume_syn_ack(const wire::SynAckBody& syn_ack) {
  if (has_peer_commitment_ && syn_ack.commitment != peer_commitment_) {
    return fail(ErrorCode::kPedersenCommitmentFailed, "SYN-ACK commitment differs from the SYN's");
  }
  if (complete_) {
    // A repeat: the commitment is bound, so the same value means the same opening.
    if (syn_ack.opening.value != peer_value_) {
      return fail(ErrorCode::kPedersenCommitmentFailed, "SYN-ACK opening changed");
    }
    return {};
  }
  if (!crypto::pedersen_verify(syn_ack.commitment, syn_ack.opening.value, syn_ack.opening.blind)) {
    return fail(ErrorCode::kPedersenCommitmentFailed, "SYN-ACK opening does not match");
  }
  if (syn_ack.commitment == commitment_) {
    return fail(ErrorCode::kPedersenCommitmentFailed, "peer reused our commitment");
  }
  peer_commitment_ = syn_ack.commitment;
  has_peer_commitment_ = true;
  peer_value_ = syn_ack.opening.value;
  complete_ = true;
  return {};
}

// ---- the completing ACK ----------------------------------------------------------------------

wire::AckBody Handshake::create_opening_ack() const {
  wire::AckBody body;
  body.has_opening = true;
  body.opening = opening();
  return body;
}

Result<void> Handshake::consume_opening(const wire::Opening& opening) {
  if (!has_peer_commitment_) return fail(ErrorCode::kStateInvalid, "opening before a commitment");
  if (complete_) {
    if (opening.value != peer_value_) {
      return fail(ErrorCode::kPedersenCommitmentFailed, "opening changed");
    }
    return {};
  }
  if (!crypto::pedersen_verify(peer_commitment_, opening.value, opening.blind)) {
    return fail(ErrorCode::kPedersenCommitmentFailed, "opening does not match the commitment");
  }
  if (peer_commitment_ == commitment_) {
    return fail(ErrorCode::kPedersenCommitmentFailed, "peer reused our commitment");
  }
  peer_value_ = opening.value;
  complete_ = true;
  return {};
}

// ---- initial sequence numbers ---------------------------------------------------------------

bool Handshake::local_is_low() const {
  assert(has_peer_commitment_);
  return std::memcmp(commitment_.data(), peer_commitment_.data(), commitment_.size()) < 0;
}

Seq Handshake::send_isn() const {
  assert(complete_);
  return local_is_low() ? derive_isn(value_, peer_value_, 0) : derive_isn(peer_value_, value_, 1);
}

Seq Handshake::receive_isn() const {
  assert(complete_);
  return local_is_low() ? derive_isn(value_, peer_value_, 1) : derive_isn(peer_value_, value_, 0);
}

}  // namespace buckwild::conn

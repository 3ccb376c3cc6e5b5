#include "core/conn/handshake.h"

#include <gtest/gtest.h>

#include "core/crypto/hmac.h"
#include "core/crypto/random.h"

namespace buckwild::conn {
namespace {

TEST(HandshakeTest, IsnDerivationMatchesItsDefinition) {
  wire::Bytes32 lo{};
  wire::Bytes32 hi{};
  lo.fill(0x11);
  hi.fill(0x22);
  const std::string label = "buckwild isn v1";
  const std::uint8_t dir0[1] = {0};
  const crypto::Digest d = crypto::sha256(
      {Bytes(reinterpret_cast<const std::uint8_t*>(label.data()), label.size()), lo, hi, Bytes(dir0, 1)});
  EXPECT_EQ(derive_isn(lo, hi, 0), load_be32(d.data()));
  EXPECT_NE(derive_isn(lo, hi, 0), derive_isn(lo, hi, 1));
  EXPECT_NE(derive_isn(lo, hi, 0), derive_isn(hi, lo, 0));
}

// The normal open: SYN, SYN-ACK, ACK with the opening.
TEST(HandshakeTest, BothSidesDeriveTheSameIsns) {
  crypto::DeterministicRandom rng(1);
  auto a = Handshake::create(rng);
  auto b = Handshake::create(rng);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(b->consume_syn(a->create_syn({})));
  EXPECT_FALSE(b->complete());
  ASSERT_TRUE(a->consume_syn_ack(b->create_syn_ack({})));
  EXPECT_TRUE(a->complete());
  ASSERT_TRUE(b->consume_opening(a->create_opening_ack().opening));
  EXPECT_TRUE(b->complete());
  EXPECT_EQ(a->send_isn(), b->receive_isn());
  EXPECT_EQ(a->receive_isn(), b->send_isn());
  EXPECT_NE(a->local_is_low(), b->local_is_low());
}

TEST(HandshakeTest, SimultaneousOpenAgrees) {
  crypto::DeterministicRandom rng(2);
  auto a = Handshake::create(rng);
  auto b = Handshake::create(rng);
  ASSERT_TRUE(a->consume_syn(b->create_syn({})));
  ASSERT_TRUE(b->consume_syn(a->create_syn({})));
  ASSERT_TRUE(a->consume_syn_ack(b->create_syn_ack({})));
  ASSERT_TRUE(b->consume_syn_ack(a->create_syn_ack({})));
  EXPECT_EQ(a->send_isn(), b->receive_isn());
  EXPECT_EQ(a->receive_isn(), b->send_isn());
}

TEST(HandshakeTest, WrongOpeningsFail) {
  crypto::DeterministicRandom rng(3);
  auto a = Handshake::create(rng);
  auto b = Handshake::create(rng);
  ASSERT_TRUE(b->consume_syn(a->create_syn({})));
  wire::Opening forged = a->opening();
  forged.value[0] ^= 1;
  auto r = b->consume_opening(forged);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kPedersenCommitmentFailed);
  EXPECT_FALSE(b->complete());

  wire::SynAckBody sa = b->create_syn_ack({});
  sa.opening.blind[3] ^= 0x40;
  auto r2 = a->consume_syn_ack(sa);
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().code, ErrorCode::kPedersenCommitmentFailed);
}

TEST(HandshakeTest, CommitmentsCannotChange) {
  crypto::DeterministicRandom rng(4);
  auto a = Handshake::create(rng);
  auto b = Handshake::create(rng);
  auto c = Handshake::create(rng);
  ASSERT_TRUE(a->consume_syn(b->create_syn({})));
  EXPECT_TRUE(a->consume_syn(b->create_syn({})));  // a repeat is fine
  auto r = a->consume_syn(c->create_syn({}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kStateInvalid);
  // A SYN-ACK from someone else than the SYN's sender.
  auto r2 = a->consume_syn_ack(c->create_syn_ack({}));
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().code, ErrorCode::kPedersenCommitmentFailed);
  // An opening before any commitment.
  auto fresh = Handshake::create(rng);
  EXPECT_EQ(fresh->consume_opening(b->opening()).error().code, ErrorCode::kStateInvalid);
}

TEST(HandshakeTest, ReflectedCommitmentIsRejected) {
  crypto::DeterministicRandom rng(5);
  auto a = Handshake::create(rng);
  EXPECT_FALSE(a->consume_syn_ack(a->create_syn_ack({})));
}

}  // namespace
}  // namespace buckwild::conn

#include "core/session/rekey.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "core/crypto/random.h"
#include "core/crypto/x25519.h"
#include "core/session/session.h"
#include "core/wire/codec.h"
#include "support/session_pair.h"

namespace buckwild::session {
namespace {

constexpr std::int64_t kUnix = 1'764'080'000'000;
constexpr TimePoint kT0 = seconds(5000);

using Datagram = std::vector<std::uint8_t>;

std::int64_t unix_at(TimePoint now) { return kUnix + (now - kT0) / 1000; }

Datagram data_from(Session& s, const std::string& ip, TimePoint now) {
  Datagram buf(wire::kMaxDatagramSize);
  std::memcpy(buf.data() + wire::kHeaderSize, ip.data(), ip.size());
  buf.resize(s.seal_datagram(buf, ip.size(), unix_at(now), now).value());
  return buf;
}

Datagram rekey_from(Session& s, crypto::RandomSource& rng, TimePoint now) {
  Datagram buf(wire::kMaxDatagramSize);
  auto n = s.make_rekey(buf, rng, unix_at(now), now);
  EXPECT_TRUE(n.has_value());
  buf.resize(n ? *n : 0);
  return buf;
}

Datagram heartbeat_answer_from(Session& s, TimePoint now) {
  Datagram buf(wire::kMaxDatagramSize);
  buf.resize(s.make_heartbeat_answer(buf, unix_at(now), now).value());
  return buf;
}

wire::Header header_of(const Datagram& d) { return wire::parse_header(d).value(); }

// The Received's body points into `d`: keep `d` while it is read.
Session::Received open_ok(Session& s, Datagram& d, TimePoint now) {
  auto r = s.open(d, unix_at(now), now);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().what);
  return r ? *r : Session::Received{};
}
// A datagram opened for its effect alone (its body is gone with it).
Session::Received open_ok(Session& s, Datagram&& d, TimePoint now) { return open_ok(s, d, now); }

struct Pair {
  testing::SessionPair p;
  crypto::DeterministicRandom rng{7};
  Session& a() { return *p.initiator; }
  Session& b() { return *p.responder; }
};

// One complete exchange, a requesting, b answering, no loss. Returns the
// datagrams a sealed under the old key just before switching (stragglers).
void full_rekey(Pair& x, Session& req, Session& resp, TimePoint& t) {
  req.request_rekey(t);
  ASSERT_TRUE(req.on_expiry(t).send_rekey);
  auto request = rekey_from(req, x.rng, t);
  ASSERT_EQ(header_of(request).type, wire::PacketType::kRekeyRequest);
  t += milliseconds(10);
  auto r1 = open_ok(resp, request, t);
  ASSERT_TRUE(r1.send_rekey);
  auto response = rekey_from(resp, x.rng, t);
  ASSERT_EQ(header_of(response).type, wire::PacketType::kRekeyResponse);
  t += milliseconds(10);
  auto r2 = open_ok(req, response, t);
  ASSERT_TRUE(r2.send_rekey);
  auto confirm = rekey_from(req, x.rng, t);
  ASSERT_EQ(header_of(confirm).type, wire::PacketType::kRekeyRequest);
  ASSERT_NE(header_of(confirm).flags & wire::flags::kAck, 0);
  t += milliseconds(10);
  auto r3 = open_ok(resp, confirm, t);
  ASSERT_TRUE(r3.answer_heartbeat);
  auto answer = heartbeat_answer_from(resp, t);
  t += milliseconds(10);
  open_ok(req, answer, t);
}

TEST(RekeyTest, ExchangeSwitchesBothDirectionsAndRestartsPacketNumbers) {
  Pair x{testing::make_session_pair(kUnix, kT0)};
  TimePoint t = kT0;
  for (int i = 0; i < 3; ++i) open_ok(x.b(), data_from(x.a(), "before", t), t);
  EXPECT_EQ(x.a().keys().epoch(), 0u);
  full_rekey(x, x.a(), x.b(), t);
  EXPECT_EQ(x.a().keys().epoch(), 1u);
  EXPECT_EQ(x.b().keys().epoch(), 1u);
  EXPECT_EQ(x.a().keys().stats().rekeys, 1u);
  EXPECT_EQ(x.b().keys().stats().rekeys, 1u);
  EXPECT_EQ(x.a().keys().key_since(), t - milliseconds(20));  // switched on the RESPONSE
  // Packet numbers restart under the new key, with KEY_PHASE set.
  auto d = data_from(x.a(), "after", t);
  EXPECT_NE(header_of(d).flags & wire::flags::kKeyPhase, 0);
  EXPECT_LE(header_of(d).packet_number, 2u);
  auto r = open_ok(x.b(), d, t);
  EXPECT_EQ(std::string(r.body.begin(), r.body.end()), "after");
  auto back = data_from(x.b(), "back", t);
  EXPECT_NE(header_of(back).flags & wire::flags::kKeyPhase, 0);
  open_ok(x.a(), back, t);
  EXPECT_EQ(x.a().stats().rejected, 0u);
  EXPECT_EQ(x.b().stats().rejected, 0u);
  // The second rekey (b asks this time) goes back to phase 0, once the grace passed.
  t += kOldKeyGrace + milliseconds(1);
  x.a().on_expiry(t);
  x.b().on_expiry(t);
  full_rekey(x, x.b(), x.a(), t);
  EXPECT_EQ(x.a().keys().epoch(), 2u);
  EXPECT_EQ(header_of(data_from(x.a(), "x", t)).flags & wire::flags::kKeyPhase, 0);
}

TEST(RekeyTest, PacketsSealedUnderTheOldKeyStillOpenDuringTheGrace) {
  Pair x{testing::make_session_pair(kUnix, kT0)};
  TimePoint t = kT0;
  // Stragglers: sealed by both sides before the switch, delivered after it.
  std::vector<Datagram> a_old, b_old;
  for (int i = 0; i < 4; ++i) a_old.push_back(data_from(x.a(), "old a", t));
  for (int i = 0; i < 4; ++i) b_old.push_back(data_from(x.b(), "old b", t));
  full_rekey(x, x.a(), x.b(), t);
  for (auto& d : a_old) open_ok(x.b(), d, t);
  for (auto& d : b_old) open_ok(x.a(), d, t + seconds(4));
  EXPECT_EQ(x.a().keys().stats().old_key_opened, 4u);
  EXPECT_EQ(x.b().stats().rejected, 0u);
  EXPECT_EQ(x.a().stats().rejected, 0u);
  // After the grace the old key is gone (zeroed): a late straggler fails.
  auto late = data_from(x.b(), "x", t);  // new key: still fine
  open_ok(x.a(), late, t + seconds(6));
  x.a().on_expiry(t + seconds(6));
  Datagram replay = b_old.front();
  EXPECT_FALSE(x.a().open(replay, unix_at(t + seconds(6)), t + seconds(6)).has_value());
}

TEST(RekeyTest, ResponderKeepsSendingUnderTheOldKeyUntilItHearsTheNewOne) {
  Pair x{testing::make_session_pair(kUnix, kT0)};
  TimePoint t = kT0;
  x.a().request_rekey(t);
  ASSERT_TRUE(x.a().on_expiry(t).send_rekey);
  auto request = rekey_from(x.a(), x.rng, t);
  ASSERT_TRUE(open_ok(x.b(), request, t).send_rekey);
  auto response = rekey_from(x.b(), x.rng, t);
  // The responder still seals under epoch 0 and the requester still opens it.
  auto d = data_from(x.b(), "still old", t);
  EXPECT_EQ(header_of(d).flags & wire::flags::kKeyPhase, 0);
  open_ok(x.a(), d, t);
  ASSERT_TRUE(open_ok(x.a(), response, t).send_rekey);
  // The requester's data under the new key switches the responder even when
  // the CONFIRM is lost.
  (void)rekey_from(x.a(), x.rng, t);  // the CONFIRM, dropped
  open_ok(x.b(), data_from(x.a(), "new", t), t);
  EXPECT_EQ(x.b().keys().epoch(), 1u);
  EXPECT_EQ(x.b().keys().stats().rekeys, 1u);
}

TEST(RekeyTest, LostMessagesAreRetriedWithBackoff) {
  Pair x{testing::make_session_pair(kUnix, kT0)};
  TimePoint t = kT0;
  x.a().request_rekey(t);
  ASSERT_TRUE(x.a().on_expiry(t).send_rekey);
  (void)rekey_from(x.a(), x.rng, t);  // REQUEST lost
  const TimePoint retry_at = x.a().keys().next_expiry();
  EXPECT_GT(retry_at, t);
  EXPECT_FALSE(x.a().on_expiry(retry_at - 1).send_rekey);
  t = retry_at;
  ASSERT_TRUE(x.a().on_expiry(t).send_rekey);
  auto request = rekey_from(x.a(), x.rng, t);  // the retry arrives
  ASSERT_TRUE(open_ok(x.b(), request, t).send_rekey);
  (void)rekey_from(x.b(), x.rng, t);  // RESPONSE lost
  t = x.a().keys().next_expiry();
  ASSERT_TRUE(x.a().on_expiry(t).send_rekey);
  auto again = rekey_from(x.a(), x.rng, t);  // same contribution, resent
  auto r = open_ok(x.b(), again, t);
  ASSERT_TRUE(r.send_rekey);
  auto response = rekey_from(x.b(), x.rng, t);  // the same RESPONSE
  ASSERT_TRUE(open_ok(x.a(), response, t).send_rekey);
  EXPECT_EQ(x.a().keys().epoch(), 1u);
  EXPECT_EQ(x.a().keys().stats().rekey_retries, 2u);
  auto confirm = rekey_from(x.a(), x.rng, t);
  open_ok(x.b(), confirm, t);
  EXPECT_EQ(x.b().keys().epoch(), 1u);
}

TEST(RekeyTest, UnansweredRequestsAreAbandonedAfterFiveAttempts) {
  Pair x{testing::make_session_pair(kUnix, kT0)};
  TimePoint t = kT0;
  x.a().request_rekey(t);
  int sent = 0;
  for (int i = 0; i < 20 && x.a().keys().in_progress() + (sent == 0) > 0; ++i) {
    auto e = x.a().on_expiry(t);
    if (e.send_rekey) {
      auto d = rekey_from(x.a(), x.rng, t);
      if (!d.empty()) ++sent;
    }
    t = std::max(t + 1, x.a().keys().next_expiry());
  }
  EXPECT_EQ(sent, kMaxRekeyAttempts);
  EXPECT_FALSE(x.a().keys().in_progress());
  EXPECT_EQ(x.a().keys().stats().rekey_failures, 1u);
  EXPECT_EQ(x.a().keys().epoch(), 0u);
}

// After an abandoned exchange the key's own interval asks again only
// kRekeyReaskAfter later (the timer sleeps until then, it does not spin); a
// request for a later time (REKEY's backoff) starts no sooner than that.
TEST(RekeyTest, AnAbandonedExchangeIsNotRestartedBackToBackAndDelayedRequestsWait) {
  SessionConfig c;
  c.rekey_interval = seconds(10);
  Pair x{testing::make_session_pair(kUnix, kT0, 0, c)};
  TimePoint t = kT0 + seconds(10);
  for (int i = 0; i < 40 && x.a().keys().stats().requests_abandoned == 0; ++i) {
    auto e = x.a().on_expiry(t);
    if (e.send_rekey) rekey_from(x.a(), x.rng, t);  // never answered
    t = std::max(t + 1, x.a().next_expiry());
  }
  ASSERT_EQ(x.a().keys().stats().requests_abandoned, 1u);
  const TimePoint abandoned = x.a().keys().automatic_from() - kRekeyReaskAfter;
  EXPECT_LE(abandoned, t);
  EXPECT_FALSE(x.a().keys().in_progress());
  // The interval (long passed) waits for the hold-off: no exchange before it.
  EXPECT_FALSE(x.a().on_expiry(abandoned + kRekeyReaskAfter - 1).send_rekey);
  EXPECT_FALSE(x.a().keys().wanted());
  // REKEY asks for one 2 s from now: nothing before, the REQUEST at 2 s.
  const TimePoint now = abandoned + seconds(1);
  x.a().request_rekey_at(now + seconds(2));
  EXPECT_EQ(x.a().keys().next_expiry(), now + seconds(2));
  EXPECT_FALSE(x.a().on_expiry(now + seconds(2) - 1).send_rekey);
  EXPECT_EQ(rekey_from(x.a(), x.rng, now + seconds(2) - 1).size(), 0u);
  EXPECT_TRUE(x.a().on_expiry(now + seconds(2)).send_rekey);
  EXPECT_EQ(header_of(rekey_from(x.a(), x.rng, now + seconds(2))).type, wire::PacketType::kRekeyRequest);
  EXPECT_EQ(x.a().keys().stats().rekeys_requested, 2u);
}

TEST(RekeyTest, TheIntervalAsksAgainAfterTheHoldOff) {
  SessionConfig c;
  c.rekey_interval = seconds(10);
  Pair x{testing::make_session_pair(kUnix, kT0, 0, c)};
  TimePoint t = kT0 + seconds(10);
  for (int i = 0; i < 40 && x.a().keys().stats().requests_abandoned == 0; ++i) {
    auto e = x.a().on_expiry(t);
    if (e.send_rekey) rekey_from(x.a(), x.rng, t);
    t = std::max(t + 1, x.a().next_expiry());
  }
  ASSERT_EQ(x.a().keys().stats().requests_abandoned, 1u);
  const TimePoint from = x.a().keys().automatic_from();
  EXPECT_GT(from, t);  // when it was abandoned, plus the hold-off
  EXPECT_LE(x.a().next_expiry(), from);  // the timer wakes for it (no sleeping through)
  TimePoint u = t;
  for (int i = 0; i < 1000 && u < from; ++i) {
    const auto e = x.a().on_expiry(u);
    EXPECT_FALSE(e.send_rekey) << (u - t);
    if (e.send_heartbeat || e.probe) {
      Datagram hb(wire::kMaxDatagramSize);
      ASSERT_TRUE(x.a().make_heartbeat(hb, e.probe, unix_at(u), u).has_value());
    }
    u = std::max(u + 1, x.a().next_expiry());
  }
  ASSERT_EQ(u, from);
  EXPECT_TRUE(x.a().on_expiry(from).send_rekey);
}

TEST(RekeyTest, SimultaneousRequestsResolveToTheInitiators) {
  Pair x{testing::make_session_pair(kUnix, kT0)};
  TimePoint t = kT0;
  x.a().request_rekey(t);
  x.b().request_rekey(t);
  ASSERT_TRUE(x.a().on_expiry(t).send_rekey);
  ASSERT_TRUE(x.b().on_expiry(t).send_rekey);
  auto qa = rekey_from(x.a(), x.rng, t);
  auto qb = rekey_from(x.b(), x.rng, t);
  EXPECT_FALSE(open_ok(x.a(), qb, t).send_rekey);  // the initiator ignores the responder's
  ASSERT_TRUE(open_ok(x.b(), qa, t).send_rekey);   // the responder answers the initiator's
  auto resp = rekey_from(x.b(), x.rng, t);
  ASSERT_TRUE(open_ok(x.a(), resp, t).send_rekey);
  auto confirm = rekey_from(x.a(), x.rng, t);
  open_ok(x.b(), confirm, t);
  EXPECT_EQ(x.a().keys().epoch(), 1u);
  EXPECT_EQ(x.b().keys().epoch(), 1u);
}

TEST(RekeyTest, IntervalAndPacketBoundTrigger) {
  SessionConfig c;
  c.rekey_interval = seconds(10);
  Pair x{testing::make_session_pair(kUnix, kT0, 0, c)};
  EXPECT_LE(x.a().next_expiry(), kT0 + seconds(10));
  EXPECT_FALSE(x.a().on_expiry(kT0 + seconds(9)).send_rekey);
  EXPECT_TRUE(x.a().on_expiry(kT0 + seconds(10)).send_rekey);
  // ChaCha20-Poly1305 (the pair's protection): 2^32 packets per key.
  EXPECT_EQ(x.a().keys().packet_bound(), kRekeyAfterPackets);
}

// A REKEY message sealed by `s` with a body of our choosing (what a buggy or
// confused peer could send: it authenticates, its content is wrong).
Datagram sealed_body(Session& s, wire::PacketType type, std::uint8_t flags, const wire::Body& body,
                     TimePoint now) {
  Datagram buf(wire::kMaxDatagramSize);
  wire::Header h;
  h.type = type;
  h.flags = flags;
  const std::size_t n = wire::write_body(h, body, MutableBytes(buf).subspan(wire::kHeaderSize)).value();
  buf.resize(s.seal(h, buf, n, unix_at(now), now).value());
  return buf;
}

TEST(RekeyTest, RekeyMessagesForTheWrongEpochOrWithABadConfirmationChangeNothing) {
  Pair x{testing::make_session_pair(kUnix, kT0)};
  TimePoint t = kT0;
  crypto::DeterministicRandom other(99);
  const auto stranger = crypto::x25519_generate(other);
  wire::Bytes32 pub{};
  std::copy(stranger.public_key.begin(), stranger.public_key.end(), pub.begin());
  // A REQUEST for epoch 5 (the next is 1): ignored, counted.
  wire::RekeyRequestBody wrong;
  wrong.nonce = 5;
  wrong.ephemeral = pub;
  auto r = open_ok(x.b(), sealed_body(x.a(), wire::PacketType::kRekeyRequest, 0, wrong, t), t);
  EXPECT_FALSE(r.send_rekey);
  EXPECT_FALSE(x.b().keys().in_progress());
  EXPECT_EQ(x.b().keys().stats().rekey_invalid, 1u);
  // A RESPONSE nobody asked for.
  wire::RekeyResponseBody unasked;
  unasked.nonce = 1;
  unasked.ephemeral = pub;
  EXPECT_FALSE(open_ok(x.a(), sealed_body(x.b(), wire::PacketType::kRekeyResponse,
                                          wire::flags::kAck, unasked, t), t)
                   .send_rekey);
  EXPECT_EQ(x.a().keys().stats().rekey_invalid, 1u);
  // A RESPONSE to our REQUEST whose confirmation does not match: ignored, and
  // the requester keeps sending under the old key and waiting.
  x.a().request_rekey(t);
  ASSERT_TRUE(x.a().on_expiry(t).send_rekey);
  (void)rekey_from(x.a(), x.rng, t);
  EXPECT_FALSE(open_ok(x.a(), sealed_body(x.b(), wire::PacketType::kRekeyResponse,
                                          wire::flags::kAck, unasked, t), t)
                   .send_rekey);
  EXPECT_EQ(x.a().keys().stats().rekey_invalid, 2u);
  EXPECT_EQ(x.a().keys().epoch(), 0u);
  EXPECT_TRUE(x.a().keys().in_progress());
  EXPECT_EQ(header_of(data_from(x.a(), "x", t)).flags & wire::flags::kKeyPhase, 0);
  // A CONFIRM for an epoch that is not in force: ignored.
  wire::RekeyRequestBody confirm;
  confirm.nonce = 3;
  confirm.ephemeral = pub;
  EXPECT_FALSE(open_ok(x.b(), sealed_body(x.a(), wire::PacketType::kRekeyRequest,
                                          wire::flags::kAck, confirm, t), t)
                   .answer_heartbeat);
  EXPECT_EQ(x.a().stats().rejected + x.b().stats().rejected, 0u);
}

TEST(RekeyTest, OldSessionKeyIsReleasedAndEpochsNeverReuseAKey) {
  // Two exchanges with the same requester key pair would still give
  // different keys: each derivation mixes in the epoch and the previous key.
  Pair x{testing::make_session_pair(kUnix, kT0)};
  TimePoint t = kT0;
  std::vector<Datagram> sent;
  for (int round = 0; round < 4; ++round) {
    full_rekey(x, round % 2 == 0 ? x.a() : x.b(), round % 2 == 0 ? x.b() : x.a(), t);
    sent.push_back(data_from(x.a(), "same plaintext", t));
    t += kOldKeyGrace + milliseconds(1);
    x.a().on_expiry(t);
    x.b().on_expiry(t);
  }
  EXPECT_EQ(x.a().keys().epoch(), 4u);
  EXPECT_EQ(x.b().keys().epoch(), 4u);
  // The same plaintext at similar packet numbers under each epoch: the
  // ciphertexts all differ (no key, hence no nonce, repeats).
  for (std::size_t i = 0; i < sent.size(); ++i) {
    for (std::size_t j = i + 1; j < sent.size(); ++j) {
      EXPECT_FALSE(std::equal(sent[i].begin() + wire::kHeaderSize, sent[i].end(),
                              sent[j].begin() + wire::kHeaderSize, sent[j].end()));
    }
  }
}

}  // namespace
}  // namespace buckwild::session

namespace buckwild::session {
namespace {

// docs/protocol.md appendix A.4, computed independently (Python hmac/hashlib).
TEST(RekeyTest, KeyDerivationMatchesTheProtocolVector) {
  std::uint8_t old_key[32], shared[32];
  wire::Bytes32 q{}, r{};
  for (int i = 0; i < 32; ++i) {
    old_key[i] = static_cast<std::uint8_t>(i);
    shared[i] = static_cast<std::uint8_t>(0x40 + i);
    q[i] = static_cast<std::uint8_t>(0x80 + i);
    r[i] = static_cast<std::uint8_t>(0xc0 + i);
  }
  const auto previous = crypto::SecretBytes::copy_of(Bytes(old_key, 32));
  auto key = rekey_session_key(previous, 0x9f3c5a7e11223344, 1, Bytes(shared, 32), q, r);
  ASSERT_TRUE(key.has_value());
  auto hex = [](Bytes b) {
    std::string s;
    for (std::uint8_t c : b) {
      constexpr char kDigits[] = "0123456789abcdef";
      s += kDigits[c >> 4];
      s += kDigits[c & 15];
    }
    return s;
  };
  EXPECT_EQ(hex(key->view()), "f376226e5867e57bc2e4aaa63a7b117d0476fbd97d75143102388a4ac0d52cb3");
  const auto c = rekey_confirmation(*key, 1, q, r);
  EXPECT_EQ(hex(Bytes(c.data(), c.size())), "1201b5cb9b79c3a76d8d7e0938e60fdf");
  EXPECT_FALSE(rekey_session_key(crypto::SecretBytes(16), 1, 1, Bytes(shared, 32), q, r).has_value());
}

}  // namespace
}  // namespace buckwild::session

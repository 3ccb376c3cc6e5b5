#include "core/conn/connection_table.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/crypto/random.h"
#include "core/wire/codec.h"

namespace buckwild::conn {
namespace {

ConnectionConfig config() {
  ConnectionConfig c;
  c.mss = 1000;
  c.send_buffer = 16 * 1024;
  c.receive_buffer = 16 * 1024;
  c.time_wait = seconds(60);
  return c;
}

TEST(ConnectionTableTest, InitiatorAllocatesOddAndResponderEvenIds) {
  crypto::DeterministicRandom rng(1);
  ConnectionTable a(true, config(), rng);
  ConnectionTable b(false, config(), rng);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ((*a.open(0))->id() % 2, 1);
    EXPECT_EQ((*b.open(0))->id() % 2, 0);
  }
  EXPECT_EQ(a.size(), 3u);
  EXPECT_NE(a.find(1), nullptr);
  EXPECT_EQ(a.find(2), nullptr);
}

TEST(ConnectionTableTest, IdsRestBeforeReuse) {
  crypto::DeterministicRandom rng(2);
  ConnectionTable t(false, config(), rng);
  std::vector<std::uint16_t> ids;
  for (int i = 0; i < 2047; ++i) {
    auto c = t.open(0);
    ASSERT_TRUE(c) << i;
    ids.push_back((*c)->id());
  }
  EXPECT_EQ(t.open(0).error().code, ErrorCode::kMemoryExhausted);  // all even ids in use
  t.remove(ids[10], seconds(1));
  EXPECT_FALSE(t.open(seconds(30)));  // still resting (TIME_WAIT)
  auto again = t.open(seconds(62));
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)->id(), ids[10]);
}

// Everything `c` has to send at `sent`, arriving at `to` at `arrives`;
// whether there was anything.
bool deliver(Connection& c, ConnectionTable& to, TimePoint sent, TimePoint arrives) {
  std::vector<std::uint8_t> body(wire::kMaxBodySize);
  wire::Header h;
  std::size_t len = 0;
  bool any = false;
  while (c.poll_transmit(sent, h, body, len)) {
    any = true;
    h.session_id = 1;
    h.payload_length = static_cast<std::uint16_t>(len);
    auto parsed = wire::parse_body(h, Bytes(body).first(len));
    EXPECT_TRUE(parsed);
    if (!parsed) return any;
    to.on_packet(h, *parsed, arrives);
  }
  return any;
}

// Packets between two tables' connections, instantly, until both are quiet.
void exchange(ConnectionTable& from, ConnectionTable& to, TimePoint now) {
  for (int round = 0; round < 100; ++round) {
    bool any = false;
    for (ConnectionTable* t : {&from, &to}) {
      ConnectionTable& other = t == &from ? to : from;
      for (std::uint16_t id = 1; id <= wire::kMaxConnectionId; ++id) {
        if (Connection* c = t->find(id)) any = deliver(*c, other, now, now) || any;
      }
    }
    if (!any) return;
  }
}

// Opens a connection from `a` to `b` at `now` over a path of `rtt`.
Connection* handshake(ConnectionTable& a, ConnectionTable& b, TimePoint now, Duration rtt) {
  Connection* c = *a.open(now);
  deliver(*c, b, now, now + rtt / 2);
  Connection* answer = b.find(c->id());
  if (answer == nullptr) return nullptr;
  deliver(*answer, a, now + rtt / 2, now + rtt);
  deliver(*c, b, now + rtt, now + rtt + rtt / 2);
  return c;
}

// A new connection's SYN is retransmitted after the path's RTT as the
// session's connections measured it (SRTT + max(2 SRTT, 200 ms)), not after
// RFC 6298's 1 s; so is a responder's SYN-ACK. The 1 s stays the ceiling.
TEST(ConnectionTableTest, ANewConnectionsFirstTimeoutComesFromThePathsRtt) {
  crypto::DeterministicRandom rng(5);
  ConnectionTable a(true, config(), rng);
  ConnectionTable b(false, config(), rng);
  // The first connection knows nothing: 1 s.
  Connection* first = *a.open(0);
  deliver(*first, b, 0, milliseconds(20));
  EXPECT_EQ(first->next_expiry(), seconds(1));
  Connection* accepted = b.find(first->id());
  ASSERT_NE(accepted, nullptr);
  deliver(*accepted, a, milliseconds(20), milliseconds(40));
  EXPECT_EQ(accepted->next_expiry(), milliseconds(20) + seconds(1));
  deliver(*first, b, milliseconds(40), milliseconds(60));
  ASSERT_EQ(first->state(), State::kEstablished);
  EXPECT_EQ(first->sender().rtt().smoothed(), milliseconds(40));
  EXPECT_EQ(accepted->sender().rtt().smoothed(), milliseconds(40));

  // 40 ms + max(80 ms, 200 ms), on both sides.
  Connection* second = *a.open(seconds(5));
  deliver(*second, b, seconds(5), seconds(5) + milliseconds(20));
  EXPECT_EQ(second->next_expiry(), seconds(5) + milliseconds(240));
  Connection* answer = b.find(second->id());
  ASSERT_NE(answer, nullptr);
  deliver(*answer, a, seconds(5) + milliseconds(20), seconds(5) + milliseconds(40));
  EXPECT_EQ(answer->next_expiry(), seconds(5) + milliseconds(260));

  // Kept once the connections are gone.
  a.remove(first->id(), seconds(6));
  a.remove(second->id(), seconds(6));
  ASSERT_EQ(a.size(), 0u);
  Connection* third = *a.open(seconds(7));
  deliver(*third, b, seconds(7), seconds(7));
  EXPECT_EQ(third->next_expiry(), seconds(7) + milliseconds(240));

  // A 600 ms path would give 1.8 s: the first timeout stays at 1 s.
  ConnectionTable slow_a(true, config(), rng);
  ConnectionTable slow_b(false, config(), rng);
  ASSERT_NE(handshake(slow_a, slow_b, 0, milliseconds(600)), nullptr);
  Connection* next = *slow_a.open(seconds(10));
  deliver(*next, slow_b, seconds(10), seconds(10));
  EXPECT_EQ(next->next_expiry(), seconds(11));
}

// TIME_WAIT is the rest: an id whose connection waited it out (the side
// that closed first) is free again at once, where one closed passively
// rests for the quarantine (IdsRestBeforeReuse). One side then opens a
// connection for every id each TIME_WAIT, not every two.
TEST(ConnectionTableTest, AnIdWhoseTimeWaitRanOutIsFreeAtOnce) {
  crypto::DeterministicRandom rng(4);
  ConnectionTable a(true, config(), rng);
  ConnectionTable b(false, config(), rng);
  Connection* c = *a.open(0);
  const std::uint16_t id = c->id();
  exchange(a, b, 0);
  ASSERT_EQ(c->state(), State::kEstablished);
  c->shutdown_write();
  exchange(a, b, milliseconds(10));
  b.find(id)->shutdown_write();
  exchange(a, b, milliseconds(20));
  ASSERT_EQ(c->state(), State::kTimeWait);
  EXPECT_EQ(b.find(id)->state(), State::kClosed);
  // Every other id of a's parity taken: only this one can come back.
  for (int i = 0; i < 2047; ++i) ASSERT_TRUE(a.open(milliseconds(30))) << i;
  EXPECT_FALSE(a.open(milliseconds(30)));
  const TimePoint expiry = c->next_expiry();
  EXPECT_GE(expiry, seconds(60));
  c->on_expiry(expiry);
  ASSERT_EQ(c->state(), State::kClosed);
  EXPECT_TRUE(c->time_wait_served());
  a.remove(id, expiry);
  auto again = a.open(expiry);
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)->id(), id);
}

TEST(ConnectionTableTest, SynOpensAResponderAndStrangersGetRst) {
  crypto::DeterministicRandom rng(3);
  ConnectionTable initiator(true, config(), rng);
  ConnectionTable responder(false, config(), rng);
  Connection* c = *initiator.open(0);
  std::vector<std::uint8_t> body(wire::kMaxBodySize);
  wire::Header h;
  std::size_t len = 0;
  ASSERT_TRUE(c->poll_transmit(0, h, body, len));
  h.session_id = 1;
  auto syn = wire::parse_body(h, Bytes(body).first(len));
  Connection* r = responder.on_packet(h, *syn, 0);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->id(), c->id());
  EXPECT_EQ(r->state(), State::kSynReceived);
  EXPECT_EQ(responder.on_packet(h, *syn, 0), r);  // a repeat goes to it

  // An ACK for an id nobody has: answered with RST; an RST is not.
  wire::Header stray;
  stray.session_id = 1;
  stray.connection_id = 77;
  stray.type = wire::PacketType::kAck;
  stray.flags = wire::flags::kAck;
  EXPECT_EQ(responder.on_packet(stray, wire::AckBody{}, 0), nullptr);
  ASSERT_TRUE(responder.poll_transmit(h, body, len));
  EXPECT_EQ(h.type, wire::PacketType::kRst);
  EXPECT_EQ(h.connection_id, 77u);
  EXPECT_FALSE(responder.poll_transmit(h, body, len));
  stray.type = wire::PacketType::kRst;
  EXPECT_EQ(responder.on_packet(stray, wire::RstBody{}, 0), nullptr);
  EXPECT_FALSE(responder.poll_transmit(h, body, len));
  // A SYN with our own parity is not the peer's to open.
  wire::Header odd = h;
  odd.type = wire::PacketType::kSyn;
  odd.connection_id = 4;
  EXPECT_EQ(responder.on_packet(odd, *syn, 0), nullptr);
}

}  // namespace
}  // namespace buckwild::conn

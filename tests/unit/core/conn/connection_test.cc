#include "core/conn/connection.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <optional>
#include <vector>

#include "core/crypto/random.h"
#include "core/wire/codec.h"

namespace buckwild::conn {
namespace {

ConnectionConfig config(std::uint16_t id = 5) {
  ConnectionConfig c;
  c.id = id;
  c.mss = 1000;
  c.send_buffer = 64 * 1024;
  c.receive_buffer = 64 * 1024;
  c.time_wait = seconds(1);
  return c;
}

struct Sent {
  wire::Header header;
  std::vector<std::uint8_t> body;
  wire::Body parsed() const {
    auto b = wire::parse_body(header, body);
    EXPECT_TRUE(b.has_value());
    return b.value_or(wire::Body{});
  }
};

std::vector<Sent> output(Connection& c, TimePoint now) {
  std::vector<Sent> out;
  std::vector<std::uint8_t> body(wire::kMaxBodySize);
  wire::Header h;
  std::size_t len = 0;
  while (c.poll_transmit(now, h, body, len)) {
    h.session_id = 1;
    h.payload_length = static_cast<std::uint16_t>(len);
    out.push_back(Sent{h, std::vector<std::uint8_t>(body.begin(), body.begin() + len)});
  }
  return out;
}

void deliver(Connection& to, const std::vector<Sent>& packets, TimePoint now,
             const std::function<bool(const Sent&)>& drop = {}) {
  for (const Sent& s : packets) {
    if (drop && drop(s)) continue;
    to.on_packet(s.header, s.parsed(), now);
  }
}

std::vector<Event> events(Connection& c) {
  std::vector<Event> out;
  while (auto e = c.poll_event()) out.push_back(*e);
  return out;
}

// A connection pair with a completed handshake.
struct Pair {
  crypto::DeterministicRandom rng{7};
  std::optional<Connection> a;
  std::optional<Connection> b;

  Pair() {
    a.emplace(*Connection::connect(config(), rng, 0));
    auto syn = output(*a, 0);
    b.emplace(*Connection::accept(config(), rng, std::get<wire::SynBody>(syn.at(0).parsed()), 0));
    pump(milliseconds(10), milliseconds(10));
  }
  // Exchanges packets (instantly) and runs timers up to `until`, or until
  // both sides are quiet and no timer is due before it.
  TimePoint pump(TimePoint now, TimePoint until = kNever) {
    if (until == kNever) until = now + milliseconds(100);
    for (int i = 0; i < 10000; ++i) {
      auto x = output(*a, now);
      deliver(*b, x, now);
      auto y = output(*b, now);
      deliver(*a, y, now);
      if (!x.empty() || !y.empty()) continue;
      const TimePoint next = std::min(a->next_expiry(), b->next_expiry());
      if (next > until) return now;
      now = std::max(now, next);
      if (a->next_expiry() <= now) a->on_expiry(now);
      if (b->next_expiry() <= now) b->on_expiry(now);
    }
    return now;
  }
};

TEST(ConnectionTest, RejectsBadConfig) {
  crypto::DeterministicRandom rng(1);
  ConnectionConfig c = config(0);
  EXPECT_EQ(Connection::connect(c, rng, 0).error().code, ErrorCode::kInvalidParameter);
  c = config(4096);
  EXPECT_FALSE(Connection::connect(c, rng, 0));
  c = config();
  c.mss = wire::kMaxBodySize + 1;
  EXPECT_FALSE(Connection::connect(c, rng, 0));
}

TEST(ConnectionTest, HandshakeMessagesAndStates) {
  crypto::DeterministicRandom rng(1);
  auto a = Connection::connect(config(), rng, 0);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->state(), State::kSynSent);
  auto syn = output(*a, 0);
  ASSERT_EQ(syn.size(), 1u);
  EXPECT_EQ(syn[0].header.type, wire::PacketType::kSyn);
  EXPECT_EQ(syn[0].header.flags, wire::flags::kSyn);
  EXPECT_EQ(syn[0].header.connection_id, 5u);
  const wire::SynBody sb = std::get<wire::SynBody>(syn[0].parsed());
  EXPECT_EQ(sb.params.initial_window, 64u * 1024u);
  EXPECT_EQ(sb.params.window_scale, 1);

  auto b = Connection::accept(config(), rng, sb, milliseconds(20));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->state(), State::kSynReceived);
  auto synack = output(*b, milliseconds(20));
  ASSERT_EQ(synack.size(), 1u);
  EXPECT_EQ(synack[0].header.type, wire::PacketType::kSynAck);

  deliver(*a, synack, milliseconds(40));
  EXPECT_EQ(a->state(), State::kEstablished);
  EXPECT_EQ(a->sender().rtt().smoothed(), milliseconds(40));
  auto opening = output(*a, milliseconds(40));
  ASSERT_EQ(opening.size(), 1u);
  EXPECT_EQ(opening[0].header.type, wire::PacketType::kAck);
  EXPECT_EQ(opening[0].header.flags, wire::flags::kSyn | wire::flags::kAck);
  const wire::AckBody opening_body = std::get<wire::AckBody>(opening[0].parsed());
  EXPECT_TRUE(opening_body.has_opening);

  deliver(*b, opening, milliseconds(60));
  EXPECT_EQ(b->state(), State::kEstablished);
  EXPECT_EQ(b->sender().next_seq(), a->receiver().ack());
  EXPECT_EQ(a->sender().next_seq(), b->receiver().ack());
  // The responder confirms with a plain ACK, which stops the opener's repeats.
  auto confirm = output(*b, milliseconds(60));
  ASSERT_EQ(confirm.size(), 1u);
  EXPECT_EQ(confirm[0].header.flags, wire::flags::kAck);
  deliver(*a, confirm, milliseconds(80));
  EXPECT_EQ(a->next_expiry(), kNever);
  EXPECT_EQ(events(*a), (std::vector<Event>{{EventKind::kEstablished}}));
  EXPECT_EQ(events(*b), (std::vector<Event>{{EventKind::kEstablished}}));
  EXPECT_TRUE(a->check_invariants() && b->check_invariants());
}

TEST(ConnectionTest, DataBothWaysAndHalfClose) {
  Pair p;
  std::vector<std::uint8_t> x(5000, 0xAB);
  EXPECT_EQ(p.a->send(x), 5000u);
  p.a->shutdown_write();
  EXPECT_EQ(p.a->state(), State::kFinWait1);
  p.pump(milliseconds(20));
  EXPECT_EQ(p.b->readable(), 5000u);
  EXPECT_TRUE(p.b->peer_finished());
  EXPECT_EQ(p.b->state(), State::kCloseWait);
  EXPECT_EQ(p.a->state(), State::kFinWait2);
  // b still sends after a's FIN.
  std::vector<std::uint8_t> y(3000, 0xCD);
  p.b->send(y);
  p.pump(milliseconds(30));
  EXPECT_EQ(p.a->readable(), 3000u);
  p.b->shutdown_write();
  EXPECT_EQ(p.b->state(), State::kLastAck);
  p.pump(milliseconds(40));
  EXPECT_EQ(p.b->state(), State::kClosed);
  EXPECT_EQ(p.a->state(), State::kTimeWait);
  p.a->on_expiry(p.a->next_expiry());
  EXPECT_EQ(p.a->state(), State::kClosed);
  auto ea = events(*p.a);
  EXPECT_EQ(ea.back().kind, EventKind::kClosed);
}

TEST(ConnectionTest, DataSentDuringAnOutageLeavesWhenThePathIsBack) {
  Pair p;
  std::vector<std::uint8_t> x(1500, 0x5A);
  ASSERT_EQ(p.a->send(x), 1500u);
  // An outage: everything a sends is lost; its RTO backs off until the
  // next retransmission is 20 s or more away.
  TimePoint now = milliseconds(20);
  output(*p.a, now);
  for (int i = 0; i < 20 && p.a->next_expiry() - now < seconds(20); ++i) {
    now = p.a->next_expiry();
    p.a->on_expiry(now);
    output(*p.a, now);
  }
  now += seconds(1);  // the path is back a second after the last try
  ASSERT_GT(p.a->next_expiry() - now, seconds(15));
  EXPECT_EQ(p.a->state(), State::kEstablished);
  // The session hears from the peer again: the data leaves now.
  EXPECT_TRUE(p.a->on_path_restored(now));
  deliver(*p.b, output(*p.a, now), now);
  EXPECT_EQ(p.b->readable(), 1500u);
  deliver(*p.a, output(*p.b, now + milliseconds(40)), now + milliseconds(40));
  EXPECT_EQ(p.a->sender().bytes_in_flight(), 0u);
  EXPECT_FALSE(p.a->on_path_restored(now + milliseconds(50)));  // nothing waits
  // b had nothing in flight: nothing to do.
  EXPECT_FALSE(p.b->on_path_restored(now));
}

TEST(ConnectionTest, SynSentAnswersStrayPacketsWithRst) {
  crypto::DeterministicRandom rng(2);
  auto a = Connection::connect(config(), rng, 0);
  output(*a, 0);
  wire::Header h;
  h.session_id = 1;
  h.connection_id = 5;
  h.type = wire::PacketType::kData;
  h.flags = wire::flags::kAck;
  std::vector<std::uint8_t> payload(10, 1);
  a->on_packet(h, wire::PayloadBody{payload}, 0);
  EXPECT_EQ(a->state(), State::kSynSent);
  auto out = output(*a, 0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].header.type, wire::PacketType::kRst);
  const wire::RstBody rst = std::get<wire::RstBody>(out[0].parsed());
  EXPECT_EQ(rst.reason, static_cast<std::uint8_t>(ErrorCode::kStateInvalid));
}

TEST(ConnectionTest, EstablishedAnswersForeignTypesWithError) {
  Pair p;
  wire::Header h;
  h.session_id = 1;
  h.connection_id = 5;
  h.type = wire::PacketType::kFragment;
  h.fragment_total = 2;
  std::vector<std::uint8_t> payload(10, 1);
  p.a->on_packet(h, wire::PayloadBody{payload}, milliseconds(50));
  auto out = output(*p.a, milliseconds(50));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].header.type, wire::PacketType::kError);
  const wire::Body parsed = out[0].parsed();
  const auto& e = std::get<wire::ErrorBody>(parsed);
  EXPECT_EQ(e.code, static_cast<std::uint8_t>(ErrorCode::kStateInvalid));
  EXPECT_EQ(e.details, static_cast<std::uint32_t>(wire::PacketType::kFragment));
  // An ERROR is never answered.
  p.b->on_packet(out[0].header, out[0].parsed(), milliseconds(60));
  EXPECT_TRUE(output(*p.b, milliseconds(60)).empty());
  EXPECT_EQ(p.a->state(), State::kEstablished);
  EXPECT_EQ(p.b->state(), State::kEstablished);
}

TEST(ConnectionTest, ForgedOpeningResetsWithCommitmentFailure) {
  crypto::DeterministicRandom rng(3);
  auto a = Connection::connect(config(), rng, 0);
  auto syn = output(*a, 0);
  auto b = Connection::accept(config(), rng, std::get<wire::SynBody>(syn[0].parsed()), 0);
  deliver(*a, output(*b, 0), 0);
  auto opening = output(*a, 0);
  ASSERT_EQ(opening.size(), 1u);
  auto body = std::get<wire::AckBody>(opening[0].parsed());
  body.opening.value[5] ^= 0x01;
  b->on_packet(opening[0].header, body, 0);
  EXPECT_EQ(b->state(), State::kClosed);
  auto out = output(*b, 0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].header.type, wire::PacketType::kRst);
  const wire::RstBody rst = std::get<wire::RstBody>(out[0].parsed());
  EXPECT_EQ(rst.reason, static_cast<std::uint8_t>(ErrorCode::kPedersenCommitmentFailed));
  const auto ev = events(*b);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0], (Event{EventKind::kFailed, ErrorCode::kPedersenCommitmentFailed}));
  EXPECT_EQ(ev[1].kind, EventKind::kClosed);
  // The opener hears the RST.
  deliver(*a, out, 0);
  EXPECT_EQ(a->state(), State::kClosed);
}

TEST(ConnectionTest, EarlyDataIsDroppedUntilTheOpeningArrives) {
  crypto::DeterministicRandom rng(4);
  auto a = Connection::connect(config(), rng, 0);
  auto b = Connection::accept(config(), rng, std::get<wire::SynBody>(output(*a, 0)[0].parsed()), 0);
  deliver(*a, output(*b, 0), milliseconds(40));
  std::vector<std::uint8_t> x(2500, 3);
  a->send(x);
  auto first = output(*a, milliseconds(40));  // opening ACK + 3 segments
  ASSERT_EQ(first.size(), 4u);
  // The opening is lost; the data reaches a responder that cannot place it.
  // (It repeats its SYN-ACK for such data at most once per minimum RTO.)
  deliver(*b, first, milliseconds(60),
          [](const Sent& s) { return s.header.type == wire::PacketType::kAck; });
  EXPECT_TRUE(output(*b, milliseconds(60)).empty());
  deliver(*b, first, milliseconds(300),
          [](const Sent& s) { return s.header.type == wire::PacketType::kAck; });
  EXPECT_EQ(b->state(), State::kSynReceived);
  auto again = output(*b, milliseconds(300));
  ASSERT_FALSE(again.empty());
  EXPECT_EQ(again[0].header.type, wire::PacketType::kSynAck);
  // The repeated SYN-ACK makes the opener repeat its opening at once.
  deliver(*a, again, milliseconds(320));
  auto repeat = output(*a, milliseconds(320));
  ASSERT_FALSE(repeat.empty());
  const wire::AckBody repeat_body = std::get<wire::AckBody>(repeat[0].parsed());
  EXPECT_TRUE(repeat_body.has_opening);
  deliver(*b, repeat, milliseconds(340));
  EXPECT_EQ(b->state(), State::kEstablished);
}

TEST(ConnectionTest, RstClosesWithItsReasonButNotInTimeWait) {
  Pair p;
  p.a->reset(ErrorCode::kTimeout);
  EXPECT_EQ(p.a->state(), State::kClosed);
  auto out = output(*p.a, milliseconds(20));
  ASSERT_EQ(out.size(), 1u);
  deliver(*p.b, out, milliseconds(30));
  EXPECT_EQ(p.b->state(), State::kClosed);
  const auto ev = events(*p.b);
  EXPECT_EQ(ev[ev.size() - 2], (Event{EventKind::kReset, ErrorCode::kTimeout}));
  EXPECT_TRUE(output(*p.b, milliseconds(30)).empty());  // an RST is never answered

  Pair q;
  q.a->shutdown_write();
  q.pump(milliseconds(20));
  q.b->shutdown_write();
  q.pump(milliseconds(30));
  ASSERT_EQ(q.a->state(), State::kTimeWait);
  wire::Header h;
  h.session_id = 1;
  h.connection_id = 5;
  h.type = wire::PacketType::kRst;
  h.flags = wire::flags::kRst;
  q.a->on_packet(h, wire::RstBody{0}, milliseconds(40));
  EXPECT_EQ(q.a->state(), State::kTimeWait);  // RFC 1337
}

TEST(ConnectionTest, ShutdownBeforeEstablishment) {
  crypto::DeterministicRandom rng(5);
  auto a = Connection::connect(config(), rng, 0);
  std::vector<std::uint8_t> x(100, 1);
  a->send(x);
  a->shutdown_write();
  EXPECT_EQ(a->state(), State::kSynSent);
  auto b = Connection::accept(config(), rng, std::get<wire::SynBody>(output(*a, 0)[0].parsed()), 0);
  deliver(*a, output(*b, 0), 0);
  EXPECT_EQ(a->state(), State::kFinWait1);
  deliver(*b, output(*a, 0), 0);
  EXPECT_EQ(b->readable(), 100u);
  EXPECT_TRUE(b->peer_finished());
}

TEST(ConnectionTest, MemoryOfAnIdleConnectionIsTheObject) {
  Pair p;
  EXPECT_EQ(p.a->memory().buffers, 0u);
  EXPECT_EQ(p.a->memory().object, sizeof(Connection));
}


// A connection that only receives, after a handshake whose SYN-ACK was lost
// (so its retransmission gave no unambiguous RTT sample, and no data of its
// own is ever acknowledged), still tunes its receive window: from its
// receiver's own RTT estimate. Before, its window stayed at the initial
// 256 KiB for the connection's life, whatever the path could carry.
TEST(ConnectionTest, AReceiveOnlyConnectionTunesItsWindowAfterARetransmittedHandshake) {
  ConnectionConfig cfg = config();
  cfg.send_buffer = 8u << 20;
  cfg.receive_buffer = 8u << 20;
  cfg.congestion = CongestionAlgorithm::kBbr;
  crypto::DeterministicRandom rng{9};
  Connection a = *Connection::connect(cfg, rng, 0);
  auto syn = output(a, 0);
  Connection b = *Connection::accept(cfg, rng, std::get<wire::SynBody>(syn.at(0).parsed()), 0);
  const Duration one_way = milliseconds(10);
  struct InFlight {
    TimePoint at;
    Sent packet;
  };
  std::deque<InFlight> to_a, to_b;
  bool dropped_syn_ack = false;
  std::vector<std::uint8_t> chunk(64 * 1024, 0x42), sink(256 * 1024);
  std::uint64_t received = 0;
  TimePoint now = 0;
  for (int step = 0; step < 200'000 && now < seconds(4); ++step) {
    for (const Sent& s : output(a, now)) to_b.push_back({now + one_way, s});
    for (const Sent& s : output(b, now)) {
      if (!dropped_syn_ack && s.header.type == wire::PacketType::kSynAck) {
        dropped_syn_ack = true;
        continue;
      }
      to_a.push_back({now + one_way, s});
    }
    TimePoint next = std::min({a.next_expiry(), b.next_expiry(), now + seconds(1)});
    if (!to_a.empty()) next = std::min(next, to_a.front().at);
    if (!to_b.empty()) next = std::min(next, to_b.front().at);
    now = std::max(now, next);
    while (!to_a.empty() && to_a.front().at <= now) {
      a.on_packet(to_a.front().packet.header, to_a.front().packet.parsed(), now);
      to_a.pop_front();
    }
    while (!to_b.empty() && to_b.front().at <= now) {
      b.on_packet(to_b.front().packet.header, to_b.front().packet.parsed(), now);
      to_b.pop_front();
    }
    if (a.next_expiry() <= now) a.on_expiry(now);
    if (b.next_expiry() <= now) b.on_expiry(now);
    if (a.state() == State::kEstablished) {
      while (a.send(chunk) > 0) {
      }
    }
    while (std::size_t n = b.recv(sink)) received += n;
  }
  ASSERT_TRUE(dropped_syn_ack);
  ASSERT_EQ(b.state(), State::kEstablished);
  EXPECT_FALSE(b.sender().rtt().has_sample());  // the case this test is about
  EXPECT_GT(b.receiver().rtt_estimate(), milliseconds(15));
  EXPECT_LT(b.receiver().rtt_estimate(), milliseconds(60));
  EXPECT_GT(b.receiver().receive_space(), cfg.initial_receive_window * 4);
  EXPECT_GT(b.receiver().stats().window_growths, 2u);
  EXPECT_GT(received, 0u);
}

}  // namespace
}  // namespace buckwild::conn

#include "core/session/session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/hop/time_window.h"
#include "core/wire/codec.h"
#include "support/session_pair.h"

namespace buckwild::session {
namespace {

constexpr std::int64_t kUnix = 1'764'080'000'000;
constexpr TimePoint kT0 = seconds(5000);

std::vector<std::uint8_t> datagram_from(Session& s, const std::string& ip, std::int64_t unix_ms, TimePoint now) {
  std::vector<std::uint8_t> buf(wire::kMaxDatagramSize);
  std::memcpy(buf.data() + wire::kHeaderSize, ip.data(), ip.size());
  buf.resize(s.seal_datagram(buf, ip.size(), unix_ms, now).value());
  return buf;
}

TEST(SessionTest, DatagramsTravelBothWays) {
  auto p = testing::make_session_pair(kUnix, kT0);
  EXPECT_EQ(p.initiator->id(), p.responder->id());
  auto d = datagram_from(*p.initiator, "ip packet one", kUnix, kT0);
  auto r = p.responder->open(d, kUnix + 1, kT0 + 1000);
  ASSERT_TRUE(r.has_value()) << r.error().what;
  EXPECT_EQ(r->header.type, wire::PacketType::kDatagram);
  EXPECT_EQ(std::string(r->body.begin(), r->body.end()), "ip packet one");
  auto back = datagram_from(*p.responder, "and back", kUnix + 2, kT0 + 2000);
  auto r2 = p.initiator->open(back, kUnix + 3, kT0 + 3000);
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(std::string(r2->body.begin(), r2->body.end()), "and back");
  // Replays and cross-direction reflections are refused.
  EXPECT_FALSE(p.responder->open(d, kUnix + 4, kT0 + 4000).has_value());
  auto own = datagram_from(*p.initiator, "reflected", kUnix, kT0);
  EXPECT_FALSE(p.initiator->open(own, kUnix, kT0).has_value());
}

TEST(SessionTest, CountsBytesLastArrivalAndOneWayDelayForStatus) {
  auto p = testing::make_session_pair(kUnix, kT0);
  EXPECT_FALSE(p.responder->one_way_delay_ms().has_value());
  auto d = datagram_from(*p.initiator, "twelve bytes", kUnix, kT0);
  EXPECT_EQ(p.initiator->stats().sent_bytes, d.size());
  ASSERT_TRUE(p.responder->open(d, kUnix + 7, kT0 + 7000).has_value());
  EXPECT_EQ(p.responder->stats().received_bytes, d.size());
  EXPECT_EQ(p.responder->last_received(), kT0 + 7000);
  // Arrived 7 ms after it was stamped (the pair's clocks agree).
  EXPECT_EQ(p.responder->one_way_delay_ms(), 7 + p.responder->clock_offset_ms());
  // A rejected datagram counts no bytes and is no arrival.
  EXPECT_FALSE(p.responder->open(d, kUnix + 9, kT0 + 9000).has_value());
  EXPECT_EQ(p.responder->stats().received_bytes, d.size());
  EXPECT_EQ(p.responder->last_received(), kT0 + 7000);
}

TEST(SessionTest, ConnectionZeroSequenceStartsAtTheNegotiatedValue) {
  auto p = testing::make_session_pair(kUnix, kT0);
  auto a = datagram_from(*p.initiator, "x", kUnix, kT0);
  auto b = datagram_from(*p.initiator, "y", kUnix, kT0);
  auto ha = wire::parse_header(a).value();
  auto hb = wire::parse_header(b).value();
  EXPECT_EQ(hb.sequence, ha.sequence + 1);
  EXPECT_EQ(ha.packet_number + 1, hb.packet_number);
}

// Every datagram is sent to a port the receiver has open, whatever the window
// phase, with the clocks equal or 40 ms apart in either direction.
TEST(SessionTest, SendPortIsAlwaysOpenAtTheReceiver) {
  for (std::int64_t skew : {0, 40, -40, 230}) {
    auto p = testing::make_session_pair(kUnix, kT0, skew);
    std::vector<std::uint16_t> open;
    for (std::int64_t t = 0; t < 20'000; t += 7) {  // 80 windows, 7 ms steps
      const std::int64_t sender_now = kUnix + t;
      const std::int64_t receiver_now = sender_now + skew + 5;  // 5 ms one-way delay
      const std::uint16_t port = p.initiator->send_port(sender_now);
      open.clear();
      p.responder->listen_ports(receiver_now, 0, open);
      ASSERT_NE(std::find(open.begin(), open.end(), port), open.end()) << "skew " << skew << " t " << t;
    }
  }
}

TEST(SessionTest, PortsHopEveryWindow) {
  auto p = testing::make_session_pair(kUnix, kT0);
  std::vector<std::uint16_t> ports;
  for (int w = 0; w < 40; ++w) ports.push_back(p.initiator->send_port(kUnix + w * 250));
  int changes = 0;
  for (std::size_t i = 1; i < ports.size(); ++i) changes += ports[i] != ports[i - 1];
  EXPECT_GE(changes, 38);
}

TEST(SessionTest, HeartbeatsCarryTheDelayAllowanceBothWays) {
  SessionConfig fixed;
  fixed.fixed_delay_allowance = 5;
  auto p = testing::make_session_pair(kUnix, kT0, 0, fixed);
  EXPECT_EQ(p.initiator->delay_allowance(), 5);
  std::vector<std::uint8_t> buf(256);
  auto n = p.initiator->make_heartbeat(buf, true, kUnix, kT0);
  ASSERT_TRUE(n.has_value());
  buf.resize(*n);
  auto r = p.responder->open(buf, kUnix, kT0);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->answer_heartbeat);  // it was a probe
  EXPECT_EQ(p.responder->stats().heartbeats_received, 1u);
}

TEST(SessionTest, NegotiatedAllowanceIsTheLargerOfBoth) {
  auto p = testing::make_session_pair(kUnix, kT0);
  SessionConfig wide;
  wide.fixed_delay_allowance = 9;
  auto q = testing::make_session_pair(kUnix, kT0, 0, wide);
  // q's initiator advertises 9 to p's... sessions differ, so use q's pair only:
  std::vector<std::uint8_t> buf(256);
  buf.resize(q.initiator->make_heartbeat(buf, false, kUnix, kT0).value());
  ASSERT_TRUE(q.responder->open(buf, kUnix, kT0).has_value());
  EXPECT_EQ(q.responder->delay_allowance(), 9);
  // With no samples and no peer advertisement, the default is 2 windows.
  EXPECT_EQ(p.responder->delay_allowance(), 2);
}

TEST(SessionTest, SilentPeerIsProbedThenDeclaredDead) {
  auto p = testing::make_session_pair(kUnix, kT0);
  Session& s = *p.initiator;
  datagram_from(s, "data nobody answers", kUnix, kT0 + milliseconds(10));
  TimePoint now = kT0;
  int probes = 0;
  for (int i = 0; i < 100 && !s.dead(); ++i) {
    now = s.next_expiry();
    auto e = s.on_expiry(now);
    probes += e.probe;
  }
  EXPECT_TRUE(s.dead());
  EXPECT_EQ(probes, kProbes);
  EXPECT_LE(now - kT0, seconds(9));  // probe after 3 s, then 5 probes 1 s apart
}

TEST(SessionTest, AnsweredProbesKeepTheSessionAlive) {
  auto p = testing::make_session_pair(kUnix, kT0);
  Session& a = *p.initiator;
  Session& b = *p.responder;
  TimePoint now = kT0;
  for (int i = 0; i < 60; ++i) {
    now += seconds(1);
    datagram_from(a, "one-way flow", kUnix + (now - kT0) / 1000, now);
    while (a.next_expiry() <= now) {
      auto e = a.on_expiry(now);
      if (e.probe || e.send_heartbeat) {
        std::vector<std::uint8_t> buf(256);
        buf.resize(a.make_heartbeat(buf, e.probe, kUnix + (now - kT0) / 1000, now).value());
        auto r = b.open(buf, kUnix + (now - kT0) / 1000, now);
        ASSERT_TRUE(r.has_value());
        if (r->answer_heartbeat) {
          std::vector<std::uint8_t> reply(256);
          reply.resize(b.make_heartbeat(reply, false, kUnix + (now - kT0) / 1000, now).value());
          ASSERT_TRUE(a.open(reply, kUnix + (now - kT0) / 1000, now).has_value());
        }
      }
    }
  }
  EXPECT_FALSE(a.dead());
}

TEST(SessionTest, PeriodicHeartbeatAndDeathWithoutTraffic) {
  SessionConfig config;  // heartbeats alone: no peer time sync in the way
  config.time_sync.first_after = config.time_sync.interval = seconds(3600);
  auto p = testing::make_session_pair(kUnix, kT0, 0, config);
  Session& s = *p.responder;
  EXPECT_EQ(s.next_expiry(), kT0 + seconds(30));
  auto e = s.on_expiry(kT0 + seconds(30));
  EXPECT_TRUE(e.send_heartbeat);
  std::vector<std::uint8_t> buf(256);
  ASSERT_TRUE(s.make_heartbeat(buf, false, kUnix + 30'000, kT0 + seconds(30)).has_value());
  // Nothing ever arrives: dead at 90 s (sending heartbeats does not count as hearing).
  TimePoint now = kT0 + seconds(30);
  for (int i = 0; i < 50 && !s.dead(); ++i) {
    now = s.next_expiry();
    auto x = s.on_expiry(now);
    if (x.send_heartbeat || x.probe) {
      std::vector<std::uint8_t> hb(256);
      (void)s.make_heartbeat(hb, x.probe, kUnix + (now - kT0) / 1000, now);
    }
  }
  EXPECT_TRUE(s.dead());
  EXPECT_LE(now, kT0 + seconds(90));
}

}  // namespace
}  // namespace buckwild::session

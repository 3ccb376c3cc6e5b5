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

// §11.4: unanswered probes make the peer suspect, not the session dead; it
// lives until the dead-peer timeout (an outage may last minutes).
TEST(SessionTest, SilentPeerIsProbedThenSuspectThenDeadAtTheTimeout) {
  auto p = testing::make_session_pair(kUnix, kT0);
  Session& s = *p.responder;  // the initiator has heard a first datagram: a round trip measured
  const TimePoint sent = kT0 + milliseconds(10);
  datagram_from(s, "data nobody answers", kUnix, sent);
  // A fresh session: nothing measured the round trip yet.
  const Duration wait = s.answer_wait();
  EXPECT_EQ(wait, 4 * kDefaultRtt + milliseconds(wire::kAckDelayMs));
  TimePoint now = kT0;
  int probes = 0;
  TimePoint first_probe = kNever;
  TimePoint silent_at = kNever;
  TimePoint suspect_at = kNever;
  for (int i = 0; i < 1000 && !s.dead(); ++i) {
    now = s.next_expiry();
    auto e = s.on_expiry(now);
    probes += e.probe;
    if (e.probe && first_probe == kNever) first_probe = now;
    if (e.send_heartbeat) {
      std::vector<std::uint8_t> hb(256);
      (void)s.make_heartbeat(hb, false, kUnix + (now - kT0) / 1000, now);
    }
    if (e.silent) {
      EXPECT_EQ(silent_at, kNever);  // reported once
      silent_at = now;
      EXPECT_EQ(probes, 2);  // the first went unanswered; the second goes now
      EXPECT_TRUE(s.silent());
      EXPECT_FALSE(s.suspect());
    }
    if (e.suspect) {
      EXPECT_EQ(suspect_at, kNever);  // reported once
      suspect_at = now;
      EXPECT_EQ(probes, kProbes + 1);
    }
  }
  EXPECT_EQ(first_probe - sent, wait);      // overdue after 450 ms
  EXPECT_EQ(silent_at - first_probe, wait);  // its probe unanswered as long
  EXPECT_EQ(suspect_at - first_probe, kProbes * wait);
  EXPECT_TRUE(s.dead());
  EXPECT_EQ(now - kT0, seconds(180));  // the default dead-peer timeout
  // Then every 2 s: (180 − 2.7) / 2 more probes, give or take one.
  EXPECT_NEAR(probes, kProbes + 89, 2);
}

// The time an answer may take follows the round trip that the answers to
// probes measure, within its floor and probe_after.
TEST(SessionTest, AnswerWaitFollowsTheMeasuredRoundTrip) {
  SessionConfig config;
  config.probe_after = seconds(3);
  config.time_sync.first_after = config.time_sync.interval = seconds(3600);
  auto p = testing::make_session_pair(kUnix, kT0, 0, config);
  Session& a = *p.initiator;
  Session& b = *p.responder;
  TimePoint now = kT0;
  const Duration rtt = milliseconds(300);
  for (int round = 0; round < 20; ++round) {
    datagram_from(a, "one-way", kUnix + (now - kT0) / 1000, now);
    Session::Expiry e;
    for (int i = 0; i < 5 && !e.probe; ++i) {
      now = a.next_expiry();
      e = a.on_expiry(now);
      if (e.send_heartbeat) {
        std::vector<std::uint8_t> hb(256);
        (void)a.make_heartbeat(hb, false, kUnix + (now - kT0) / 1000, now);
      }
    }
    ASSERT_TRUE(e.probe) << round;
    std::vector<std::uint8_t> probe(256);
    probe.resize(a.make_heartbeat(probe, true, kUnix + (now - kT0) / 1000, now).value());
    const TimePoint there = now + rtt / 2;
    auto r = b.open(probe, kUnix + (there - kT0) / 1000, there);
    ASSERT_TRUE(r.has_value() && r->answer_heartbeat);
    std::vector<std::uint8_t> answer(256);
    answer.resize(b.make_heartbeat_answer(answer, kUnix + (there - kT0) / 1000, there).value());
    now += rtt;
    ASSERT_TRUE(a.open(answer, kUnix + (now - kT0) / 1000, now).has_value());
    EXPECT_FALSE(a.silent());
  }
  EXPECT_NEAR(static_cast<double>(a.rtt()), static_cast<double>(rtt), milliseconds(5));
  EXPECT_EQ(a.answer_wait(), 4 * a.rtt() + milliseconds(wire::kAckDelayMs));
  // Never longer than probe_after.
  SessionConfig tight;
  tight.probe_after = milliseconds(500);
  auto q = testing::make_session_pair(kUnix, kT0, 0, tight);
  EXPECT_LE(q.initiator->answer_wait(), milliseconds(500));
}

TEST(SessionTest, ASuspectPeerThatAnswersIsBack) {
  auto p = testing::make_session_pair(kUnix, kT0);
  Session& a = *p.initiator;
  datagram_from(a, "into the outage", kUnix, kT0 + milliseconds(10));
  TimePoint now = kT0;
  for (int i = 0; i < 100 && !a.suspect(); ++i) {
    now = a.next_expiry();
    a.on_expiry(now);
  }
  ASSERT_TRUE(a.suspect());
  const TimePoint until = now + seconds(100);  // the outage goes on, the session with it
  for (int i = 0; i < 1000 && a.next_expiry() <= until; ++i) {
    now = a.next_expiry();
    if (a.on_expiry(now).send_heartbeat) {
      std::vector<std::uint8_t> hb(256);
      (void)a.make_heartbeat(hb, false, kUnix + (now - kT0) / 1000, now);
    }
  }
  now = until;
  EXPECT_FALSE(a.dead());
  const std::int64_t unix_now = kUnix + (now - kT0) / 1000;
  auto back = datagram_from(*p.responder, "the path is back", unix_now, now);
  auto r = a.open(back, unix_now, now);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->restored);
  EXPECT_FALSE(a.suspect());
  EXPECT_FALSE(a.silent());
  auto again = datagram_from(*p.responder, "and again", unix_now, now);
  EXPECT_FALSE(a.open(again, unix_now, now)->restored);
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
          reply.resize(b.make_heartbeat_answer(reply, kUnix + (now - kT0) / 1000, now).value());
          ASSERT_TRUE(a.open(reply, kUnix + (now - kT0) / 1000, now).has_value());
        }
      }
    }
  }
  EXPECT_FALSE(a.dead());
}

// An answer awaits no answer: a probe and its answer end there, and the
// side that answered has nothing due until its regular heartbeat.
TEST(SessionTest, AnsweringAProbeDoesNotStartProbesOfOurOwn) {
  SessionConfig config;
  config.time_sync.first_after = config.time_sync.interval = seconds(3600);
  config.path_mtu_search = false;
  auto p = testing::make_session_pair(kUnix, kT0, 0, config);
  Session& a = *p.initiator;
  Session& b = *p.responder;
  const TimePoint now = kT0 + seconds(1);
  const std::int64_t unix_now = kUnix + 1000;
  std::vector<std::uint8_t> probe(256);
  probe.resize(a.make_heartbeat(probe, true, unix_now, now).value());
  auto r = b.open(probe, unix_now, now);
  ASSERT_TRUE(r.has_value() && r->answer_heartbeat);
  std::vector<std::uint8_t> answer(256);
  answer.resize(b.make_heartbeat_answer(answer, unix_now, now).value());
  ASSERT_TRUE(a.open(answer, unix_now, now).has_value());
  // Neither side awaits anything: the next expiry is the regular heartbeat.
  EXPECT_EQ(b.next_expiry(), now + config.heartbeat_interval);
  EXPECT_GE(a.next_expiry(), kT0 + config.heartbeat_interval);
  // A regular heartbeat, by contrast, awaits an answer (the peer is probed
  // after the answer wait if nothing comes back).
  std::vector<std::uint8_t> regular(256);
  (void)b.make_heartbeat(regular, false, unix_now, now);
  EXPECT_EQ(b.next_expiry(), now + b.answer_wait());
}

TEST(SessionTest, PeriodicHeartbeatAndDeathWithoutTraffic) {
  SessionConfig config;  // heartbeats alone: no peer time sync or path MTU search in the way
  config.time_sync.first_after = config.time_sync.interval = seconds(3600);
  config.path_mtu_search = false;
  auto p = testing::make_session_pair(kUnix, kT0, 0, config);
  Session& s = *p.responder;
  EXPECT_EQ(s.next_expiry(), kT0 + seconds(30));
  auto e = s.on_expiry(kT0 + seconds(30));
  EXPECT_TRUE(e.send_heartbeat);
  std::vector<std::uint8_t> buf(256);
  ASSERT_TRUE(s.make_heartbeat(buf, false, kUnix + 30'000, kT0 + seconds(30)).has_value());
  // Nothing ever arrives: dead at 180 s (sending heartbeats does not count as hearing).
  TimePoint now = kT0 + seconds(30);
  for (int i = 0; i < 500 && !s.dead(); ++i) {
    now = s.next_expiry();
    auto x = s.on_expiry(now);
    if (x.send_heartbeat || x.probe) {
      std::vector<std::uint8_t> hb(256);
      (void)s.make_heartbeat(hb, x.probe, kUnix + (now - kT0) / 1000, now);
    }
  }
  EXPECT_TRUE(s.dead());
  EXPECT_LE(now, kT0 + seconds(180));
}

// §11.6: the initiator owes one datagram per window; its own traffic pays it.
TEST(SessionTest, PathKeepaliveIsDueInWindowsWithoutTrafficAndOnlyForTheInitiator) {
  auto p = testing::make_session_pair(kUnix, kT0);
  Session& a = *p.initiator;
  const std::int64_t w0 = hop::window_start_ms(hop::window_at(kUnix) + 1);
  EXPECT_TRUE(a.path_keepalive_due(w0, kT0));
  EXPECT_FALSE(p.responder->path_keepalive_due(w0, kT0));
  datagram_from(a, "traffic", w0 + 10, kT0);
  EXPECT_FALSE(a.path_keepalive_due(w0 + 125, kT0));
  EXPECT_TRUE(a.path_keepalive_due(w0 + 250, kT0));  // the next window
  {
    // A connection's packet travels to that connection's ports: no path for
    // the responder's connection-0 port, still due. A SYN travels on
    // connection 0's: it pays.
    std::vector<std::uint8_t> pkt(256);
    wire::Header h;
    h.type = wire::PacketType::kData;
    h.connection_id = 5;
    ASSERT_TRUE(a.seal(h, pkt, 0, w0 + 260, kT0 + milliseconds(260)).has_value());
    EXPECT_TRUE(a.path_keepalive_due(w0 + 270, kT0));
    wire::Header syn;
    syn.type = wire::PacketType::kSyn;
    syn.connection_id = 6;
    ASSERT_TRUE(a.seal(syn, pkt, 0, w0 + 280, kT0 + milliseconds(280)).has_value());
    EXPECT_FALSE(a.path_keepalive_due(w0 + 290, kT0));
  }
  std::vector<std::uint8_t> buf(256);
  EXPECT_TRUE(a.path_keepalive_due(w0 + 500, kT0));
  buf.resize(a.make_path_keepalive(buf, w0 + 625, kT0 + milliseconds(625)).value());
  EXPECT_FALSE(a.path_keepalive_due(w0 + 749, kT0));
  EXPECT_EQ(a.stats().path_keepalives_sent, 1u);
  // It is a heartbeat without SYN: the responder accepts it and does not answer.
  auto r = p.responder->open(buf, w0 + 630, kT0 + milliseconds(630));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->header.type, wire::PacketType::kHeartbeat);
  EXPECT_FALSE(r->answer_heartbeat);
  // Turned off, never due.
  SessionConfig off;
  off.path_keepalive = false;
  auto q = testing::make_session_pair(kUnix, kT0, 0, off);
  EXPECT_FALSE(q.initiator->path_keepalive_due(w0, kT0));
}

// Keepalives to a peer that is silent (nothing to say) are not sending while
// awaiting an answer: they never start liveness probes.
TEST(SessionTest, PathKeepalivesDoNotStartProbes) {
  auto p = testing::make_session_pair(kUnix, kT0);
  Session& a = *p.initiator;
  std::vector<std::uint8_t> buf(256);
  for (int i = 1; i <= 40; ++i) {  // 10 s of keepalives, nothing back
    const TimePoint now = kT0 + milliseconds(250) * i;
    ASSERT_TRUE(a.make_path_keepalive(buf, kUnix + 250 * i, now).has_value());
    while (a.next_expiry() <= now) EXPECT_FALSE(a.on_expiry(now).probe);
  }
  EXPECT_FALSE(a.dead());
}

}  // namespace
}  // namespace buckwild::session

namespace buckwild::session {
namespace {

// PMTU_PROBE and PMTU_ACK between two sessions (§11.10): each side's maximum
// travels in both, the probe has the size probed, and the ACK confirms it.
TEST(SessionPmtuTest, ProbesAreAnsweredAndNegotiateTheBound) {
  SessionConfig big, small;
  big.max_datagram = 8972;
  small.max_datagram = 1472;
  auto p = testing::make_session_pair(kUnix, kT0, 0, big, small);
  EXPECT_EQ(p.initiator->max_datagram(), wire::kBaseDatagramSize);
  // The base probe is due at once.
  EXPECT_LE(p.initiator->next_expiry(), kT0);
  auto x = p.initiator->on_expiry(kT0);
  ASSERT_TRUE(x.pmtu_probe.has_value());
  EXPECT_EQ(x.pmtu_probe->size, wire::kBaseDatagramSize);
  std::vector<std::uint8_t> buf(wire::kMaxDatagramSize);
  auto n = p.initiator->make_pmtu_probe(buf, *x.pmtu_probe, kUnix, kT0);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, wire::kBaseDatagramSize);
  buf.resize(*n);
  // The responder learns the initiator's maximum and answers.
  auto r = p.responder->open(buf, kUnix + 5, kT0 + 5000);
  ASSERT_TRUE(r.has_value()) << r.error().what;
  ASSERT_TRUE(r->answer_pmtu.has_value());
  EXPECT_EQ(r->answer_pmtu->probe_size, wire::kBaseDatagramSize);
  EXPECT_EQ(r->answer_pmtu->max_datagram, 1472);
  EXPECT_EQ(p.responder->pmtu().peer_max(), 8972u);
  EXPECT_EQ(p.responder->pmtu().bound(), 1472u);
  std::vector<std::uint8_t> ack(wire::kMaxDatagramSize);
  auto m = p.responder->make_pmtu_ack(ack, *r->answer_pmtu, kUnix + 5, kT0 + 5000);
  ASSERT_TRUE(m.has_value());
  ack.resize(*m);
  auto a = p.initiator->open(ack, kUnix + 10, kT0 + 10'000);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(p.initiator->pmtu().bound(), 1472u);
  EXPECT_EQ(p.initiator->pmtu().state(), PmtuSearch::State::kSearch);
  // Next: the bound itself.
  auto y = p.initiator->on_expiry(kT0 + 10'000);
  ASSERT_TRUE(y.pmtu_probe.has_value());
  EXPECT_EQ(y.pmtu_probe->size, 1472u);
  // Probes and ACKs do not count as awaiting an answer (no liveness probe follows).
  EXPECT_FALSE(p.initiator->on_expiry(kT0 + seconds(2)).probe);
}

// The pair's initiator has heard the responder's first datagram (as the
// daemon's hears SEQUENCE_NEG): what the tests here expect of it.
TEST(SessionTest, BothEndsOfAPairHaveHeardEachOther) {
  auto p = testing::make_session_pair(kUnix, kT0);
  EXPECT_TRUE(p.initiator->heard());
  EXPECT_TRUE(p.responder->heard());
  // fuzz_session_open's start: another day, a fixed delay allowance.
  for (int allowance : {0, 1, 2, 16}) {
    SessionConfig config;
    config.fixed_delay_allowance = allowance;
    auto f = testing::make_session_pair(20'417ll * 86'400'000 + 52'225'123, seconds(1000), 0, config);
    EXPECT_TRUE(f.initiator->heard()) << "allowance " << allowance;
  }
}

}  // namespace
}  // namespace buckwild::session

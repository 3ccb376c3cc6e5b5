#include "core/session/time_sync.h"

#include <gtest/gtest.h>

#include "core/hop/time_window.h"
#include "support/session_pair.h"

namespace buckwild::session {
namespace {

constexpr std::int64_t kUnix = 1'796'515'200'000 + 3'600'000;  // 2026-12-06T01:00:00Z
constexpr TimePoint kT0 = seconds(5000);

// The peer answers a request `one_way_ms` after it was sent, with its clock
// `peer_ahead_ms` ahead of ours.
wire::TimeSyncResponseBody answer(PeerTimeSync& peer, const wire::TimeSyncRequestBody& req,
                                  std::int64_t our_unix_at_answer, std::int32_t peer_ahead_ms) {
  return peer.make_response(req, our_unix_at_answer + peer_ahead_ms);
}

TEST(PeerTimeSyncTest, MeasuresTheOffsetFromOneRoundTrip) {
  PeerTimeSync a({}, kT0);
  PeerTimeSync b({}, kT0);
  EXPECT_EQ(a.next_expiry(), kT0 + seconds(1));
  const auto req = a.make_request(7, kUnix, kT0, 0x8000'0000u);
  EXPECT_EQ(a.next_expiry(), kT0 + seconds(10));
  // 20 ms each way, the peer 300 ms ahead.
  const auto resp = answer(b, req, kUnix + 20, 300);
  auto u = a.on_response(resp, 290, kUnix + 40, kT0 + milliseconds(40));
  ASSERT_TRUE(u);
  EXPECT_EQ(u->offset_ms, 300);
  EXPECT_FALSE(u->resync);
  EXPECT_EQ(a.stats().last_rtt_ms, 40);
}

TEST(PeerTimeSyncTest, OnlyTheAnswerToOurRequestCounts) {
  PeerTimeSync a({}, kT0);
  PeerTimeSync b({}, kT0);
  const auto req = a.make_request(7, kUnix, kT0, 0x8000'0000u);
  auto wrong = answer(b, req, kUnix + 10, 0);
  wrong.challenge = 8;
  EXPECT_FALSE(a.on_response(wrong, 0, kUnix + 20, kT0 + milliseconds(20)));
  auto good = answer(b, req, kUnix + 10, 5);
  EXPECT_TRUE(a.on_response(good, 0, kUnix + 20, kT0 + milliseconds(20)));
  // The same answer again: no request is outstanding.
  EXPECT_FALSE(a.on_response(good, 0, kUnix + 20, kT0 + milliseconds(20)));
  // An answer after more than kTimeSyncMaxRttMs tells nothing.
  const auto req2 = a.make_request(9, kUnix + 1000, kT0 + seconds(1), 0x8000'0000u);
  EXPECT_FALSE(a.on_response(answer(b, req2, kUnix + 2000, 0), 0, kUnix + 4000,
                             kT0 + seconds(1) + milliseconds(kTimeSyncMaxRttMs + 1)));
}

TEST(PeerTimeSyncTest, AJumpBeyondTheToleranceIsConfirmedBeforeItIsAdopted) {
  PeerTimeSync a({.first_after = seconds(1), .interval = seconds(10), .tolerance_ms = 50}, kT0);
  PeerTimeSync b({}, kT0);
  TimePoint t = kT0;
  std::int64_t u = kUnix;
  // In use: 0. The peer is 400 ms ahead now: RESYNC, asked again in a second.
  auto req = a.make_request(1, u, t, 0x8000'0000u);
  EXPECT_FALSE(a.on_response(answer(b, req, u + 5, 400), 0, u + 10, t + milliseconds(10)));
  EXPECT_TRUE(a.resyncing());
  EXPECT_EQ(a.stats().resyncs, 1u);
  EXPECT_EQ(a.next_expiry(), t + milliseconds(10) + kTimeSyncRetry);
  // Confirmed by the next measurement: adopted.
  t += seconds(1);
  u += 1000;
  req = a.make_request(2, u, t, 0x8000'0000u);
  auto upd = a.on_response(answer(b, req, u + 5, 402), 0, u + 10, t + milliseconds(10));
  ASSERT_TRUE(upd);
  EXPECT_TRUE(upd->resync);
  EXPECT_EQ(upd->offset_ms, 402);
  EXPECT_FALSE(a.resyncing());
  EXPECT_EQ(a.next_expiry(), t + milliseconds(10) + seconds(10));
}

TEST(PeerTimeSyncTest, ThePeersRequestRevealsThatItsClockStepped) {
  PeerTimeSync a({}, kT0);
  PeerTimeSync b({}, kT0);
  // b measures a once (10 ms round trip, a 0 ms ahead): b knows the RTT.
  const auto mine = b.make_request(1, kUnix, kT0, 0x8000'0000u);
  ASSERT_TRUE(b.on_response(answer(a, mine, kUnix + 5, 0), 0, kUnix + 10, kT0 + milliseconds(10)));
  // a stepped by 3 s and asks: no delay explains that, so b takes it at once.
  const TimePoint t = kT0 + seconds(2);
  const auto req = a.make_request(3, kUnix + 2000 + 3000, t, 0x8000'0000u);
  auto upd = b.on_request(req, 0, kUnix + 2000 + 5, t + milliseconds(5));
  ASSERT_TRUE(upd);
  EXPECT_NEAR(upd->offset_ms, 3000, 1);
  EXPECT_TRUE(b.resyncing());
  EXPECT_EQ(b.next_expiry(), t + milliseconds(5));  // and re-measures at once
  EXPECT_EQ(b.stats().adopted_from_peer, 1u);
  // A request that agrees with the estimate changes nothing.
  EXPECT_FALSE(b.on_request(req, 3000, kUnix + 2000 + 5, t + milliseconds(5)));
}

TEST(PeerTimeSyncTest, OneDelayedRequestDoesNotMoveTheSchedule) {
  PeerTimeSync a({}, kT0);
  PeerTimeSync b({}, kT0);
  // Before b knows a round trip, even a large move only sets off a RESYNC.
  auto req = a.make_request(3, kUnix + 3000, kT0, 0x8000'0000u);
  EXPECT_FALSE(b.on_request(req, 0, kUnix + 5, kT0 + milliseconds(5)));
  EXPECT_TRUE(b.resyncing());
  // Knowing it, a request 100 ms late (beyond the 50 ms tolerance, within
  // half a window) is queueing, not a step: b's own round trips decide.
  PeerTimeSync c({}, kT0);
  const auto mine = c.make_request(1, kUnix, kT0, 0x8000'0000u);
  ASSERT_TRUE(c.on_response(answer(a, mine, kUnix + 5, 0), 0, kUnix + 10, kT0 + milliseconds(10)));
  req = a.make_request(4, kUnix + 1000, kT0 + seconds(1), 0x8000'0000u);
  EXPECT_FALSE(c.on_request(req, 0, kUnix + 1000 + 105, kT0 + seconds(1) + milliseconds(105)));
  EXPECT_TRUE(c.resyncing());
  EXPECT_EQ(c.stats().adopted_from_peer, 0u);
}

TEST(PeerTimeSyncTest, AResyncNobodyConfirmsBacksOffThenGivesUpAfterFiveRequests) {
  PeerTimeSync a({}, kT0);
  TimePoint t = kT0;
  std::int64_t u = kUnix;
  a.resync(t);
  // The middle of the jitter range: the waits are 1, 2, 4, 8 s exactly.
  const Duration waits[] = {seconds(1), seconds(2), seconds(4), seconds(8),
                            milliseconds(kTimeSyncMaxRttMs)};
  for (int i = 0; i < kMaxResyncRequests; ++i) {
    a.make_request(static_cast<std::uint32_t>(i), u, t, 0x8000'0000u);  // unanswered: the peer is silent
    EXPECT_TRUE(a.resyncing());
    EXPECT_EQ(a.resync_requests(), i + 1);
    EXPECT_EQ(a.next_expiry(), t + waits[i]) << "request " << i + 1;
    t += waits[i];
    u += waits[i] / 1000;
  }
  a.make_request(99, u, t, 0x8000'0000u);
  EXPECT_FALSE(a.resyncing());
  EXPECT_EQ(a.stats().resyncs_given_up, 1u);
  EXPECT_EQ(a.next_expiry(), t + seconds(10));  // the regular interval again
}

TEST(PeerTimeSyncTest, AResyncsWaitsAreJitteredByAQuarter) {
  for (const std::uint32_t jitter : {0u, 0xFFFF'FFFFu}) {
    PeerTimeSync a({}, kT0);
    a.resync(kT0);
    a.make_request(1, kUnix, kT0, jitter);
    a.make_request(2, kUnix + 1000, kT0 + seconds(1), jitter);
    const Duration wait = a.next_expiry() - (kT0 + seconds(1));  // after the second request: 2 s ± 25 %
    if (jitter == 0) {
      EXPECT_EQ(wait, milliseconds(1500));
    } else {
      EXPECT_GT(wait, milliseconds(2499));
      EXPECT_LE(wait, milliseconds(2500));
    }
  }
}

TEST(PeerTimeSyncTest, AnAnswerMeasuredBeforeAResyncIsNotTaken) {
  PeerTimeSync a({}, kT0);
  PeerTimeSync b({}, kT0);
  const auto req = a.make_request(7, kUnix, kT0, 0x8000'0000u);
  const auto resp = answer(b, req, kUnix + 5, 300);
  a.resync(kT0 + milliseconds(5));  // our clock stepped meanwhile
  EXPECT_FALSE(a.on_response(resp, 0, kUnix + 10, kT0 + milliseconds(10)));
}

// The min-RTT filter: an answer that waited at the peer (or on the way) is
// wrong by up to half the wait; the sample with the smallest round trip
// stays the estimate.
TEST(PeerTimeSyncTest, ADelayedAnswerDoesNotMoveTheEstimate) {
  PeerTimeSync a({}, kT0);
  PeerTimeSync b({}, kT0);
  TimePoint t = kT0;
  std::int64_t u = kUnix;
  auto req = a.make_request(1, u, t, 0x8000'0000u);
  auto upd = a.on_response(answer(b, req, u + 5, 0), 0, u + 10, t + milliseconds(10));
  ASSERT_TRUE(upd);
  EXPECT_EQ(upd->offset_ms, 0);
  // 5 s later the answer is stamped 80 ms late: measured +40, within the
  // tolerance of the offset in use, and still not taken.
  t += seconds(5);
  u += 5'000;
  req = a.make_request(2, u, t, 0x8000'0000u);
  upd = a.on_response(answer(b, req, u + 85, 0), 0, u + 90, t + milliseconds(90));
  EXPECT_EQ(a.stats().last_offset_ms, 40);
  ASSERT_TRUE(upd);
  EXPECT_EQ(upd->offset_ms, 0);
  EXPECT_EQ(a.stats().filtered, 1u);
  // 300 ms late: measured +150, beyond the tolerance, yet explained by the
  // delay: no RESYNC either.
  t += seconds(5);
  u += 5'000;
  req = a.make_request(3, u, t, 0x8000'0000u);
  upd = a.on_response(answer(b, req, u + 305, 0), 0, u + 310, t + milliseconds(310));
  EXPECT_EQ(a.stats().last_offset_ms, 150);
  ASSERT_TRUE(upd);
  EXPECT_EQ(upd->offset_ms, 0);
  EXPECT_FALSE(a.resyncing());
  EXPECT_EQ(a.stats().resyncs, 0u);
}

// A drifting clock is followed: a sample older than kFilterMaxAge no longer
// counts, however short its round trip.
TEST(PeerTimeSyncTest, ASampleAgesOutOfTheFilter) {
  PeerTimeSync a({}, kT0);
  PeerTimeSync b({}, kT0);
  auto req = a.make_request(1, kUnix, kT0, 0x8000'0000u);
  ASSERT_TRUE(a.on_response(answer(b, req, kUnix + 2, 0), 0, kUnix + 4, kT0 + milliseconds(4)));
  const TimePoint t = kT0 + kFilterMaxAge + seconds(1);
  const std::int64_t u = kUnix + (kFilterMaxAge + seconds(1)) / 1000;
  req = a.make_request(2, u, t, 0x8000'0000u);
  auto upd = a.on_response(answer(b, req, u + 10, 30), 0, u + 20, t + milliseconds(20));
  ASSERT_TRUE(upd);
  EXPECT_EQ(upd->offset_ms, 30);
  EXPECT_EQ(a.samples().size(), 1u);
}

// A step of the peer's clock is no delay: the filter starts afresh from the
// sample that shows it, and a RESYNC adopts it once a second one agrees.
TEST(PeerTimeSyncTest, AStepIsNotFilteredAway) {
  PeerTimeSync a({}, kT0);
  PeerTimeSync b({}, kT0);
  TimePoint t = kT0;
  std::int64_t u = kUnix;
  std::uint32_t challenge = 1;
  for (int i = 0; i < 3; ++i, t += seconds(4), u += 4'000) {
    auto req = a.make_request(challenge++, u, t, 0x8000'0000u);
    ASSERT_TRUE(a.on_response(answer(b, req, u + 5, 0), 0, u + 10, t + milliseconds(10)));
  }
  auto req = a.make_request(challenge++, u, t, 0x8000'0000u);
  EXPECT_FALSE(a.on_response(answer(b, req, u + 5, 400), 0, u + 10, t + milliseconds(10)));
  EXPECT_TRUE(a.resyncing());
  t += seconds(1);
  u += 1000;
  req = a.make_request(challenge++, u, t, 0x8000'0000u);
  auto upd = a.on_response(answer(b, req, u + 7, 401), 0, u + 14, t + milliseconds(14));
  ASSERT_TRUE(upd);
  EXPECT_TRUE(upd->resync);
  EXPECT_EQ(upd->offset_ms, 400);  // the one with the smaller round trip
  EXPECT_FALSE(a.resyncing());
  EXPECT_EQ(a.samples().size(), 2u);  // those from before the step are gone
}

// Discovery's measurement is the filter's first sample: the first answer
// with a shorter round trip that agrees with it within its delay corrects a
// start-up estimate at once (the soak's bob began 206 ms off after reading
// the CONFIRM late).
TEST(PeerTimeSyncTest, DiscoverysSampleLetsABetterFirstAnswerCorrectAtOnce) {
  PeerTimeSync a({}, kT0, OffsetSample{-356, 500, kT0});
  PeerTimeSync b({}, kT0);
  const TimePoint t = kT0 + seconds(1);
  const std::int64_t u = kUnix + 1000;
  const auto req = a.make_request(1, u, t, 0x8000'0000u);
  auto upd = a.on_response(answer(b, req, u + 10, -150), -356, u + 20, t + milliseconds(20));
  ASSERT_TRUE(upd);
  EXPECT_EQ(upd->offset_ms, -150);
  EXPECT_TRUE(upd->resync);
  EXPECT_FALSE(a.resyncing());
  // One that disagrees beyond what the round trips explain sets off a RESYNC.
  PeerTimeSync c({}, kT0, OffsetSample{-356, 100, kT0});
  const auto req2 = c.make_request(1, u, t, 0x8000'0000u);
  EXPECT_FALSE(c.on_response(answer(b, req2, u + 10, -150), -356, u + 20, t + milliseconds(20)));
  EXPECT_TRUE(c.resyncing());
}

// A TIME_SYNC_RESPONSE the daemon reads 300 ms after it arrived: the session
// measures the round trip to its arrival.
TEST(PeerTimeSyncTest, AnAnswerReadLateIsMeasuredAtItsArrival) {
  SessionConfig config;
  config.path_mtu_search = false;
  auto p = testing::make_session_pair(kUnix, kT0, 0, config);
  Session& a = *p.initiator;
  Session& b = *p.responder;
  const TimePoint t = kT0 + seconds(1);
  const std::int64_t u = kUnix + 1000;
  std::vector<std::uint8_t> buf(256);
  buf.resize(a.make_time_sync_request(buf, 1, u, t, 0x8000'0000u).value());
  auto r = b.open(buf, u + 10, t + milliseconds(10));
  ASSERT_TRUE(r.has_value());
  ASSERT_TRUE(r->answer_time_sync);
  std::vector<std::uint8_t> reply(256);
  reply.resize(b.make_time_sync_response(reply, *r->answer_time_sync, u + 10, t + milliseconds(10)).value());
  ASSERT_TRUE(a.open(reply, u + 20, t + milliseconds(20), u + 320, t + milliseconds(320)).has_value());
  EXPECT_EQ(a.time_sync().stats().last_rtt_ms, 20);
  EXPECT_EQ(a.time_sync().stats().last_offset_ms, 0);
  EXPECT_EQ(a.clock_offset_ms(), 0);
}

// Two sessions over a perfect link in virtual time; b's clock drifts by
// 200 ms a minute. Peer time sync keeps a's estimate of b's clock within the
// tolerance, and a's send port is always one b listens on.
TEST(PeerTimeSyncTest, SessionsFollowAPeerWhoseClockDrifts) {
  auto p = testing::make_session_pair(kUnix, kT0);
  Session& a = *p.initiator;
  Session& b = *p.responder;
  auto a_unix = [&](TimePoint t) { return kUnix + (t - kT0) / 1000; };
  auto b_unix = [&](TimePoint t) { return kUnix + (t - kT0) / 1000 + (t - kT0) / 1000 * 200 / 60'000; };
  std::vector<std::uint16_t> listening;
  std::uint32_t challenge = 1;
  for (TimePoint t = kT0; t < kT0 + seconds(120); t += milliseconds(50)) {
    for (int side = 0; side < 2; ++side) {
      Session& me = side == 0 ? a : b;
      Session& peer = side == 0 ? b : a;
      const std::int64_t mine = side == 0 ? a_unix(t) : b_unix(t);
      const std::int64_t theirs = side == 0 ? b_unix(t) : a_unix(t);
      if (me.next_expiry() > t) continue;
      auto x = me.on_expiry(t);
      if (!x.send_time_sync) continue;
      std::vector<std::uint8_t> buf(256);
      buf.resize(me.make_time_sync_request(buf, challenge++, mine, t, 0x8000'0000u).value());
      auto r = peer.open(buf, theirs, t);
      ASSERT_TRUE(r.has_value());
      ASSERT_TRUE(r->answer_time_sync);
      std::vector<std::uint8_t> reply(256);
      reply.resize(peer.make_time_sync_response(reply, *r->answer_time_sync, theirs, t).value());
      ASSERT_TRUE(me.open(reply, mine, t).has_value());
    }
    // a aims at b's current window: b listens there.
    const std::int32_t truth = static_cast<std::int32_t>(b_unix(t) - a_unix(t));
    EXPECT_LE(std::abs(a.clock_offset_ms() - truth), 50) << "at " << (t - kT0) / 1000 << " ms";
    listening.clear();
    b.listen_ports(b_unix(t), 0, listening);
    const std::uint16_t port = a.send_port(a_unix(t));
    EXPECT_NE(std::find(listening.begin(), listening.end(), port), listening.end());
  }
  EXPECT_GE(a.time_sync().stats().responses_received, 11u);
  EXPECT_EQ(a.time_sync().stats().resyncs, 0u);
}

TEST(PeerTimeSyncTest, OurClockStepMovesTheOffsetAndResyncs) {
  SessionConfig config;
  config.path_mtu_search = false;  // its first probe is due at once too
  auto p = testing::make_session_pair(kUnix, kT0, 1000, config);
  Session& a = *p.initiator;
  const std::int32_t before = a.clock_offset_ms();
  a.on_clock_step(-3000, kT0 + seconds(2));
  EXPECT_EQ(a.clock_offset_ms(), before + 3000);
  EXPECT_TRUE(a.time_sync().resyncing());
  EXPECT_EQ(a.next_expiry(), kT0 + seconds(2));
}

}  // namespace
}  // namespace buckwild::session

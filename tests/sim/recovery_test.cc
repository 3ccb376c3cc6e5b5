// The recovery strategies that run inside a session, in virtual time
// (docs/protocol.md §11.9): two real Sessions exchange sealed DATAGRAMs,
// heartbeats, time sync and REKEY messages over lossy links, each side with
// its own state machine (core/session/session_state.h) fed by the core
// trackers the daemon uses (core/session/recovery.h). The tests assert on
// states, causes, attempt counts and the waits between attempts.
//
// EMERGENCY's attempts are discovery, which the daemon runs: what lives in
// the session (the peer going silent, its return, EMERGENCY outranking
// REKEY) is tested here; the discovery attempts, ERROR after five and a
// session within 2 s of the peer's return are tests/unit/daemon/tunnel
// (TunnelRecoveryTest.APeerGoneForGood…, …CannotBeReached…, …RekeySpent…).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <vector>

#include "core/crypto/random.h"
#include "core/session/recovery.h"
#include "core/session/session.h"
#include "core/session/session_state.h"
#include "core/wire/codec.h"
#include "sim/link.h"
#include "sim/simulator.h"
#include "support/session_pair.h"

namespace buckwild::sim {
namespace {

using session::Cause;
using session::State;
using session::Strategy;

constexpr std::int64_t kUnixAtZero = 1'764'080'000'000;  // the Unix ms at virtual time 0

struct Transition {
  TimePoint at;
  State state;
  Strategy strategy;
  Cause cause;
  int attempts;
};

struct Side {
  explicit Side(std::uint64_t seed) : rng(seed) {}
  session::Session* s = nullptr;
  Link* out = nullptr;
  crypto::DeterministicRandom rng;
  std::int64_t skew_ms = 0;  // this side's clock minus the true time
  session::SessionStateMachine machine{State::kEstablished, Cause::kSessionEstablished, 0};
  session::ResyncRecovery resync;
  session::RekeyRecovery rekey;
  std::vector<Transition> transitions;
  std::vector<TimePoint> resync_requests;       // time sync requests sent during a RESYNC
  std::vector<TimePoint> exchanges_started;     // REKEY_REQUESTs that began an exchange
  std::vector<Duration> rekey_waits;            // REKEY's scheduled waits (at − now)
  std::uint64_t data_received = 0;
  std::uint64_t generation = 0;

  std::uint32_t random32() {
    std::uint8_t b[4];
    rng.fill(b);
    std::uint32_t r = 0;
    std::memcpy(&r, b, 4);
    return r;
  }
};

class RecoveryNet {
 public:
  RecoveryNet(const LinkConfig& link, const session::SessionConfig& a_config,
              const session::SessionConfig& b_config, Duration data_every = milliseconds(20))
      : pair_(testing::make_session_pair(kUnixAtZero, 0, 0, a_config, b_config)),
        ab_(sim_, link, 21),
        ba_(sim_, link, 22),
        data_every_(data_every) {
    a_.s = pair_.initiator.get();
    b_.s = pair_.responder.get();
    a_.out = &ab_;
    b_.out = &ba_;
    ab_.set_receiver([this](std::vector<std::uint8_t> d) { receive(b_, std::move(d)); });
    ba_.set_receiver([this](std::vector<std::uint8_t> d) { receive(a_, std::move(d)); });
    for (Side* side : {&a_, &b_}) {
      arm(*side);
      send_data_loop(*side);
    }
  }

  Simulator& sim() { return sim_; }
  Side& a() { return a_; }
  Side& b() { return b_; }
  Link& ab() { return ab_; }
  Link& ba() { return ba_; }

  // Our daemon's NTP client stepped `side`'s clock by `step_ms`.
  void step_clock(Side& side, std::int32_t step_ms) {
    side.skew_ms += step_ms;
    side.s->on_clock_step(step_ms, sim_.now());
    track(side);
    arm(side);
  }

  // The control socket's "rekey PEER" on `side`.
  void request_rekey(Side& side) {
    side.s->request_rekey(sim_.now());
    arm(side);
  }

  std::int64_t unix_of(const Side& side) const { return kUnixAtZero + sim_.now() / 1000 + side.skew_ms; }

 private:
  void send(Side& side, std::vector<std::uint8_t> buf, Result<std::size_t> n) {
    ASSERT_TRUE(n.has_value()) << n.error().what;
    if (*n == 0) return;
    buf.resize(*n);
    side.out->send(std::move(buf));
  }

  // What the daemon's report() does: the machine takes the cause (every
  // session can rekey), and the change is kept for the test.
  void report(Side& side, Cause c) {
    const State before = side.machine.state();
    const Strategy strategy_before = side.machine.strategy();
    const int attempts_before = side.machine.attempts();
    if (!side.machine.transition(c, sim_.now(), /*rekey_available=*/true)) return;
    if (side.machine.state() != before || side.machine.strategy() != strategy_before ||
        side.machine.attempts() != attempts_before) {
      side.transitions.push_back(Transition{sim_.now(), side.machine.state(), side.machine.strategy(),
                                            side.machine.cause(), side.machine.attempts()});
    }
  }

  // What the daemon's track_time_sync / track_rekey do after a step.
  void track(Side& side) {
    side.resync.observe(side.s->time_sync(), side.machine, [&](Cause c) { report(side, c); });
    side.rekey.observe(side.s->keys(), side.machine, [&](Cause c) { report(side, c); });
    if (const auto at = side.rekey.schedule(*side.s, side.machine, sim_.now(), side.random32())) {
      side.rekey_waits.push_back(*at - sim_.now());
    }
  }

  void send_data_loop(Side& side) {
    if (!side.s->dead()) {
      std::vector<std::uint8_t> buf(wire::kMaxDatagramSize);
      const char payload[] = "an inner IP packet, more or less";
      std::memcpy(buf.data() + wire::kHeaderSize, payload, sizeof payload);
      auto n = side.s->seal_datagram(buf, sizeof payload, unix_of(side), sim_.now());
      send(side, std::move(buf), n);
      arm(side);
    }
    sim_.schedule_in(data_every_, [this, &side] { send_data_loop(side); });
  }

  void send_rekey(Side& side) {
    const std::uint64_t started = side.s->keys().stats().rekeys_requested;
    std::vector<std::uint8_t> buf(wire::kMaxDatagramSize);
    auto n = side.s->make_rekey(buf, side.rng, unix_of(side), sim_.now());
    if (side.s->keys().stats().rekeys_requested != started) side.exchanges_started.push_back(sim_.now());
    send(side, std::move(buf), n);
  }

  void send_time_sync(Side& side) {
    std::vector<std::uint8_t> buf(wire::kMaxDatagramSize);
    auto n = side.s->make_time_sync_request(buf, side.random32(), unix_of(side), sim_.now(),
                                            side.random32());
    if (side.s->time_sync().resyncing()) side.resync_requests.push_back(sim_.now());
    send(side, std::move(buf), n);
  }

  void receive(Side& side, std::vector<std::uint8_t> d) {
    auto r = side.s->open(d, unix_of(side), sim_.now());
    if (!r) return;  // counted in the session's stats (the tests assert on them)
    if (r->restored) report(side, Cause::kRecovered);  // the silent peer is back
    if (r->header.type == wire::PacketType::kDatagram) ++side.data_received;
    if (r->send_rekey) send_rekey(side);
    if (r->answer_heartbeat) {
      std::vector<std::uint8_t> buf(wire::kMaxDatagramSize);
      auto n = side.s->make_heartbeat_answer(buf, unix_of(side), sim_.now());
      send(side, std::move(buf), n);
    }
    if (r->answer_time_sync) {
      std::vector<std::uint8_t> buf(wire::kMaxDatagramSize);
      auto n = side.s->make_time_sync_response(buf, *r->answer_time_sync, unix_of(side), sim_.now());
      send(side, std::move(buf), n);
    }
    track(side);
    arm(side);
  }

  // The daemon's session timer: on_expiry at next_expiry(), acting on it.
  void arm(Side& side) {
    const TimePoint at = std::max(side.s->next_expiry(), sim_.now());
    if (at == kNever) return;
    const std::uint64_t g = ++side.generation;
    sim_.schedule(at, [this, &side, g] {
      if (g != side.generation) return;
      const auto x = side.s->on_expiry(sim_.now());
      if (x.silent) report(side, Cause::kPeerSilent);
      if (x.dead) return;
      std::vector<std::uint8_t> buf(wire::kMaxDatagramSize);
      if (x.probe || x.send_heartbeat) {
        auto n = side.s->make_heartbeat(buf, x.probe, unix_of(side), sim_.now());
        send(side, std::move(buf), n);
      }
      if (x.send_time_sync) send_time_sync(side);
      if (x.send_rekey) send_rekey(side);
      track(side);
      arm(side);
    });
  }

  Simulator sim_;
  testing::SessionPair pair_;
  Link ab_;
  Link ba_;
  Duration data_every_;
  Side a_{1};
  Side b_{2};
};

LinkConfig lossy(double loss) {
  LinkConfig l;
  l.delay = milliseconds(20);
  l.jitter = milliseconds(2);  // well inside the 50 ms time sync tolerance
  l.loss = loss;
  return l;
}

session::SessionConfig config(Duration rekey_interval = 0) {
  session::SessionConfig c;
  c.path_mtu_search = false;
  c.rekey_interval = rekey_interval;
  return c;
}

wire::PacketType type_of(const std::vector<std::uint8_t>& d) {
  return static_cast<wire::PacketType>(d[1]);
}

std::optional<Transition> first(const Side& side, State s, Strategy g = Strategy::kNone,
                                TimePoint after = 0) {
  for (const Transition& t : side.transitions) {
    if (t.at >= after && t.state == s && (g == Strategy::kNone || t.strategy == g)) return t;
  }
  return std::nullopt;
}

// The waits of a strategy's attempts: attempt k's within ±25 % of 2^(k−1) s.
void expect_doubling_waits(const std::vector<Duration>& waits, std::size_t count) {
  ASSERT_EQ(waits.size(), count);
  Duration base = seconds(1);
  for (std::size_t i = 0; i < waits.size(); ++i, base *= 2) {
    EXPECT_GE(waits[i], base * 3 / 4) << "attempt " << i + 1;
    EXPECT_LE(waits[i], base * 5 / 4) << "attempt " << i + 1;
    if (i > 0) {
      EXPECT_GT(waits[i], waits[i - 1]) << "attempt " << i + 1;  // growing
    }
  }
}

// A clock stepped by 5 s mid-session, 5 % loss each way: RESYNC on both
// sides (the stepped one re-measures, its first request tells the peer),
// confirmed within seconds, ESTABLISHED again, data flowing throughout and
// nothing rejected.
TEST(RecoverySimTest, ResyncRestoresAClockSteppedByFiveSeconds) {
  RecoveryNet net(lossy(0.05), config(), config());
  net.sim().run_for(seconds(20));
  ASSERT_TRUE(net.a().transitions.empty());
  const std::uint64_t b_data_before = net.b().data_received;
  net.step_clock(net.b(), 5000);
  EXPECT_EQ(net.b().machine.state(), State::kRecovering);
  EXPECT_EQ(net.b().machine.strategy(), Strategy::kResync);
  EXPECT_EQ(net.b().machine.cause(), Cause::kClockDrift);
  EXPECT_EQ(net.b().machine.attempts(), 1);
  const TimePoint stepped = net.sim().now();
  net.sim().run_for(seconds(30));

  for (Side* side : {&net.a(), &net.b()}) {
    const auto rec = first(*side, State::kRecovering, Strategy::kResync);
    ASSERT_TRUE(rec.has_value());
    EXPECT_EQ(rec->cause, Cause::kClockDrift);
    const auto back = first(*side, State::kEstablished, Strategy::kNone, rec->at);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->cause, Cause::kRecovered);
    // Two agreeing measurements a second or two apart; a lost one costs a
    // wait more: well within the five attempts.
    EXPECT_LE(back->at - stepped, seconds(10));
    EXPECT_EQ(side->machine.state(), State::kEstablished);
    EXPECT_FALSE(first(*side, State::kError).has_value());
    std::printf("[ resync    ] %s: RECOVERING %.2f s after the step, ESTABLISHED %.2f s after\n",
                side == &net.a() ? "a" : "b", static_cast<double>(rec->at - stepped) / 1e6,
                static_cast<double>(back->at - stepped) / 1e6);
  }
  // a follows b's new clock: the offset it uses is b's step.
  EXPECT_NEAR(net.a().s->clock_offset_ms(), 5000, 50);
  EXPECT_NEAR(net.b().s->clock_offset_ms(), -5000, 50);
  EXPECT_EQ(net.a().s->stats().rejected, 0u);
  EXPECT_EQ(net.b().s->stats().rejected, 0u);
  EXPECT_GT(net.b().data_received - b_data_before, 1000u);  // 30 s at one per 20 ms, 5 % lost
}

// RESYNC that nothing confirms: every TIME_SYNC_RESPONSE to a is lost. Its
// five requests go out at growing intervals (1, 2, 4, 8 s, each ±25 %), the
// fifth's answer is awaited 2 s, then ERROR (strategy resync, cause
// attempts_exhausted). When the answers come through again, the regular
// measurement confirms the offset: `recovered`, ESTABLISHED.
TEST(RecoverySimTest, AnUnconfirmedResyncBacksOffFiveTimesThenErrorsAndRecoversWhenAnswered) {
  RecoveryNet net(lossy(0.02), config(), config());
  bool drop_responses = false;
  net.ba().set_filter([&](std::vector<std::uint8_t>& d) {
    return !(drop_responses && type_of(d) == wire::PacketType::kTimeSyncResponse);
  });
  net.sim().run_for(seconds(15));
  drop_responses = true;
  net.step_clock(net.a(), 300);  // beyond the tolerance: RESYNC
  const TimePoint stepped = net.sim().now();
  ASSERT_EQ(net.a().machine.strategy(), Strategy::kResync);
  ASSERT_TRUE(net.sim().run_until([&] { return net.a().machine.state() == State::kError; },
                                  stepped + seconds(60)));
  const TimePoint errored = net.sim().now();
  EXPECT_EQ(net.a().machine.strategy(), Strategy::kResync);
  EXPECT_EQ(net.a().machine.cause(), Cause::kAttemptsExhausted);

  // Attempts 1..5 counted in the machine, one per request.
  std::vector<int> attempts;
  for (const Transition& t : net.a().transitions) {
    if (t.state == State::kRecovering && t.strategy == Strategy::kResync) attempts.push_back(t.attempts);
  }
  EXPECT_EQ(attempts, (std::vector<int>{1, 2, 3, 4, 5}));
  // The requests of the RESYNC: five, then the sixth due is the give-up.
  const std::vector<TimePoint>& req = net.a().resync_requests;
  ASSERT_GE(req.size(), 5u);
  std::vector<Duration> waits;
  for (std::size_t i = 1; i < 5; ++i) waits.push_back(req[i] - req[i - 1]);
  expect_doubling_waits(waits, 4);
  EXPECT_EQ(req[0], stepped);  // the first at once
  EXPECT_EQ(errored - req[4], milliseconds(session::kTimeSyncMaxRttMs));
  std::printf("[ resync    ] unconfirmed: requests after %.2f %.2f %.2f %.2f s, ERROR %.2f s after the step\n",
              static_cast<double>(waits[0]) / 1e6, static_cast<double>(waits[1]) / 1e6,
              static_cast<double>(waits[2]) / 1e6, static_cast<double>(waits[3]) / 1e6,
              static_cast<double>(errored - stepped) / 1e6);

  // ERROR stays (visible) while nothing confirms; the answers return.
  net.sim().run_for(seconds(15));
  EXPECT_EQ(net.a().machine.state(), State::kError);
  drop_responses = false;
  const TimePoint returned = net.sim().now();
  ASSERT_TRUE(net.sim().run_until([&] { return net.a().machine.state() == State::kEstablished; },
                                  returned + seconds(30)));
  EXPECT_EQ(net.a().machine.cause(), Cause::kRecovered);
  EXPECT_LE(net.sim().now() - returned, seconds(11));  // the next regular measurement (10 s)
  EXPECT_EQ(net.a().s->stats().rejected, 0u);
}

// A rekey whose REKEY_RESPONSEs are lost: the exchange asked for on the
// control socket is abandoned after its five REQUESTs — key_failure,
// RECOVERING (REKEY). Attempt 1 (after ~1 s) loses its RESPONSEs too;
// attempt 2 (after ~2 s more) completes: `recovered`, ESTABLISHED, both
// sides on key epoch 1, and not one datagram rejected.
TEST(RecoverySimTest, RekeyRecoversAKeyWhoseExchangeWentUnanswered) {
  RecoveryNet net(lossy(0.03), config(), config());
  int responses_to_drop = 2 * session::kMaxRekeyAttempts;
  net.ba().set_filter([&](std::vector<std::uint8_t>& d) {
    if (type_of(d) != wire::PacketType::kRekeyResponse || responses_to_drop == 0) return true;
    --responses_to_drop;
    return false;
  });
  net.sim().run_for(seconds(5));
  net.request_rekey(net.a());
  const TimePoint asked = net.sim().now();
  ASSERT_TRUE(net.sim().run_until(
      [&] { return net.a().s->keys().stats().rekeys == 1 && net.b().s->keys().stats().rekeys == 1; },
      asked + seconds(120)));
  net.sim().run_for(seconds(1));

  const auto rec = first(net.a(), State::kRecovering, Strategy::kRekey);
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->cause, Cause::kKeyFailure);
  EXPECT_EQ(rec->attempts, 1);
  const auto back = first(net.a(), State::kEstablished, Strategy::kNone, rec->at);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->cause, Cause::kRecovered);
  EXPECT_EQ(net.a().machine.state(), State::kEstablished);
  // Trigger, attempt 1 (abandoned: the sixth to tenth RESPONSEs lost, or
  // fewer with the link's own loss), attempt 2 completes.
  EXPECT_EQ(net.a().s->keys().stats().requests_abandoned, 2u);
  EXPECT_EQ(net.a().exchanges_started.size(), 3u);
  expect_doubling_waits(net.a().rekey_waits, 2);
  EXPECT_EQ(net.a().rekey.recoveries(), 1u);
  EXPECT_EQ(net.a().rekey.attempts_started(), 2u);
  EXPECT_EQ(net.a().s->keys().epoch(), 1u);
  EXPECT_EQ(net.b().s->keys().epoch(), 1u);
  // Make-before-break throughout.
  EXPECT_EQ(net.a().s->stats().rejected, 0u);
  EXPECT_EQ(net.b().s->stats().rejected, 0u);
  // b never failed: it answered every time.
  EXPECT_TRUE(net.b().transitions.empty());
  std::printf("[ rekey     ] REKEY from %.2f s to %.2f s after the request, waits %.2f %.2f s\n",
              static_cast<double>(rec->at - asked) / 1e6, static_cast<double>(back->at - asked) / 1e6,
              static_cast<double>(net.a().rekey_waits[0]) / 1e6,
              static_cast<double>(net.a().rekey_waits[1]) / 1e6);
}

// Every REKEY_RESPONSE lost: the key's own interval asked for the rekey
// (a scheduled exchange unanswered past its retries), REKEY runs five
// attempts at growing waits (1, 2, 4, 8, 16 s, ±25 %), then goes on as
// EMERGENCY (cause attempts_exhausted): new keys are discovery's to make.
// The key's own trigger does not interfere: no exchange back to back.
TEST(RecoverySimTest, RekeySpentAfterFiveAttemptsGoesOnAsEmergency) {
  RecoveryNet net(lossy(0.03), config(seconds(20)), config());
  net.ba().set_filter([](std::vector<std::uint8_t>& d) {
    return type_of(d) != wire::PacketType::kRekeyResponse;
  });
  ASSERT_TRUE(net.sim().run_until(
      [&] { return net.a().machine.strategy() == Strategy::kEmergency; }, seconds(400)));
  const Side& a = net.a();
  EXPECT_EQ(a.machine.state(), State::kRecovering);
  EXPECT_EQ(a.machine.cause(), Cause::kAttemptsExhausted);
  EXPECT_EQ(a.machine.attempts(), 1);

  std::vector<int> attempts;
  for (const Transition& t : a.transitions) {
    if (t.strategy == Strategy::kRekey) attempts.push_back(t.attempts);
  }
  EXPECT_EQ(attempts, (std::vector<int>{1, 2, 3, 4, 5}));
  const auto rec = first(a, State::kRecovering, Strategy::kRekey);
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->cause, Cause::kKeyFailure);
  EXPECT_GE(rec->at, seconds(20));  // the interval's exchange, abandoned
  expect_doubling_waits(a.rekey_waits, 5);
  // The interval's exchange and the five attempts: six, each abandoned, and
  // each attempt started its wait after the previous one was given up.
  EXPECT_EQ(a.exchanges_started.size(), 6u);
  EXPECT_EQ(a.s->keys().stats().requests_abandoned, 6u);
  for (std::size_t i = 2; i < a.exchanges_started.size(); ++i) {
    EXPECT_GT(a.exchanges_started[i] - a.exchanges_started[i - 1],
              a.exchanges_started[i - 1] - a.exchanges_started[i - 2])
        << "exchange " << i;
  }
  EXPECT_EQ(a.s->keys().epoch(), 0u);
  EXPECT_EQ(a.s->stats().rejected + net.b().s->stats().rejected, 0u);
  std::printf("[ rekey     ] spent: REKEY at %.1f s, EMERGENCY at %.1f s (virtual)\n",
              static_cast<double>(rec->at) / 1e6, static_cast<double>(net.sim().now()) / 1e6);
}

// The peer stops answering (the path is gone both ways): the first
// unanswered probe makes it silent — peer_silent, RECOVERING (EMERGENCY).
// An exchange abandoned meanwhile is no key failure of its own: EMERGENCY
// outranks REKEY. The path returns: the first packet through is `recovered`.
TEST(RecoverySimTest, ASilentPeerIsEmergencyOutranksRekeyAndItsReturnRecovers) {
  RecoveryNet net(lossy(0.05), config(), config(), milliseconds(100));
  bool down = false;
  net.ab().set_filter([&](std::vector<std::uint8_t>&) { return !down; });
  net.ba().set_filter([&](std::vector<std::uint8_t>&) { return !down; });
  net.sim().run_for(seconds(10));
  down = true;
  const TimePoint gone = net.sim().now();
  net.request_rekey(net.a());
  ASSERT_TRUE(net.sim().run_until([&] { return net.a().machine.state() == State::kRecovering; },
                                  gone + seconds(10)));
  EXPECT_EQ(net.a().machine.strategy(), Strategy::kEmergency);
  EXPECT_EQ(net.a().machine.cause(), Cause::kPeerSilent);
  EXPECT_LE(net.sim().now() - gone, seconds(4));  // answer_wait, then one probe's
  net.sim().run_for(seconds(40));
  EXPECT_GE(net.a().s->keys().stats().requests_abandoned, 1u);
  EXPECT_EQ(net.a().machine.strategy(), Strategy::kEmergency);  // not REKEY
  EXPECT_FALSE(first(net.a(), State::kRecovering, Strategy::kRekey).has_value());
  EXPECT_TRUE(net.a().s->silent());

  down = false;
  const TimePoint back = net.sim().now();
  ASSERT_TRUE(net.sim().run_until([&] { return net.a().machine.state() == State::kEstablished; },
                                  back + seconds(10)));
  EXPECT_EQ(net.a().machine.cause(), Cause::kRecovered);
  EXPECT_LE(net.sim().now() - back, seconds(3));  // the next probe (every 2 s when suspect)
  EXPECT_FALSE(net.a().s->silent());
}

}  // namespace
}  // namespace buckwild::sim

// The session state machine and recovery (docs/protocol.md §11.9): resync,
// rekey and emergency, a peer gone for good and back.
#include "unit/daemon/tunnel/tunnel_fixture.h"

namespace buckwild::daemon::tunnel_testing {
namespace {

class TunnelRecoveryTest : public TunnelTest {};

// ---- The session state machine and recovery (docs/protocol.md §11.9) ----

TEST_P(TunnelRecoveryTest, StatesFollowDiscoveryAndTheSession) {
  drop_all = true;
  start();
  EXPECT_EQ(state_of(*alice), "connecting");
  EXPECT_EQ(state_of(*bob), "listening");
  drop_all = false;
  ASSERT_TRUE(connected());
  loop.run_for(milliseconds(100));
  EXPECT_EQ(state_of(*alice), "established");
  EXPECT_EQ(state_of(*bob), "established");
  EXPECT_EQ(alice->tunnel->status()["peers"][0]["state"]["cause"], "session_established");
}

// A clock stepped by 5 s mid-session: RESYNC (RECOVERING, strategy resync)
// until the offset is confirmed, then ESTABLISHED again, on the same session,
// and packets go through.
TEST_P(TunnelRecoveryTest, AClockStepIsRecoveredByResync) {
  start();
  ASSERT_TRUE(connected());
  exchange("before");
  const std::uint64_t id = alice->tunnel->session_ids().at(0);
  alice->clock.step_unix_ms(5000);
  alice->tunnel->on_clock_step(5'000'000);
  EXPECT_EQ(state_of(*alice), "recovering");
  EXPECT_EQ(strategy_of(*alice), "resync");
  EXPECT_EQ(attempts_of(*alice), 1);
  ASSERT_TRUE(loop.run_until([&] { return state_of(*alice) == "established"; },
                             loop.now() + seconds(6)));
  EXPECT_EQ(alice->tunnel->status()["peers"][0]["state"]["cause"], "recovered");
  EXPECT_EQ(alice->tunnel->session_ids(), std::vector<std::uint64_t>{id});
  EXPECT_EQ(bob->tunnel->session_ids(), std::vector<std::uint64_t>{id});
  while (bob->tun.take_written()) {
  }
  exchange("after");
}

// REKEY (docs/protocol.md §11.9): bob's REKEY_RESPONSEs are lost. Alice's
// requested exchange is abandoned after its five REQUESTs: key_failure,
// RECOVERING (REKEY). With the first ten lost, a later attempt completes:
// recovered, counted; with all lost, five attempts at growing intervals are
// spent and EMERGENCY takes over: the session ends and discovery makes new
// keys in a new one, ESTABLISHED again.
TEST_P(TunnelRecoveryTest, AnUnansweredRekeyIsRecoveredByRekey) {
  int to_drop = 10;
  net.set_filter([&](const SocketAddress& from, const SocketAddress&, Bytes payload) {
    if (payload.size() > 1 && payload[1] == 0x12 && from.ip == ip("10.200.0.2") && to_drop > 0) {
      --to_drop;
      return false;
    }
    return true;
  });
  start();
  ASSERT_TRUE(connected());
  const std::uint64_t id = alice->tunnel->session_ids().at(0);
  ASSERT_TRUE(alice->tunnel->request_rekey("bob").value("ok", false));
  bool was_rekey = false;
  for (int i = 0; i < 400 && alice->tunnel->stats().rekey_recoveries == 0; ++i) {
    exchange(std::to_string(i));
    was_rekey = was_rekey || strategy_of(*alice) == "rekey";
  }
  EXPECT_TRUE(was_rekey);
  EXPECT_EQ(alice->tunnel->stats().rekey_recoveries, 1u);
  EXPECT_EQ(state_of(*alice), "established");
  EXPECT_EQ(alice->tunnel->status()["peers"][0]["state"]["cause"], "recovered");
  EXPECT_EQ(alice->tunnel->status()["counters"]["rekey_recoveries"], 1);
  EXPECT_EQ(alice->tunnel->session_ids(), std::vector<std::uint64_t>{id});  // the same session
  const auto* sa = alice->tunnel->session(id);
  ASSERT_NE(sa, nullptr);
  EXPECT_EQ(sa->keys().epoch(), 1u);
  EXPECT_EQ(sa->keys().stats().requests_abandoned, 2u);
  EXPECT_EQ(alice->tunnel->stats().rejected + bob->tunnel->stats().rejected, 0u);
}

TEST_P(TunnelRecoveryTest, ARekeyNeverAnsweredIsSpentAndEmergencyMakesANewSession) {
  net.set_filter([&](const SocketAddress& from, const SocketAddress&, Bytes payload) {
    return !(payload.size() > 1 && payload[1] == 0x12 && from.ip == ip("10.200.0.2"));
  });
  start();
  ASSERT_TRUE(connected());
  const std::uint64_t id = alice->tunnel->session_ids().at(0);
  ASSERT_TRUE(alice->tunnel->request_rekey("bob").value("ok", false));
  std::vector<TimePoint> attempt_at;  // when REKEY's attempt count moved
  int last = 0;
  for (int i = 0; i < 2400 && alice->tunnel->stats().rekey_exhausted == 0; ++i) {
    // Traffic both ways (not checked here: the session is replaced mid-way).
    alice->tun.inject(ipv4("10.77.0.1", "10.77.0.2", "to bob"));
    bob->tun.inject(ipv4("10.77.0.2", "10.77.0.1", "to alice"));
    loop.run_for(milliseconds(50));
    while (bob->tun.take_written()) {
    }
    while (alice->tun.take_written()) {
    }
    if (strategy_of(*alice) == "rekey" && attempts_of(*alice) != last) {
      last = attempts_of(*alice);
      attempt_at.push_back(loop.now());
    }
  }
  // Spent: EMERGENCY ended the session (its connections kept) and started
  // discovery at once.
  ASSERT_EQ(alice->tunnel->stats().rekey_exhausted, 1u);
  EXPECT_EQ(alice->tunnel->status()["counters"]["rekey_exhausted"], 1);
  ASSERT_EQ(attempt_at.size(), static_cast<std::size_t>(session::kMaxAttempts));
  for (std::size_t i = 2; i < attempt_at.size(); ++i) {
    // An exchange's five REQUESTs plus a wait that doubles: growing.
    EXPECT_GT(attempt_at[i] - attempt_at[i - 1], attempt_at[i - 1] - attempt_at[i - 2]) << i;
  }
  EXPECT_EQ(alice->tunnel->stats().rekey_recoveries, 0u);
  EXPECT_GE(alice->tunnel->stats().sessions_lost, 1u);
  // New keys by discovery: a new session, ESTABLISHED, traffic flows.
  ASSERT_TRUE(loop.run_until(
      [&] {
        return alice->tunnel->session_count() == 1 && bob->tunnel->session_count() == 1 &&
               alice->tunnel->session_ids() == bob->tunnel->session_ids() &&
               alice->tunnel->session_ids().at(0) != id;
      },
      loop.now() + seconds(10)));
  loop.run_for(milliseconds(300));
  EXPECT_EQ(state_of(*alice), "established");
  while (bob->tun.take_written()) {
  }
  while (alice->tun.take_written()) {
  }
  exchange("after");
}

// A peer gone for good: RECOVERING (EMERGENCY) with attempts at growing
// intervals, ERROR after the fifth, visible with its reason and raised once;
// back (its daemon restarted, initiating too): a session within 2 s.
TEST_P(TunnelRecoveryTest, APeerGoneForGoodEndsInErrorAndIsFoundWhenBack) {
  start();
  ASSERT_TRUE(connected());
  exchange("before");
  bob->tunnel.reset();
  std::vector<TimePoint> attempt_at;  // when the attempt count moved
  int last = 0;
  for (int i = 0; i < 600 && state_of(*alice) != "error"; ++i) {
    alice->tun.inject(ipv4("10.77.0.1", "10.77.0.2", "anyone there"));
    loop.run_for(milliseconds(100));
    if (state_of(*alice) == "recovering") {
      EXPECT_EQ(strategy_of(*alice), "emergency");
      if (attempts_of(*alice) != last) {
        last = attempts_of(*alice);
        attempt_at.push_back(loop.now());
      }
    }
  }
  ASSERT_EQ(state_of(*alice), "error");
  ASSERT_EQ(attempt_at.size(), static_cast<std::size_t>(session::kMaxAttempts));
  for (std::size_t i = 2; i < attempt_at.size(); ++i) {
    // Each wait about twice the one before (±25 % jitter, 100 ms steps).
    EXPECT_GT(attempt_at[i] - attempt_at[i - 1], attempt_at[i - 1] - attempt_at[i - 2]) << i;
  }
  const nlohmann::json st = alice->tunnel->status()["peers"][0]["state"];
  EXPECT_EQ(st["strategy"], "emergency");
  EXPECT_EQ(st["cause"], "attempts_exhausted");
  EXPECT_NE(st["error"].get<std::string>().find("5 discovery attempts"), std::string::npos);
  EXPECT_EQ(count_events(*alice, TunnelEvent::Kind::kRecoveryFailed), 1u);
  loop.run_for(seconds(60));  // still trying, at most every 30 s; no second event
  EXPECT_EQ(count_events(*alice, TunnelEvent::Kind::kRecoveryFailed), 1u);
  EXPECT_EQ(state_of(*alice), "error");

  bob->config.peers[0].initiate = true;
  bob->start(loop, net, GetParam());
  const TimePoint back = loop.now();
  ASSERT_TRUE(loop.run_until(
      [&] {
        return alice->tunnel->session_count() == 1 && bob->tunnel->session_count() == 1 &&
               alice->tunnel->session_ids() == bob->tunnel->session_ids();
      },
      loop.now() + seconds(5)));
  EXPECT_LE(loop.now() - back, seconds(2));
  loop.run_for(milliseconds(300));
  EXPECT_EQ(state_of(*alice), "established");
  while (bob->tun.take_written()) {
  }
  exchange("after");
}

// Without a session: discovery attempts back off with jitter and the fifth
// unanswered one is ERROR; a datagram from the peer's address (its path is
// back) sets off the next attempt at once instead of at the backoff.
TEST_P(TunnelRecoveryTest, APeerThatCannotBeReachedIsErrorAndItsReturnIsTriedAtOnce) {
  drop_all = true;
  start();
  loop.run_for(seconds(150));
  ASSERT_EQ(state_of(*alice), "error");
  EXPECT_EQ(strategy_of(*alice), "none");
  drop_all = false;
  // Bob (a responder) says something: a datagram for no session of alice's.
  std::vector<std::uint8_t> junk(wire::kOverhead + 4, 0);
  junk[0] = wire::kVersion;
  junk[1] = static_cast<std::uint8_t>(wire::PacketType::kHeartbeat);
  auto s = net.bind(SocketAddress{ip("10.200.0.2"), 4444});
  ASSERT_TRUE(s.has_value());
  const TimePoint sent = loop.now();
  const OutgoingDatagram d{junk, SocketAddress{ip("10.200.0.1"), 1025}, std::nullopt};
  ASSERT_TRUE((*s)->send_batch(std::span<const OutgoingDatagram>(&d, 1)).has_value());
  ASSERT_TRUE(connected());
  EXPECT_LE(loop.now() - sent, seconds(1));
  EXPECT_EQ(state_of(*alice), "established");
}

// #14 "Outages": the underlay is down longer than the dead-peer timeout, so
// both sessions end, but neither daemon restarted. EMERGENCY: discovery
// anew, and the new session takes over the old one's connections: the
// application's TCP connection carries on, on the same socket.
TEST_P(TunnelRecoveryTest, EmergencyKeepsAConnectionWhenBothSessionsEnded) {
  Config ac = host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true);
  Config bc = host_config("10.200.0.2", "10.77.0.2/24", "10.200.0.1", "10.77.0.1", false);
  for (Config* c : {&ac, &bc}) {
    c->protocol.tcp_mode = TcpMode::kStream;
    c->protocol.heartbeat_interval_ms = 2000;
    c->protocol.heartbeat_timeout_ms = 10'000;
  }
  alice = std::make_unique<Host>(std::move(ac), loop, 0, 1);
  bob = std::make_unique<Host>(std::move(bc), loop, 0, 2);
  bob->start(loop, net, GetParam());
  alice->start(loop, net, GetParam());
  ASSERT_TRUE(connected());
  const std::uint64_t old_id = alice->tunnel->session_ids().at(0);

  const SocketAddress app{ip("10.77.0.1"), 40001};
  const SocketAddress server{ip("10.77.0.2"), 80};
  ASSERT_TRUE(alice->tun.inject(buckwild::testing::tcp_segment(app, server, inner::tcp_flag::kSyn)));
  ASSERT_TRUE(loop.run_until([&] { return !bob->tcp.connect_calls().empty(); }, loop.now() + seconds(2)));
  auto server_end = bob->tcp.take_server(app);
  ASSERT_TRUE(server_end.has_value());
  std::optional<inner::TcpSegment> held = held_syn(*alice);
  ASSERT_TRUE(held.has_value());
  auto app_end = alice->tcp.push_connection(ip("10.77.0.1"), held->source);
  ASSERT_TRUE(app_end.has_value());
  auto echo = [&](const std::string& line) {
    // app → server, then server → app, through the tunnel.
    std::string got;
    EXPECT_EQ(::send(app_end->get(), line.data(), line.size(), MSG_NOSIGNAL), static_cast<ssize_t>(line.size()));
    loop.run_until(
        [&] {
          char buf[256];
          const ssize_t n = ::recv(server_end->get(), buf, sizeof buf, MSG_DONTWAIT);
          if (n > 0) got.append(buf, static_cast<std::size_t>(n));
          return got.size() >= line.size();
        },
        loop.now() + seconds(20));
    EXPECT_EQ(got, line);
    std::string back;
    EXPECT_EQ(::send(server_end->get(), line.data(), line.size(), MSG_NOSIGNAL), static_cast<ssize_t>(line.size()));
    loop.run_until(
        [&] {
          char buf[256];
          const ssize_t n = ::recv(app_end->get(), buf, sizeof buf, MSG_DONTWAIT);
          if (n > 0) back.append(buf, static_cast<std::size_t>(n));
          return back.size() >= line.size();
        },
        loop.now() + seconds(20));
    EXPECT_EQ(back, line);
  };
  echo("before the outage\n");

  drop_all = true;  // 12 s: past the 10 s dead-peer timeout on both sides
  ASSERT_TRUE(loop.run_until(
      [&] { return alice->tunnel->session_count() == 0 && bob->tunnel->session_count() == 0; },
      loop.now() + seconds(12)));
  EXPECT_EQ(state_of(*alice), "recovering");
  EXPECT_EQ(strategy_of(*alice), "emergency");
  EXPECT_EQ(alice->tunnel->status()["peers"][0]["state"]["cause"], "session_lost");
  EXPECT_EQ(state_of(*bob), "recovering");
  EXPECT_EQ(alice->tunnel->stream_flows(), 1u);  // kept, not reset
  EXPECT_EQ(bob->tunnel->stream_flows(), 1u);
  loop.run_for(seconds(1));
  drop_all = false;
  ASSERT_TRUE(connected());
  EXPECT_NE(alice->tunnel->session_ids().at(0), old_id);
  EXPECT_EQ(alice->tunnel->session_ids(), bob->tunnel->session_ids());
  loop.run_for(milliseconds(200));
  EXPECT_EQ(state_of(*alice), "established");
  EXPECT_EQ(state_of(*bob), "established");
  echo("after the outage, same connection\n");
  EXPECT_EQ(alice->tunnel->stream_stats().opened, 1u);
  EXPECT_EQ(bob->tunnel->stream_stats().accepted, 1u);
  const nlohmann::json conns = alice->tunnel->status()["peers"][0]["session"]["connections"];
  EXPECT_EQ(conns, 1);
}

INSTANTIATE_TEST_SUITE_P(ReceivePaths, TunnelRecoveryTest, ::testing::Bool(), receive_path_name);

}  // namespace
}  // namespace buckwild::daemon::tunnel_testing

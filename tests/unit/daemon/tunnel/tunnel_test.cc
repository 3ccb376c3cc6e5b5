// The tunnel between two hosts (tunnel_fixture.h): discovery, hopping, IP
// packets both ways and their offloads, rekeys, clock skew, anti-spoofing, a
// restarted or absent responder, the audit log, the TUN device's failures.
#include "unit/daemon/tunnel/tunnel_fixture.h"

namespace buckwild::daemon::tunnel_testing {
namespace {

TEST_P(TunnelTest, InOrderTcpSegmentsOfABatchReachTheTunAsOneGsoWrite) {
  start();
  ASSERT_TRUE(connected());
  bob->tun.set_takes_gso(true);
  // Eight 1000-byte segments of one flow and a UDP datagram, all read in one
  // wake-up on alice's side, so they reach bob in one receive batch.
  offload::Shape s{.payload = 8 * 1000, .tcp_flags = 0x10, .net = 77};
  std::vector<std::uint8_t> whole = offload::super_packet(s);
  auto plan = offload::plan_split(offload::gso_header(s, 1000), whole).plan;
  ASSERT_TRUE(plan);
  std::vector<std::vector<std::uint8_t>> sent;
  for (std::size_t i = 0; i < plan->count; ++i) {
    std::vector<std::uint8_t> seg(plan->max_size);
    seg.resize(offload::write_segment(*plan, whole, i, seg));
    sent.push_back(seg);
  }
  sent.push_back(ipv4("10.77.0.1", "10.77.0.2", "after the run"));
  // What the kernel sees, split back, is what was sent, in order.
  carry_to_bob(sent);
  EXPECT_EQ(bob->tun.gso_writes(), 1u);
  EXPECT_EQ(bob->tunnel->stats().tun_coalesced_writes, 1u);
  EXPECT_EQ(bob->tunnel->stats().tun_coalesced_segments, 8u);
  EXPECT_EQ(bob->tunnel->stats().tun_packets_out, 9u);
}

// Where the device takes USO, a batch's equal-size UDP datagrams of one flow
// reach the TUN as one UDP_L4 write that the kernel splits back into them;
// where it does not (a kernel before 6.2), each is written alone.
TEST_P(TunnelTest, UdpDatagramsOfABatchReachTheTunAsOneUsoWrite) {
  start();
  ASSERT_TRUE(connected());
  bob->tun.set_takes_gso(true);
  offload::Shape s{.proto = 17, .payload = 8 * 1000, .net = 77};
  std::vector<std::uint8_t> whole = offload::super_packet(s);
  auto plan = offload::plan_split(offload::gso_header(s, 1000), whole).plan;
  ASSERT_TRUE(plan);
  std::vector<std::vector<std::uint8_t>> sent;
  for (std::size_t i = 0; i < plan->count; ++i) {
    std::vector<std::uint8_t> seg(plan->max_size);
    seg.resize(offload::write_segment(*plan, whole, i, seg));
    sent.push_back(seg);
  }
  carry_to_bob(sent);
  EXPECT_EQ(bob->tun.gso_writes(), 0u) << "no USO: written singly";
  EXPECT_EQ(bob->tunnel->stats().tun_coalesced_writes, 0u);
  bob->tun.set_takes_udp_gso(true);
  carry_to_bob(sent);
  EXPECT_EQ(bob->tun.gso_writes(), 1u);
  EXPECT_EQ(bob->tunnel->stats().tun_coalesced_writes, 1u);
  EXPECT_EQ(bob->tunnel->stats().tun_coalesced_segments, 8u);
  EXPECT_EQ(bob->tunnel->stats().tun_packets_out, 16u);
}

// UDP GRO (docs/architecture.md "UDP offloads"): bob's sockets read runs of
// alice's equal-size datagrams coalesced, and the tunnel splits each read
// back into datagrams, every one delivered intact and in order. On the eBPF
// path GRO stays off unless the frame filter sees each datagram before GRO
// (the fake one does not say so), and the same packets arrive one by one.
TEST_P(TunnelTest, CoalescedReadsAreSplitIntoEveryDatagram) {
  net.set_gro(true);
  start();
  ASSERT_TRUE(connected());
  const UdpOffloadStats before = udp_offload_stats();
  std::vector<std::vector<std::uint8_t>> sent;
  for (int i = 0; i < 40; ++i) {
    // Equal sizes but the 30th (a run ends there) and the last.
    const std::size_t fill = i == 29 || i == 39 ? 10 : 600;
    const std::string text = "packet " + std::to_string(100 + i) + std::string(fill, 'x');
    sent.push_back(ipv4("10.77.0.1", "10.77.0.2", text));
  }
  carry_to_bob(sent);
  const UdpOffloadStats& after = udp_offload_stats();
  EXPECT_EQ(after.gro_malformed, before.gro_malformed);
  if (GetParam()) {
    EXPECT_EQ(after.gro_reads, before.gro_reads);
  } else {
    // 40 datagrams: runs of 30 and 10, each one read (and the sessions' own
    // equal datagrams, path MTU probes say, may coalesce too).
    EXPECT_GE(after.gro_reads - before.gro_reads, 2u);
    EXPECT_GE(after.gro_datagrams - before.gro_datagrams, 40u);
  }
}

TEST_P(TunnelTest, DiscoversAndCarriesPacketsBothWaysOnHoppingPorts) {
  start();
  ASSERT_TRUE(connected());
  for (int i = 0; i < 40; ++i) {  // 40 × 50 ms = 8 windows
    exchange(std::to_string(i));
  }
  EXPECT_GE(datagram_ports.size(), 12u);  // both directions hop every 250 ms
  EXPECT_GE(source_ports.size(), 12u);    // and send from their own current port
  EXPECT_EQ(net.dropped(), 0u);           // nothing ever hit a port that was not open
  EXPECT_EQ(alice->tunnel->stats().rejected, 0u);
  EXPECT_EQ(bob->tunnel->stats().rejected, 0u);
}

// [crypto] aead: the responder's preference decides the session's cipher (the
// initiator offers both), and "auto" stands for the faster one measured here.
TEST_P(TunnelTest, TheInitiatorHoldsItsTrafficUntilTheResponderHasTheSession) {
  // The first CONFIRM is lost: for a second alice has the session and bob
  // does not, nor its ports. Whatever alice sent meanwhile would be dropped
  // at bob's filter (or closed port); she holds it until bob speaks.
  bool confirm_lost = false;
  net.set_filter([&](const SocketAddress&, const SocketAddress&, Bytes payload) {
    if (!confirm_lost && payload.size() > 1 && payload[1] == 0x0E) {
      confirm_lost = true;
      return false;
    }
    return true;
  });
  start();
  ASSERT_TRUE(loop.run_until([&] { return alice->tunnel->session_count() == 1; },
                             loop.now() + seconds(5)));
  ASSERT_TRUE(confirm_lost);
  EXPECT_EQ(bob->tunnel->session_count(), 0u);
  auto early = ipv4("10.77.0.1", "10.77.0.2", "before bob has the session");
  ASSERT_TRUE(alice->tun.inject(early));
  // PMTU probes, time sync and heartbeats would be due; a path keepalive
  // (which opens a NAT's mapping) only after 200 ms of silence.
  loop.run_for(milliseconds(150));
  EXPECT_EQ(net.dropped(), 1u) << "something besides the lost CONFIRM was sent too early";
  ASSERT_TRUE(connected());
  loop.run_for(milliseconds(50));
  auto got = bob->tun.take_written();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, early);
  EXPECT_EQ(alice->tunnel->stats().held_until_heard, 1u);
  EXPECT_EQ(alice->tunnel->stats().held_dropped, 0u);
  exchange("after");
}

TEST_P(TunnelTest, TheRespondersAeadPreferenceDecides) {
  for (const AeadChoice choice : {AeadChoice::kAes256Gcm, AeadChoice::kChaCha20Poly1305, AeadChoice::kAuto}) {
    Config ac = host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true);
    Config bc = host_config("10.200.0.2", "10.77.0.2/24", "10.200.0.1", "10.77.0.1", false);
    // The initiator's own preference is the other one: it does not decide.
    ac.crypto.aead = choice == AeadChoice::kAes256Gcm ? AeadChoice::kChaCha20Poly1305 : AeadChoice::kAes256Gcm;
    bc.crypto.aead = choice;
    alice.reset();
    bob.reset();
    alice = std::make_unique<Host>(std::move(ac), loop, 0, 1);
    bob = std::make_unique<Host>(std::move(bc), loop, 0, 2);
    bob->start(loop, net, GetParam());
    alice->start(loop, net, GetParam());
    ASSERT_TRUE(connected());
    const std::string want = preferred_aead(choice) == crypto::AeadAlgorithm::kAes256Gcm
                                 ? "aes-256-gcm"
                                 : "chacha20-poly1305";
    EXPECT_EQ(alice->tunnel->status()["peers"][0]["session"]["protection"], want);
    EXPECT_EQ(bob->tunnel->status()["peers"][0]["session"]["protection"], want);
    exchange("cipher");
  }
}

// The frame filter lets a configured peer's discovery past the cap on all
// sources together: it learns the peers' endpoints, and for a peer without
// one (a roaming client) where its session came from, kept after it ends.
TEST_P(TunnelTest, TheFrameFilterKnowsThePeersAddresses) {
  if (!GetParam()) GTEST_SKIP() << "the user-space path has no frame filter";
  alice = std::make_unique<Host>(
      host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true), loop, 0, 1);
  Config bc = host_config("10.200.0.2", "10.77.0.2/24", "10.200.0.1", "10.77.0.1", false);
  bc.peers[0].endpoint.reset();
  bob = std::make_unique<Host>(std::move(bc), loop, 0, 2);
  bob->start(loop, net, true);
  alice->start(loop, net, true);
  const auto has = [](const std::vector<IpAddress>& v, const char* a) {
    return std::find(v.begin(), v.end(), *IpAddress::parse(a)) != v.end();
  };
  loop.run_for(milliseconds(300));
  EXPECT_TRUE(has(alice->ebpf->peer_sources(), "10.200.0.2")) << "alice's peer's endpoint";
  ASSERT_TRUE(connected());
  loop.run_for(milliseconds(300));
  EXPECT_TRUE(has(bob->ebpf->peer_sources(), "10.200.0.1")) << "where alice's session came from";
  EXPECT_EQ(bob->ebpf->peer_sources().size(), 1u);
}

// docs/protocol.md §9.5: testing.rekey_interval_seconds rekeys every session
// on time, make-before-break (nothing rejected, every packet delivered), the
// tunnel counts and logs each rekey, and the control request asks for one.
TEST_P(TunnelTest, RekeysOnTheTestIntervalAndOnRequestWithoutLosingAPacket) {
  Config ac = host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true);
  Config bc = host_config("10.200.0.2", "10.77.0.2/24", "10.200.0.1", "10.77.0.1", false);
  ac.testing.rekey_interval_seconds = 6;
  bc.testing.rekey_interval_seconds = 6;
  alice = std::make_unique<Host>(std::move(ac), loop, 0, 1);
  bob = std::make_unique<Host>(std::move(bc), loop, 0, 2);
  bob->start(loop, net, GetParam());
  alice->start(loop, net, GetParam());
  ASSERT_TRUE(connected());
  for (int i = 0; i < 400; ++i) exchange(std::to_string(i));  // 20 s
  const auto* sa = alice->tunnel->session(alice->tunnel->session_ids().at(0));
  const auto* sb = bob->tunnel->session(bob->tunnel->session_ids().at(0));
  ASSERT_NE(sa, nullptr);
  ASSERT_NE(sb, nullptr);
  EXPECT_GE(sa->keys().stats().rekeys, 2u);
  EXPECT_EQ(sa->keys().epoch(), sb->keys().epoch());
  EXPECT_EQ(alice->tunnel->stats().rekeys, sa->keys().stats().rekeys);
  EXPECT_EQ(bob->tunnel->stats().rekeys, sb->keys().stats().rekeys);
  EXPECT_EQ(alice->tunnel->stats().rejected, 0u);
  EXPECT_EQ(bob->tunnel->stats().rejected, 0u);
  EXPECT_EQ(net.dropped(), 0u);
}

TEST_P(TunnelTest, RekeysOnRequest) {
  start();  // key_rotation_interval_hours = 24: nothing rekeys on its own here
  ASSERT_TRUE(connected());
  const auto* sa = alice->tunnel->session(alice->tunnel->session_ids().at(0));
  const auto* sb = bob->tunnel->session(bob->tunnel->session_ids().at(0));
  ASSERT_NE(sa, nullptr);
  ASSERT_NE(sb, nullptr);
  // The control socket's "rekey alice" on bob (the responder asks).
  const auto reply = bob->tunnel->request_rekey("alice");
  EXPECT_TRUE(reply.value("ok", false)) << reply.dump();
  for (int i = 0; i < 10; ++i) exchange(std::to_string(i));  // 0.5 s
  EXPECT_EQ(sa->keys().stats().rekeys, 1u);
  EXPECT_EQ(sb->keys().stats().rekeys, 1u);
  EXPECT_EQ(sb->keys().stats().rekeys_requested, 1u);
  EXPECT_EQ(bob->tunnel->stats().rekeys, 1u);
  EXPECT_EQ(alice->tunnel->stats().rejected + bob->tunnel->stats().rejected, 0u);
  const auto unknown = alice->tunnel->request_rekey("carol");
  EXPECT_FALSE(unknown.value("ok", true));
}

TEST_P(TunnelTest, WorksWithSkewedClocks) {
  start(/*bob_skew_ms=*/40);
  ASSERT_TRUE(connected());
  for (int i = 0; i < 20; ++i) exchange(std::to_string(i));
  EXPECT_EQ(net.dropped(), 0u);
  const auto* s = bob->tunnel->session(bob->tunnel->session_ids().at(0));
  ASSERT_NE(s, nullptr);
  EXPECT_NEAR(s->clock_offset_ms(), -40, 5);
}

// A daemon that reads a datagram late (busy, or just restarted) measures
// from its arrival (the kernel's receive stamp): bob reads alice's CONFIRM
// 400 ms after it arrived and still starts with her clock's offset right,
// where reading it as arriving then put him 200 ms off.
TEST_P(TunnelTest, TheResponderMeasuresTheClockFromTheConfirmsArrival) {
  net.set_clock([this] { return loop.now(); });
  struct Held {
    SocketAddress from, to;
    std::vector<std::uint8_t> payload;
    TimePoint at;
  };
  std::optional<Held> held;
  net.set_filter([&](const SocketAddress& from, const SocketAddress& to, Bytes payload) {
    if (held || payload.size() < 2 ||
        payload[1] != static_cast<std::uint8_t>(wire::PacketType::kDiscoveryConfirm)) {
      return true;
    }
    held = Held{from, to, {payload.begin(), payload.end()}, loop.now()};
    return false;
  });
  start(/*bob_skew_ms=*/40);
  ASSERT_TRUE(loop.run_until([&] { return held.has_value(); }, loop.now() + seconds(5)));
  loop.run_for(milliseconds(400));
  ASSERT_EQ(bob->tunnel->session_count(), 0u);
  ASSERT_TRUE(net.deliver_at(held->from, held->to, held->payload, held->at));
  ASSERT_TRUE(loop.run_until([&] { return bob->tunnel->session_count() == 1; },
                             loop.now() + milliseconds(10)));
  const auto* s = bob->tunnel->session(bob->tunnel->session_ids().at(0));
  ASSERT_NE(s, nullptr);
  EXPECT_NEAR(s->clock_offset_ms(), -40, 5);
}

TEST_P(TunnelTest, DropsInnerPacketsFromAddressesThePeerMayNotUse) {
  start();
  ASSERT_TRUE(connected());
  ASSERT_TRUE(alice->tun.inject(ipv4("10.77.0.9", "10.77.0.2", "spoofed")));
  loop.run_for(milliseconds(50));
  EXPECT_FALSE(bob->tun.take_written().has_value());
  EXPECT_EQ(bob->tunnel->stats().spoofed_source, 1u);
}

TEST_P(TunnelTest, NoRouteIsCountedNotSent) {
  start();
  ASSERT_TRUE(connected());
  ASSERT_TRUE(alice->tun.inject(ipv4("10.77.0.1", "192.0.2.7", "nowhere")));
  loop.run_for(milliseconds(10));
  EXPECT_EQ(alice->tunnel->stats().no_route, 1u);
}

TEST_P(TunnelTest, RestartedResponderIsFoundAgainWhileTrafficFlows) {
  start();
  ASSERT_TRUE(connected());
  exchange("before");
  const std::uint64_t old_id = alice->tunnel->session_ids().at(0);
  // Bob's daemon dies and comes back with no memory of the session.
  bob->tunnel.reset();
  const TimePoint restarted = loop.now();
  bob->start(loop, net, GetParam());
  // Alice keeps sending; she notices the silence, probes, and rediscovers.
  bool back = false;
  for (int i = 0; i < 300 && !back; ++i) {
    alice->tun.inject(ipv4("10.77.0.1", "10.77.0.2", "while down"));
    loop.run_for(milliseconds(100));
    back = alice->tunnel->session_count() == 1 && alice->tunnel->session_ids().at(0) != old_id &&
           bob->tunnel->session_count() == 1;
  }
  ASSERT_TRUE(back);
  // Within a second of contact (§11.4): overdue, probed, silent, discovery
  // answered, the restart check's probes unanswered.
  EXPECT_LE(loop.now() - restarted, seconds(1));
  while (bob->tun.take_written()) {
  }
  exchange("after");
}

// The initiator holds its CONFIRM for the restart check and stamps it with
// the time it leaves: the restarted responder starts with the initiator's
// clock right, where a stamp taken when the check began put it half the
// check off (the soak's bob, restarted, began 202 ms off).
TEST_P(TunnelTest, ARestartedResponderStartsWithTheClockOffsetRight) {
  start(/*bob_skew_ms=*/40);
  ASSERT_TRUE(connected());
  const std::uint64_t old_id = alice->tunnel->session_ids().at(0);
  bob->tunnel.reset();
  bob->start(loop, net, GetParam());
  const session::Session* fresh = nullptr;
  for (int i = 0; i < 3000 && fresh == nullptr; ++i) {
    if (i % 10 == 0) alice->tun.inject(ipv4("10.77.0.1", "10.77.0.2", "while down"));
    loop.run_for(milliseconds(10));
    if (bob->tunnel->session_count() == 1) {
      fresh = bob->tunnel->session(bob->tunnel->session_ids().at(0));
    }
  }
  ASSERT_NE(fresh, nullptr);
  ASSERT_NE(fresh->id(), old_id);
  EXPECT_EQ(fresh->time_sync().stats().responses_received, 0u);  // discovery's estimate
  EXPECT_NEAR(fresh->clock_offset_ms(), -40, 5);
}

// A responder that was away longer than the probes (its host down for 30 s)
// is found at the next attempt of the search once it is back: the attempts
// back off (EMERGENCY: 0.5 s doubling, ±25 %, at most 30 s), so that is
// within the wait in force then, plus the restart check.
TEST_P(TunnelTest, ResponderBackAfterALongAbsenceIsFoundAtTheNextAttempt) {
  start();
  ASSERT_TRUE(connected());
  exchange("before");
  const std::uint64_t old_id = alice->tunnel->session_ids().at(0);
  bob->tunnel.reset();
  for (int i = 0; i < 300; ++i) {
    alice->tun.inject(ipv4("10.77.0.1", "10.77.0.2", "while away"));
    loop.run_for(milliseconds(100));
  }
  ASSERT_EQ(alice->tunnel->session_ids(), std::vector<std::uint64_t>{old_id});  // kept meanwhile
  EXPECT_TRUE(alice->tunnel->session(old_id)->suspect());
  bob->start(loop, net, GetParam());
  const TimePoint back_at = loop.now();
  ASSERT_TRUE(loop.run_until(
      [&] {
        return alice->tunnel->session_count() == 1 && alice->tunnel->session_ids().at(0) != old_id &&
               bob->tunnel->session_count() == 1;
      },
      loop.now() + seconds(40)));
  // 30 s into the search the wait is 16 s (±25 %): at most 20 s and the check.
  EXPECT_LE(loop.now() - back_at, seconds(22));
  while (bob->tun.take_written()) {
  }
  exchange("after");
}

// A live peer whose answers are lost for a while (two probes' worth) is
// looked for by discovery, answers it, and then answers one of the restart
// check's probes: the session is kept, nothing is reset.
TEST_P(TunnelTest, LostProbeAnswersDoNotMakeALivePeerLookRestarted) {
  bool lose_answers = false;
  net.set_filter([&](const SocketAddress& from, const SocketAddress&, Bytes) {
    // Bob's session packets are lost; his discovery port still answers.
    return !(lose_answers && from.ip == ip("10.200.0.2") && from.port != 1025);
  });
  start();
  ASSERT_TRUE(connected());
  exchange("before");
  const std::uint64_t id = alice->tunnel->session_ids().at(0);
  loop.run_for(seconds(2));
  lose_answers = true;
  ASSERT_TRUE(alice->tun.inject(ipv4("10.77.0.1", "10.77.0.2", "unanswered for a while")));
  ASSERT_TRUE(loop.run_until([&] { return alice->tunnel->session(id)->silent(); },
                             loop.now() + seconds(2)));
  // Discovery is answered at once; the check's first probe (and its answer)
  // are lost, a later one is not.
  loop.run_for(milliseconds(150));
  lose_answers = false;
  loop.run_for(seconds(3));
  EXPECT_EQ(alice->tunnel->session_ids(), std::vector<std::uint64_t>{id});
  EXPECT_EQ(bob->tunnel->session_ids(), std::vector<std::uint64_t>{id});
  EXPECT_FALSE(alice->tunnel->session(id)->silent());
  EXPECT_EQ(alice->tunnel->stats().sessions_lost, 0u);
  EXPECT_EQ(bob->tunnel->stats().sessions_lost, 0u);
  while (bob->tun.take_written()) {
  }
  exchange("after");
}

// A peer that is down is asked less and less often: retries 2 s, 4 s, 8 s,
// 16 s, then every 30 s (each ±25 %) after each failed attempt (10 s of
// DISCOVERY and its repeats), and it is found once it is back.
TEST_P(TunnelTest, DiscoveryRetriesBackOffWhileThePeerIsDown) {
  std::vector<TimePoint> attempts;  // each attempt's first DISCOVERY (its repeats follow within 10 s)
  net.set_filter([&](const SocketAddress&, const SocketAddress& to, Bytes payload) {
    if (payload.size() > 1 && payload[1] == 0x0C && to.port == 1025 &&
        (attempts.empty() || loop.now() - attempts.back() > seconds(10))) {
      attempts.push_back(loop.now());
    }
    return true;
  });
  alice = std::make_unique<Host>(
      host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true), loop, 0, 1);
  alice->start(loop, net, GetParam());
  loop.run_for(seconds(200));
  // Nominally at 0, 12, 26, 44, 70, 110, 150, 190 s (each fails 10 s after it starts).
  ASSERT_GE(attempts.size(), 6u);
  EXPECT_LE(attempts.size(), 10u);  // every 12 s without back-off would be 17
  for (std::size_t i = 1; i < attempts.size(); ++i) {
    const Duration nominal = seconds(10) + std::min(seconds(2) << (i - 1), seconds(30));
    EXPECT_GE(attempts[i] - attempts[i - 1], seconds(10) + (nominal - seconds(10)) * 3 / 4 - milliseconds(200)) << i;
    EXPECT_LE(attempts[i] - attempts[i - 1], seconds(10) + (nominal - seconds(10)) * 5 / 4 + milliseconds(200)) << i;
  }
  // Bob comes up: found on the next attempt.
  bob = std::make_unique<Host>(
      host_config("10.200.0.2", "10.77.0.2/24", "10.200.0.1", "10.77.0.1", false), loop, 0, 2);
  bob->start(loop, net, GetParam());
  ASSERT_TRUE(loop.run_until(
      [&] { return alice->tunnel->session_count() == 1 && bob->tunnel->session_count() == 1; },
      loop.now() + seconds(49)));
  exchange("found");
}

// §11.4: an underlay outage of 120 s while alice keeps sending: her probes go
// unanswered, the peer becomes suspect and discovery looks for it, but the
// session stays; when the path is back both sides carry on with it.
TEST_P(TunnelTest, ASessionOutlivesAnOutageOf120Seconds) {
  start();
  ASSERT_TRUE(connected());
  exchange("before");
  const std::uint64_t id = alice->tunnel->session_ids().at(0);
  drop_all = true;
  for (int i = 0; i < 120; ++i) {
    alice->tun.inject(ipv4("10.77.0.1", "10.77.0.2", "into the outage"));
    loop.run_for(seconds(1));
  }
  const session::Session* s = alice->tunnel->session(id);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->suspect());
  ASSERT_EQ(bob->tunnel->session_ids(), std::vector<std::uint64_t>{id});
  drop_all = false;
  const TimePoint back = loop.now();
  ASSERT_TRUE(loop.run_until([&] { return !alice->tunnel->session(id)->suspect(); },
                             loop.now() + seconds(5)));
  EXPECT_LE(loop.now() - back, seconds(3));  // the next probe, every 2 s
  loop.run_for(seconds(15));  // discovery under way when the path came back ends quietly
  while (alice->tun.take_written()) {
  }
  while (bob->tun.take_written()) {
  }
  exchange("after");
  EXPECT_EQ(alice->tunnel->session_ids(), std::vector<std::uint64_t>{id});
  EXPECT_EQ(bob->tunnel->session_ids(), std::vector<std::uint64_t>{id});
  EXPECT_EQ(alice->tunnel->stats().sessions_lost, 0u);
  EXPECT_EQ(bob->tunnel->stats().sessions_lost, 0u);
}

// Packet mode through an outage: the TCP segment an application's kernel
// last (re)transmitted into the outage is sent again once the peer answers,
// so that TCP resumes at once instead of at its backed-off timer; bare ACKs
// and UDP are not kept.
TEST_P(TunnelTest, PacketModeTcpStrandedInAnOutageIsSentAgainWhenThePeerIsBack) {
  start();
  ASSERT_TRUE(connected());
  exchange("before");
  const std::uint64_t id = alice->tunnel->session_ids().at(0);
  const SocketAddress app{ip("10.77.0.1"), 40000};
  const SocketAddress server{ip("10.77.0.2"), 22};
  auto with_payload = [&](const std::string& payload) {
    auto p = buckwild::testing::tcp_segment(app, server, inner::tcp_flag::kAck | inner::tcp_flag::kPsh);
    p.insert(p.end(), payload.begin(), payload.end());
    p[2] = static_cast<std::uint8_t>(p.size() >> 8);
    p[3] = static_cast<std::uint8_t>(p.size());
    return p;
  };
  drop_all = true;
  std::vector<std::uint8_t> last;
  for (int i = 0; i < 60; ++i) {
    last = with_payload("typed " + std::to_string(i));
    ASSERT_TRUE(alice->tun.inject(last));
    loop.run_for(milliseconds(500));
  }
  ASSERT_TRUE(alice->tunnel->session(id)->silent());
  ASSERT_TRUE(alice->tun.inject(buckwild::testing::tcp_segment(app, server, inner::tcp_flag::kAck)));  // bare ACK
  ASSERT_TRUE(alice->tun.inject(ipv4("10.77.0.1", "10.77.0.2", "udp into the outage")));
  loop.run_for(milliseconds(100));
  while (bob->tun.take_written()) {
  }
  drop_all = false;
  const TimePoint back = loop.now();
  std::vector<std::vector<std::uint8_t>> arrived;
  ASSERT_TRUE(loop.run_until(
      [&] {
        while (auto p = bob->tun.take_written()) arrived.push_back(*p);
        return !arrived.empty();
      },
      loop.now() + seconds(3)));
  EXPECT_LE(loop.now() - back, seconds(1));
  loop.run_for(seconds(1));
  while (auto p = bob->tun.take_written()) arrived.push_back(*p);
  ASSERT_EQ(arrived.size(), 1u);  // the newest segment of the flow, once; no ACK, no UDP
  EXPECT_EQ(arrived[0], last);
  EXPECT_EQ(alice->tunnel->stats().stranded_replayed, 1u);
  EXPECT_EQ(alice->tunnel->session_ids(), std::vector<std::uint64_t>{id});
}

// Past the dead-peer timeout the session ends and discovery starts over.
TEST_P(TunnelTest, ASessionEndsAtTheDeadPeerTimeout) {
  start();
  ASSERT_TRUE(connected());
  const std::uint64_t id = alice->tunnel->session_ids().at(0);
  drop_all = true;
  loop.run_for(seconds(179));
  EXPECT_EQ(alice->tunnel->session_ids(), std::vector<std::uint64_t>{id});
  loop.run_for(seconds(2));
  EXPECT_EQ(alice->tunnel->session_count(), 0u);
  EXPECT_EQ(bob->tunnel->session_count(), 0u);
  drop_all = false;
  ASSERT_TRUE(connected());
  EXPECT_NE(alice->tunnel->session_ids().at(0), id);
  exchange("a new session");
}

TEST_P(TunnelTest, RestartedInitiatorReplacesItsOldSession) {
  start();
  ASSERT_TRUE(connected());
  const std::uint64_t old_id = bob->tunnel->session_ids().at(0);
  alice->tunnel.reset();
  const TimePoint restarted = loop.now();
  alice->start(loop, net, GetParam());
  ASSERT_TRUE(loop.run_until(
      [&] {
        return alice->tunnel->session_count() == 1 && bob->tunnel->session_count() == 1 &&
               bob->tunnel->session_ids().at(0) != old_id;
      },
      loop.now() + seconds(10)));
  EXPECT_LE(loop.now() - restarted, seconds(5));
  exchange("after");
}

// Both sides configured to initiate and started together: they must settle on
// one and the same session, not each keep the one the other dropped.
TEST_P(TunnelTest, BothSidesInitiatingSettleOnOneSession) {
  alice = std::make_unique<Host>(
      host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true), loop, 0, 1);
  Config bc = host_config("10.200.0.2", "10.77.0.2/24", "10.200.0.1", "10.77.0.1", true);
  bob = std::make_unique<Host>(std::move(bc), loop, 0, 2);
  bob->start(loop, net, GetParam());
  alice->start(loop, net, GetParam());
  ASSERT_TRUE(connected());
  loop.run_for(seconds(2));
  ASSERT_EQ(alice->tunnel->session_count(), 1u);
  ASSERT_EQ(bob->tunnel->session_count(), 1u);
  EXPECT_EQ(alice->tunnel->session_ids().at(0), bob->tunnel->session_ids().at(0));
  for (int i = 0; i < 10; ++i) exchange(std::to_string(i));
}

// A peer bound to one PSK is never reached through another of our PSKs.
TEST_P(TunnelTest, InitiatorOffersOnlyThePeersOwnPsk) {
  Config ac = host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true);
  PskConfig other;
  other.id = "other";
  crypto::DeterministicRandom r(99);
  other.key = crypto::SecretBytes::random(32, r);
  ac.psks.push_back(std::move(other));
  ac.peers[0].psk = "other";  // alice expects bob to use "other"; bob only holds "main"
  alice = std::make_unique<Host>(std::move(ac), loop, 0, 1);
  bob = std::make_unique<Host>(
      host_config("10.200.0.2", "10.77.0.2/24", "10.200.0.1", "10.77.0.1", false), loop, 0, 2);
  bob->start(loop, net, GetParam());
  alice->start(loop, net, GetParam());
  loop.run_for(seconds(5));
  EXPECT_EQ(alice->tunnel->session_count(), 0u);
  EXPECT_EQ(bob->tunnel->session_count(), 0u);
  EXPECT_GE(bob->tunnel->discovery_counters().no_shared_psk, 1u);
}

TEST_P(TunnelTest, OpensEveryValidPortOrSteersThem) {
  start();
  ASSERT_TRUE(connected());
  const std::uint64_t id = bob->tunnel->session_ids().at(0);
  std::set<std::uint16_t> seen;
  for (int i = 0; i < 8; ++i) {  // 8 × 150 ms: several window changes
    exchange(std::to_string(i));
    loop.run_for(milliseconds(100));
    const HopPortStats& s = bob->tunnel->hop_port_stats();
    if (!GetParam()) {
      EXPECT_GE(s.open, 3u);  // w−d … w+d with d ≥ 1
      EXPECT_EQ(s.valid_ports, 0u);
      continue;
    }
    // The port bob sends from (none if it is the discovery port), and those of
    // the return paths he may answer along (docs/protocol.md §11.6).
    EXPECT_LE(s.open, 1u + session::ReturnPaths::kSlots);
    const std::vector<ValidPort>& valid = bob->ebpf->valid_ports();
    ASSERT_GE(valid.size(), 3u);
    ASSERT_EQ(valid.size() % 2, 1u);
    EXPECT_EQ(valid.size(), s.valid_ports);
    for (std::size_t k = 0; k < valid.size(); ++k) {
      EXPECT_EQ(valid[k].source, ip("10.200.0.1"));
      EXPECT_EQ(valid[k].session_id, id);
      EXPECT_EQ(valid[k].connection_id, 0);
      EXPECT_EQ(valid[k].window, valid[0].window + k);  // consecutive windows, oldest first
      seen.insert(valid[k].port);
    }
  }
  if (!GetParam()) return;
  EXPECT_GT(seen.size(), 3u);  // the set moved with the windows
  EXPECT_GT(bob->ebpf->steered(), 0u);
  EXPECT_EQ(bob->tunnel->hop_port_stats().valid_port_update_failures, 0u);
  // The same ports are not valid for anyone else: a stranger's datagram to one
  // of them is never steered. It is a roaming candidate (docs/protocol.md
  // §11.6), left to a socket bound to that port if there is one (the kernel
  // filter drops it first when malformed, and rate-limits it per source);
  // to a port of no session it is dropped.
  auto stranger = net.bind(SocketAddress{ip("10.200.0.66"), 5555});
  ASSERT_TRUE(stranger.has_value());
  std::array<std::uint8_t, 100> junk{};
  const std::uint64_t steered = bob->ebpf->steered();
  const std::uint64_t roaming = bob->ebpf->roaming();
  OutgoingDatagram d{junk, SocketAddress{ip("10.200.0.2"), bob->ebpf->valid_ports().at(1).port},
                     std::nullopt};
  ASSERT_TRUE((*stranger)->send_batch({&d, 1}).has_value());
  loop.run_for(milliseconds(10));
  EXPECT_EQ(bob->ebpf->steered(), steered);
  EXPECT_EQ(bob->ebpf->roaming(), roaming + 1);
  std::uint16_t unused = 40000;
  const auto& valid = bob->ebpf->valid_ports();
  while (std::any_of(valid.begin(), valid.end(), [&](const ValidPort& p) { return p.port == unused; })) {
    ++unused;
  }
  const std::uint64_t before = bob->ebpf->dropped();
  OutgoingDatagram off{junk, SocketAddress{ip("10.200.0.2"), unused}, std::nullopt};
  ASSERT_TRUE((*stranger)->send_batch({&off, 1}).has_value());
  loop.run_for(milliseconds(1));
  EXPECT_EQ(bob->ebpf->dropped(), before + 1);
  // Another application's socket inside the hopping range (a DNS client's
  // ephemeral port) still gets its datagrams.
  EXPECT_TRUE(bob->ebpf->own_ports().contains(1025));
  auto resolver = net.bind(SocketAddress{ip("10.200.0.2"), 40000});
  ASSERT_TRUE(resolver.has_value());
  OutgoingDatagram reply{junk, SocketAddress{ip("10.200.0.2"), 40000}, std::nullopt};
  ASSERT_TRUE((*stranger)->send_batch({&reply, 1}).has_value());
  EXPECT_EQ((*resolver)->pending(), 1u);
  EXPECT_EQ(bob->ebpf->foreign(), 1u);
}

TEST_P(TunnelTest, SessionsAreRecordedInTheAuditLog) {
  daemon::testing::TempDir dir;
  const std::string path = dir.path() + "/audit.jsonl";
  alice = std::make_unique<Host>(
      host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true), loop, 0, 1);
  bob = std::make_unique<Host>(
      host_config("10.200.0.2", "10.77.0.2/24", "10.200.0.1", "10.77.0.1", false), loop, 0, 2);
  auto opened = AuditLog::open(path);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  bob->audit = std::move(*opened);
  bob->start(loop, net, GetParam());
  alice->start(loop, net, GetParam());
  ASSERT_TRUE(connected());
  const std::uint64_t first = bob->tunnel->session_ids().at(0);
  // Alice restarts: bob's old session with her ends, a new one begins.
  alice->tunnel.reset();
  alice->start(loop, net, GetParam());
  ASSERT_TRUE(loop.run_until(
      [&] { return bob->tunnel->session_count() == 1 && bob->tunnel->session_ids().at(0) != first; },
      loop.now() + seconds(10)));

  std::ifstream in(path);
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(in, line);) records.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0]["event"], "session_established");
  EXPECT_EQ(records[0]["peer"], "alice");
  EXPECT_EQ(records[0]["source_address"], "10.200.0.1");
  EXPECT_EQ(records[0]["session_id"], fmt::format("{:016x}", first));
  EXPECT_EQ(records[0]["details"]["psk"], "main");
  EXPECT_EQ(records[0]["details"]["role"], "responder");
  EXPECT_EQ(records[1]["event"], "session_ended");
  EXPECT_EQ(records[1]["session_id"], fmt::format("{:016x}", first));
  EXPECT_EQ(records[1]["details"]["reason"], "replaced by a new session");
  EXPECT_EQ(records[2]["event"], "session_established");
  for (const auto& r : records) EXPECT_TRUE(r.contains("time") && r.contains("severity"));
  // No key material: neither the PSK's bytes in base64 nor in hex.
  std::ifstream raw(path);
  const std::string text((std::istreambuf_iterator<char>(raw)), std::istreambuf_iterator<char>());
  const crypto::SecretBytes key = test_psk();
  std::string hex;
  for (std::uint8_t b : key.view()) hex += fmt::format("{:02x}", b);
  EXPECT_EQ(text.find(hex.substr(0, 16)), std::string::npos);
  EXPECT_EQ(bob->trail->stats().write_errors, 0u);
}

// What a flood can cause is counted, not written per datagram: one record per
// (event, source, reason) and interval, at most 4 sources (this test's
// limit) and one line for the rest.
TEST_P(TunnelTest, FloodsReachTheAuditLogAsBoundedCountedRecords) {
  daemon::testing::TempDir dir;
  const std::string path = dir.path() + "/audit.jsonl";
  auto opened = AuditLog::open(path);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  std::vector<std::uint8_t> captured;  // one of alice's DATAGRAMs, to replay
  net.set_filter([&](const SocketAddress&, const SocketAddress& to, Bytes payload) {
    if (captured.empty() && to.ip == ip("10.200.0.2") && payload.size() > 1 && payload[1] == 0x18) {
      captured.assign(payload.begin(), payload.end());
    }
    return true;
  });
  start();
  ASSERT_TRUE(connected());
  bob->audit = std::move(*opened);
  exchange("to be replayed");
  ASSERT_FALSE(captured.empty());
  auto replayer = net.bind(SocketAddress{ip("10.200.0.99"), 4444});
  ASSERT_TRUE(replayer.has_value());
  OutgoingDatagram again{captured, SocketAddress{ip("10.200.0.2"), 1025}, std::nullopt};
  ASSERT_TRUE((*replayer)->send_batch({&again, 1}).has_value());
  loop.run_for(milliseconds(10));
  std::array<std::uint8_t, 1176> junk{};
  junk[0] = 0x01;
  junk[1] = 0x0C;  // DISCOVERY, with nothing valid in it
  for (std::uint32_t source = 0; source < 10; ++source) {
    auto stranger = net.bind(SocketAddress{
        IpAddress::v4({10, 200, 0, static_cast<std::uint8_t>(64 + source)}), 5555});
    ASSERT_TRUE(stranger.has_value());
    for (int i = 0; i < 100; ++i) {
      OutgoingDatagram d{junk, SocketAddress{ip("10.200.0.2"), 1025}, std::nullopt};
      ASSERT_TRUE((*stranger)->send_batch({&d, 1}).has_value());
    }
    loop.run_for(milliseconds(10));
  }
  loop.run_for(seconds(2));

  std::ifstream in(path);
  std::uint64_t refused = 0;
  std::size_t lines = 0;
  bool replay = false;
  for (std::string line; std::getline(in, line);) {
    ++lines;
    const nlohmann::json r = nlohmann::json::parse(line);
    if (r["event"] == "packet_rejected" && r["details"]["reason"] == "replay" &&
        r["source_address"] == "10.200.0.99") {
      replay = true;
    }
    if (r["event"] != "discovery_refused") continue;
    EXPECT_EQ(r["severity"], "warning");
    EXPECT_TRUE(r.contains("time"));
    refused += r["details"]["count"].get<std::uint64_t>();
  }
  // Every refusal counted (the per-source rate limit refused most of them),
  // in no more than 4 + 1 lines per reason and interval.
  EXPECT_EQ(refused, 1000u);
  EXPECT_TRUE(replay) << "the replayed datagram is not in the audit log";
  EXPECT_LE(lines, 2u * (4 + 1) * 2 + 1);
  EXPECT_EQ(bob->trail->stats().counted, 1001u);  // and the replay
  EXPECT_GT(bob->trail->stats().overflowed, 0u);
}

// A TUN device that fails (deleted under the daemon) is readable for ever; the
// tunnel must stop reading it and say so once, not spin the loop.
TEST_P(TunnelTest, AFailedTunDeviceIsReportedOnceNotSpunOn) {
  start();
  ASSERT_TRUE(connected());
  alice->tun.fail_reads_with(EBADFD);
  const std::size_t reads = alice->tun.reads();
  loop.run_for(milliseconds(100));  // hangs if the loop spins on the descriptor
  EXPECT_EQ(alice->fatal_errors, 1);
  EXPECT_EQ(alice->tunnel->stats().tun_read_errors, 1u);
  EXPECT_EQ(alice->tun.reads(), reads + 1);
  EXPECT_EQ(bob->fatal_errors, 0);
}

TEST_P(TunnelTest, PacketsTheTunDeviceRefusesAreCounted) {
  start();
  ASSERT_TRUE(connected());
  bob->tun.fail_writes_with(EINVAL);
  ASSERT_TRUE(alice->tun.inject(ipv4("10.77.0.1", "10.77.0.2", "refused")));
  loop.run_for(milliseconds(50));
  EXPECT_EQ(bob->tunnel->stats().tun_write_errors, 1u);
  EXPECT_EQ(bob->tunnel->stats().tun_packets_out, 0u);
  bob->tun.fail_writes_with(0);
  exchange("after");
}

TEST_P(TunnelTest, TruncatedDatagramsAreCounted) {
  start();
  ASSERT_TRUE(connected());
  auto stranger = net.bind(SocketAddress{ip("10.200.0.66"), 5555});
  ASSERT_TRUE(stranger.has_value());
  // A 9000-byte datagram (from a peer whose MTU is larger than ours) is read
  // whole (docs/protocol.md §2): here, junk with no session, but not truncated.
  std::vector<std::uint8_t> jumbo(9000, 0);
  jumbo[0] = 0x01;
  OutgoingDatagram j{jumbo, SocketAddress{ip("10.200.0.2"), 1025}, std::nullopt};
  ASSERT_TRUE((*stranger)->send_batch({&j, 1}).has_value());
  loop.run_for(milliseconds(10));
  EXPECT_EQ(bob->tunnel->stats().truncated, 0u);
  // Larger than any datagram of ours: truncated, counted and dropped.
  std::vector<std::uint8_t> huge(9200, 0);
  huge[0] = 0x01;
  OutgoingDatagram d{huge, SocketAddress{ip("10.200.0.2"), 1025}, std::nullopt};
  ASSERT_TRUE((*stranger)->send_batch({&d, 1}).has_value());
  loop.run_for(milliseconds(10));
  EXPECT_EQ(bob->tunnel->stats().truncated, 1u);
}

TEST(TunnelConfigTest, BothTcpModesStart) {
  ManualEventLoop loop;
  FakeDatagramNetwork net;
  FakeTunDevice tun("bw0");
  FakeClock clock(loop, kUnixStart);
  FakeTcpEndpoints tcp;
  crypto::DeterministicRandom rng(1);
  SocketFactory factory =
      [&net](const SocketAddress& at) -> SysResult<std::unique_ptr<DatagramSocket>> {
    auto s = net.bind(at);
    if (!s) return std::unexpected(s.error());
    return std::unique_ptr<DatagramSocket>(std::move(*s));
  };
  for (TcpMode mode : {TcpMode::kStream, TcpMode::kPacket}) {
    Config c = host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true);
    c.protocol.tcp_mode = mode;
    auto t = Tunnel::create(c, 1412, TunnelDeps{loop, clock, tun, factory, tcp, rng, nullptr, {}, {}, {}});
    ASSERT_TRUE(t.has_value()) << t.error().message;
    EXPECT_EQ((*t)->stream_flows(), 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(ReceivePaths, TunnelTest, ::testing::Bool(), receive_path_name);

}  // namespace
}  // namespace buckwild::daemon::tunnel_testing

// The tunnel behind NAT (docs/protocol.md §11.6): a home router in front of
// alice, replayed copies from a third host, a public address that changes.
#include "unit/daemon/tunnel/tunnel_fixture.h"

namespace buckwild::daemon::tunnel_testing {
namespace {

// ---- behind NAT (docs/protocol.md §11.6) ----

// A home router in front of alice: endpoint-dependent mapping with random
// public ports (Linux masquerade fully-random), one mapping per (alice's
// port, destination) pair, and nothing in from outside that no mapping names.
struct FakeNat {
  IpAddress inside = ip("10.200.0.1");
  IpAddress outside = ip("10.200.0.9");
  struct Mapping {
    std::uint16_t inside_port;
    SocketAddress remote;
  };
  std::map<std::uint16_t, Mapping> by_public;
  std::map<std::pair<std::uint16_t, SocketAddress>, std::uint16_t> by_inside;
  crypto::DeterministicRandom rng{5};
  std::uint64_t refused = 0;  // inbound datagrams no mapping let in
  std::set<std::pair<std::uint16_t, std::uint16_t>> inbound_pairs;  // (source, destination) ports

  bool translate(SocketAddress& from, SocketAddress& to) {
    if (from.ip == inside) {
      auto key = std::make_pair(from.port, to);
      auto it = by_inside.find(key);
      std::uint16_t pub = 0;
      if (it != by_inside.end()) {
        pub = it->second;
      } else {
        do {
          std::array<std::uint8_t, 2> r;
          rng.fill(r);
          pub = static_cast<std::uint16_t>(1024 + ((r[0] << 8 | r[1]) % 64000));
        } while (by_public.contains(pub));
        by_public[pub] = Mapping{from.port, to};
        by_inside[key] = pub;
      }
      from = SocketAddress{outside, pub};
      return true;
    }
    if (to.ip == outside) {
      auto it = by_public.find(to.port);
      if (it == by_public.end() || it->second.remote != from) {
        ++refused;
        return false;
      }
      inbound_pairs.insert({from.port, to.port});
      to = SocketAddress{inside, it->second.inside_port};
    }
    return true;
  }
};

class NatTunnelTest : public TunnelTest {
 protected:
  // With `bob_audit_path`, bob's audit log is written there.
  void start_behind_nat(const std::string& bob_audit_path = {}) {
    net.set_translator([this](SocketAddress& from, SocketAddress& to) { return nat.translate(from, to); });
    Config ac = host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true);
    Config bc = host_config("10.200.0.2", "10.77.0.2/24", "10.200.0.1", "10.77.0.1", false);
    // Bob cannot know alice's address: her peer entry names only the PSK.
    bc.peers[0].endpoint.reset();
    bc.peers[0].psk = "main";
    alice = std::make_unique<Host>(std::move(ac), loop, 0, 1);
    bob = std::make_unique<Host>(std::move(bc), loop, 0, 2);
    if (!bob_audit_path.empty()) {
      auto opened = AuditLog::open(bob_audit_path);
      ASSERT_TRUE(opened.has_value()) << opened.error().message;
      bob->audit = std::move(*opened);
    }
    bob->start(loop, net, GetParam());
    alice->start(loop, net, GetParam());
  }
  FakeNat nat;
};

TEST_P(NatTunnelTest, InitiatorBehindNatGetsAStableHoppingSession) {
  start_behind_nat();
  ASSERT_TRUE(connected());
  const std::uint64_t id = alice->tunnel->session_ids().at(0);
  loop.run_for(seconds(1));  // the first SEQUENCE_NEG found no mapping; CONFIRM again fixes that
  const std::uint64_t refused = nat.refused;
  for (int i = 0; i < 40; ++i) exchange(std::to_string(i));  // 8 windows
  EXPECT_EQ(nat.refused, refused);  // bob only ever answered along open mappings
  // Both directions hop on the public side: bob's source and destination ports.
  std::set<std::uint16_t> sources, destinations;
  for (const auto& [from, to] : nat.inbound_pairs) {
    sources.insert(from);
    destinations.insert(to);
  }
  EXPECT_GE(sources.size(), 8u);
  EXPECT_GE(destinations.size(), 8u);
  EXPECT_GE(datagram_ports.size(), 8u);  // alice → bob hops as before
  // Idle for 20 s: alice's path keepalives keep bob able to reach her at once.
  loop.run_for(seconds(20));
  auto back = ipv4("10.77.0.2", "10.77.0.1", "after a quiet spell");
  ASSERT_TRUE(bob->tun.inject(back));
  loop.run_for(milliseconds(50));
  auto got = alice->tun.take_written();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, back);
  // The same session all along, and no refusals while idle either.
  EXPECT_EQ(alice->tunnel->session_ids().at(0), id);
  EXPECT_EQ(nat.refused, refused);
  const auto* s = alice->tunnel->session(id);
  ASSERT_NE(s, nullptr);
  EXPECT_GT(s->stats().path_keepalives_sent, 40u);   // ~4 a second while idle
  EXPECT_LT(s->stats().path_keepalives_sent, 100u);  // and none where traffic paid for it
}

TEST_P(NatTunnelTest, ACopyFromAThirdHostRedirectsNothing) {
  start_behind_nat();
  ASSERT_TRUE(connected());
  loop.run_for(seconds(1));
  // Take alice's next datagram off the wire before it reaches bob.
  std::vector<std::uint8_t> captured;
  SocketAddress captured_to;
  net.set_filter([&](const SocketAddress& from, const SocketAddress& to, Bytes payload) {
    if (from.ip == ip("10.200.0.1") && payload.size() > 1 && payload[1] == 0x18 && captured.empty()) {
      captured.assign(payload.begin(), payload.end());
      captured_to = to;
      return false;
    }
    return true;
  });
  ASSERT_TRUE(alice->tun.inject(ipv4("10.77.0.1", "10.77.0.2", "taken")));
  loop.run_for(milliseconds(5));
  ASSERT_FALSE(captured.empty());
  // A third host sends the authentic, never-seen copy from its own address.
  // Both paths deliver it (the eBPF path as a roaming candidate: the port is
  // valid for alice); bob takes what it carries and challenges the third
  // host's address, which cannot answer: nothing moves.
  auto mallory = net.bind(SocketAddress{ip("10.200.0.66"), 5555});
  ASSERT_TRUE(mallory.has_value());
  OutgoingDatagram d{captured, captured_to, std::nullopt};
  ASSERT_TRUE((*mallory)->send_batch({&d, 1}).has_value());
  loop.run_for(milliseconds(5));
  EXPECT_TRUE(bob->tun.take_written().has_value());
  for (int i = 0; i < 4; ++i) exchange("after " + std::to_string(i));
  // And its replay is refused, challenging nobody.
  ASSERT_TRUE((*mallory)->send_batch({&d, 1}).has_value());
  loop.run_for(seconds(4));
  EXPECT_FALSE(bob->tun.take_written().has_value());
  // All the third host got: one PATH_CHALLENGE, no larger than the copy.
  std::array<std::uint8_t, 2048> buf;
  std::array<ReceivedDatagram, 4> slots{ReceivedDatagram{buf}, ReceivedDatagram{buf},
                                        ReceivedDatagram{buf}, ReceivedDatagram{buf}};
  ASSERT_EQ((*mallory)->receive_batch(std::span(slots.data(), 4)).value(), 1u);
  EXPECT_EQ(buf[1], 0x19);
  EXPECT_LE(slots[0].length, captured.size());
  const nlohmann::json session = bob->tunnel->status()["peers"][0]["session"];
  EXPECT_EQ(session["endpoint"].get<std::string>().rfind("10.200.0.9:", 0), 0u);
  EXPECT_EQ(session["path_validation"]["started"], 1);
  EXPECT_EQ(session["path_validation"]["succeeded"], 0);
  EXPECT_EQ(session["path_validation"]["failed"], 1);  // unanswered for 3 s
  EXPECT_EQ(bob->tunnel->stats().roams, 0u);
  exchange("still alice");
}

// The router's public address changes (a second address, NAT rebinding, a
// new network): alice's datagrams come from an address bob does not know. He
// challenges it, she answers from there, and only then does his traffic
// follow her, within about a second, in the same session.
TEST_P(NatTunnelTest, APublicAddressChangeIsFollowedAfterPathValidation) {
  daemon::testing::TempDir dir;
  const std::string path = dir.path() + "/audit.jsonl";
  start_behind_nat(path);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(connected());
  loop.run_for(seconds(1));
  const std::uint64_t id = bob->tunnel->session_ids().at(0);
  exchange("before");
  // Record what bob sends where from now on.
  std::uint64_t challenges = 0;
  std::uint64_t to_new = 0;
  net.set_filter([&](const SocketAddress& from, const SocketAddress& to, Bytes payload) {
    if (from.ip == ip("10.200.0.2") && payload.size() > 1) {
      if (payload[1] == 0x19) ++challenges;
      if (to.ip == ip("10.200.0.10")) ++to_new;
    }
    return true;
  });
  // The new address; the old mappings die with the old one.
  nat.outside = ip("10.200.0.10");
  nat.by_public.clear();
  nat.by_inside.clear();
  const TimePoint moved = loop.now();
  ASSERT_TRUE(loop.run_until(
      [&] { return bob->tunnel->stats().roams == 1; }, loop.now() + seconds(2)));
  EXPECT_LE(loop.now() - moved, seconds(1));
  EXPECT_GE(challenges, 1u);
  EXPECT_LE(challenges, 8u);
  for (int i = 0; i < 8; ++i) exchange("after " + std::to_string(i));
  EXPECT_GT(to_new, 0u);
  EXPECT_EQ(bob->tunnel->session_ids().at(0), id);  // the same session
  EXPECT_EQ(alice->tunnel->session_count(), 1u);
  const nlohmann::json session = bob->tunnel->status()["peers"][0]["session"];
  EXPECT_EQ(session["endpoint"].get<std::string>().rfind("10.200.0.10:", 0), 0u);
  EXPECT_EQ(session["path_validation"]["succeeded"], 1);
  EXPECT_EQ(session["return_path"]["to"].get<std::string>().rfind("10.200.0.10:", 0), 0u);
  if (GetParam()) {
    // The kernel filter expects her at the new address now, and only there.
    for (const ValidPort& p : bob->ebpf->valid_ports()) {
      EXPECT_EQ(p.source.unmapped(), ip("10.200.0.10"));
    }
    EXPECT_GT(bob->ebpf->roaming(), 0u);
  }
  loop.run_for(seconds(2));  // the audit trail is written
  std::ifstream in(path);
  bool recorded = false;
  for (std::string line; std::getline(in, line);) {
    auto r = nlohmann::json::parse(line);
    if (r["event"] != "session_roamed") continue;
    recorded = true;
    EXPECT_EQ(r["details"]["from_address"], "10.200.0.9");
    EXPECT_EQ(r["details"]["to_address"], "10.200.0.10");
    EXPECT_EQ(r["source_address"], "10.200.0.10");
  }
  EXPECT_TRUE(recorded);
}

// Bob lists alice with the address she had; she now sends from behind a
// NAT. The PSK she proves names her: the session is hers, not refused as a
// stranger's.
TEST_P(NatTunnelTest, APeerIsKnownByItsPskFromAnotherAddress) {
  net.set_translator([this](SocketAddress& from, SocketAddress& to) { return nat.translate(from, to); });
  Config ac = host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true);
  Config bc = host_config("10.200.0.2", "10.77.0.2/24", "10.200.0.1", "10.77.0.1", false);
  alice = std::make_unique<Host>(std::move(ac), loop, 0, 1);
  bob = std::make_unique<Host>(std::move(bc), loop, 0, 2);
  bob->start(loop, net, GetParam());
  alice->start(loop, net, GetParam());
  ASSERT_TRUE(connected());
  const nlohmann::json st = bob->tunnel->status();
  ASSERT_FALSE(st["peers"][0]["session"].is_null());
  EXPECT_EQ(st["peers"][0]["session"]["endpoint"].get<std::string>().rfind("10.200.0.9:", 0), 0u);
  loop.run_for(seconds(1));
  exchange("from behind the NAT");
}

// protocol.path_keepalive = false: no keepalives, and behind NAT bob's
// packets in windows where alice sent nothing find no mapping.
TEST_P(NatTunnelTest, WithoutPathKeepalivesAnIdleInitiatorBehindNatIsUnreachable) {
  net.set_translator([this](SocketAddress& from, SocketAddress& to) { return nat.translate(from, to); });
  Config ac = host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true);
  ac.protocol.path_keepalive = false;
  Config bc = host_config("10.200.0.2", "10.77.0.2/24", "10.200.0.1", "10.77.0.1", false);
  bc.peers[0].endpoint.reset();
  bc.peers[0].psk = "main";
  alice = std::make_unique<Host>(std::move(ac), loop, 0, 1);
  bob = std::make_unique<Host>(std::move(bc), loop, 0, 2);
  bob->start(loop, net, GetParam());
  alice->start(loop, net, GetParam());
  ASSERT_TRUE(connected());
  loop.run_for(seconds(3));
  const std::uint64_t refused = nat.refused;
  ASSERT_TRUE(bob->tun.inject(ipv4("10.77.0.2", "10.77.0.1", "nobody opened the way")));
  loop.run_for(milliseconds(50));
  EXPECT_FALSE(alice->tun.take_written().has_value());
  EXPECT_GT(nat.refused, refused);
  EXPECT_EQ(alice->tunnel->session(alice->tunnel->session_ids().at(0))->stats().path_keepalives_sent,
            0u);
}

INSTANTIATE_TEST_SUITE_P(ReceivePaths, NatTunnelTest, ::testing::Bool(), receive_path_name);

}  // namespace
}  // namespace buckwild::daemon::tunnel_testing

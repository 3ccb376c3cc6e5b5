// Reload, administrative state, events and the status document of a running
// tunnel.
#include "unit/daemon/tunnel/tunnel_fixture.h"

namespace buckwild::daemon::tunnel_testing {
namespace {

class TunnelReloadTest : public TunnelTest {};

// ---- reload and status ----

TEST_P(TunnelReloadTest, ReloadAddsAPeerAndChangesALimitWithoutTouchingTheRunningSession) {
  start();
  ASSERT_TRUE(connected());
  exchange("before");
  const std::uint64_t id = alice->tunnel->session_ids().front();
  // Carol and alice share a PSK of their own: a peer is known by its PSK.
  Config cc = host_config("10.200.0.3", "10.77.0.3/24", "10.200.0.1", "10.77.0.1", false);
  crypto::DeterministicRandom carol_key(33);
  cc.psks[0].id = "carol";
  cc.psks[0].key = crypto::SecretBytes::random(32, carol_key);
  cc.peers[0].psk = "carol";
  auto carol = std::make_unique<Host>(std::move(cc), loop, 0, 3);
  carol->start(loop, net, GetParam());

  auto next = std::make_unique<Config>(
      host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true));
  next->security.max_connections_per_source = 7;
  next->security.stream_memory_mb = 64;
  PskConfig carols;
  carols.id = "carol";
  carols.key = crypto::SecretBytes::copy_of(carol->config.psks[0].key.view());
  next->psks.push_back(std::move(carols));
  PeerConfig c;
  c.name = "carol";
  c.endpoint = SocketAddress{ip("10.200.0.3"), 1025};
  c.virtual_address = ip("10.77.0.3");
  c.psk = "carol";
  next->peers.push_back(std::move(c));
  auto r = alice->tunnel->reconfigure(keep(std::move(next)));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->peers_added, std::vector<std::string>{"carol"});
  EXPECT_TRUE(r->peers_changed.empty());
  EXPECT_EQ(r->settings_changed, (std::vector<std::string>{"security.max_connections_per_source",
                                                            "security.stream_memory_mb"}));
  EXPECT_EQ(r->sessions_ended, 0u);
  EXPECT_EQ(alice->tunnel->status()["stream"]["memory_budget_bytes"], 64u << 20);
  if (GetParam()) {
    ASSERT_TRUE(alice->ebpf->limits().has_value());
    EXPECT_EQ(alice->ebpf->limits()->max_connections_per_source, 7u);
  }
  ASSERT_TRUE(loop.run_until([&] { return alice->tunnel->session_count() == 2; },
                             loop.now() + seconds(20)));
  // bob's session is the one it was, and still carries traffic.
  const std::vector<std::uint64_t> ids = alice->tunnel->session_ids();
  EXPECT_NE(std::find(ids.begin(), ids.end(), id), ids.end());
  EXPECT_EQ(alice->tunnel->stats().sessions_lost, 0u);
  exchange("after");
  // And carol is reached by name and address.
  auto to_carol = ipv4("10.77.0.1", "10.77.0.3", "to carol");
  ASSERT_TRUE(alice->tun.inject(to_carol));
  loop.run_for(milliseconds(50));
  auto got = carol->tun.take_written();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, to_carol);
  const nlohmann::json st = alice->tunnel->status();
  ASSERT_EQ(st["peers"].size(), 2u);
  EXPECT_EQ(st["peers"][1]["name"], "carol");
  EXPECT_FALSE(st["peers"][1]["session"].is_null());
}

TEST_P(TunnelReloadTest, ReloadEndsOnlyTheSessionsOfRemovedOrChangedPeersAndPsks) {
  start();
  ASSERT_TRUE(connected());
  const std::uint64_t id = alice->tunnel->session_ids().front();
  // A changed peer (a new route) loses its session and is discovered again.
  auto changed = std::make_unique<Config>(
      host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true));
  changed->peers[0].routes.push_back(cidr("192.168.9.0/24"));
  auto r = alice->tunnel->reconfigure(keep(std::move(changed)));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->peers_changed, std::vector<std::string>{"bob"});
  EXPECT_EQ(r->sessions_ended, 1u);
  // bob replaces its old session when the new one is confirmed.
  ASSERT_TRUE(loop.run_until(
      [&] {
        return alice->tunnel->session_count() == 1 &&
               alice->tunnel->session_ids() == bob->tunnel->session_ids() &&
               alice->tunnel->session_ids().front() != id;
      },
      loop.now() + seconds(20)));
  exchange("rediscovered");

  // A changed PSK ends the sessions that proved it (bob still has the old
  // key, so no new one comes up).
  auto rekeyed = std::make_unique<Config>(
      host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true));
  rekeyed->peers[0].routes.push_back(cidr("192.168.9.0/24"));
  crypto::DeterministicRandom other(78);
  rekeyed->psks[0].key = crypto::SecretBytes::random(32, other);
  r = alice->tunnel->reconfigure(keep(std::move(rekeyed)));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->psks_changed, std::vector<std::string>{"main"});
  EXPECT_EQ(r->sessions_ended, 1u);
  EXPECT_EQ(alice->tunnel->session_count(), 0u);

  // A removed peer: nothing of it is left.
  auto removed = std::make_unique<Config>(
      host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true));
  removed->peers.clear();
  r = alice->tunnel->reconfigure(keep(std::move(removed)));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->peers_removed, std::vector<std::string>{"bob"});
  EXPECT_EQ(r->psks_changed, std::vector<std::string>{"main"});  // back to bob's key
  loop.run_for(seconds(5));
  EXPECT_EQ(alice->tunnel->session_count(), 0u);
  EXPECT_TRUE(alice->tunnel->status()["peers"].empty());
}

TEST_P(TunnelReloadTest, AnotherPsksPrefixesDoNotEndANamedPeersSession) {
  start();
  ASSERT_TRUE(connected());
  const std::uint64_t id = alice->tunnel->session_ids().front();
  auto guests = [](std::vector<Cidr> prefixes) {
    auto c = std::make_unique<Config>(
        host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true));
    PskConfig g;
    g.id = "guests";
    crypto::DeterministicRandom r(55);
    g.key = crypto::SecretBytes::random(32, r);
    g.allowed_prefixes = std::move(prefixes);
    c->psks.push_back(std::move(g));
    return c;
  };
  auto r = alice->tunnel->reconfigure(keep(guests({cidr("10.77.0.128/26")})));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  r = alice->tunnel->reconfigure(keep(guests({cidr("10.77.0.128/25")})));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->psks_changed, std::vector<std::string>{"guests"});
  EXPECT_EQ(r->sessions_ended, 0u);
  EXPECT_EQ(alice->tunnel->session_ids(), std::vector<std::uint64_t>{id});
  exchange("same session");
  // bob's own PSK cannot admit peers without an entry: whoever proved it
  // would be bob. Refused, and nothing changes.
  auto widened = guests({});
  widened->psks[0].allowed_prefixes.push_back(cidr("10.77.0.128/25"));
  r = alice->tunnel->reconfigure(keep(std::move(widened)));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("allowed_prefixes"), std::string::npos);
  EXPECT_EQ(alice->tunnel->session_ids(), std::vector<std::uint64_t>{id});
}

TEST_P(TunnelReloadTest, AnAddressClaimedWithoutAnEntryIsTakenBackWhenAPeerIsConfiguredOnIt) {
  start_without_an_entry({cidr("10.77.0.0/28")});
  ASSERT_TRUE(connected());
  ASSERT_TRUE(alice->tun.inject(ipv4("10.77.0.1", "10.77.0.2", "claims 10.77.0.1")));
  loop.run_for(milliseconds(50));
  ASSERT_TRUE(bob->tun.take_written().has_value());
  // Bob's operator now configures carol on 10.77.0.1, the claimed address.
  auto next = std::make_unique<Config>(
      host_config("10.200.0.2", "10.77.0.2/24", "10.200.0.3", "10.77.0.1", false));
  next->peers[0].name = "carol";
  next->psks[0].allowed_prefixes.push_back(cidr("10.77.0.0/28"));
  PskConfig carols;  // carol proves her own PSK; "main" still admits others
  carols.id = "carol";
  crypto::DeterministicRandom carol_key(33);
  carols.key = crypto::SecretBytes::random(32, carol_key);
  next->psks.push_back(std::move(carols));
  next->peers[0].psk = "carol";
  auto r = bob->tunnel->reconfigure(keep(std::move(next)));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->sessions_ended, 1u);
  EXPECT_EQ(bob->tunnel->session_count(), 0u);
}

TEST_P(TunnelReloadTest, MaxConnectionsMayNotGrowOnTheEbpfPath) {
  start();
  ASSERT_TRUE(connected());
  auto next = std::make_unique<Config>(
      host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true));
  next->security.max_connections = alice->config.security.max_connections * 2;
  auto r = alice->tunnel->reconfigure(keep(std::move(next)));
  if (GetParam()) {
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().message.find("security.max_connections cannot grow"), std::string::npos);
  } else {
    EXPECT_TRUE(r.has_value());
  }
}

TEST_P(TunnelReloadTest, EndingEverySessionRecordsEachEnd) {
  daemon::testing::TempDir dir;
  auto opened = AuditLog::open(dir.path() + "/audit.jsonl");
  ASSERT_TRUE(opened.has_value());
  start();
  ASSERT_TRUE(connected());
  alice->audit = std::move(*opened);
  alice->tunnel->end_sessions("the daemon stopped");
  EXPECT_EQ(alice->tunnel->session_count(), 0u);
  std::ifstream in(dir.path() + "/audit.jsonl");
  std::string line;
  ASSERT_TRUE(static_cast<bool>(std::getline(in, line)));
  const nlohmann::json r = nlohmann::json::parse(line);
  EXPECT_EQ(r["event"], "session_ended");
  EXPECT_EQ(r["details"]["reason"], "the daemon stopped");
}

TEST_P(TunnelReloadTest, SessionsComingAndGoingAreEvents) {
  start();
  ASSERT_TRUE(connected());
  ASSERT_EQ(count_events(*alice, TunnelEvent::Kind::kSessionUp), 1u);
  const TunnelEvent up = alice->events.front();  // a copy: more events follow
  EXPECT_EQ(up.peer, "bob");
  EXPECT_EQ(up.session_id, alice->tunnel->session_ids().at(0));
  ASSERT_TRUE(up.endpoint.has_value());
  EXPECT_EQ(up.endpoint->ip, ip("10.200.0.2"));
  EXPECT_EQ(bob->events.at(0).peer, "alice");
  alice->tunnel->end_sessions("the daemon stopped");
  ASSERT_EQ(count_events(*alice, TunnelEvent::Kind::kSessionDown), 1u);
  EXPECT_EQ(alice->events.back().reason, "the daemon stopped");
  EXPECT_EQ(alice->events.back().session_id, up.session_id);
}

TEST_P(TunnelReloadTest, AdministrativelyDownEndsTheSessionAndKeepsThePeerAwayUntilUp) {
  start();
  ASSERT_TRUE(connected());
  EXPECT_FALSE(bob->tunnel->set_admin_up("nobody", false));
  EXPECT_FALSE(bob->tunnel->admin_up("nobody").has_value());
  ASSERT_TRUE(bob->tunnel->set_admin_up("alice", false));
  EXPECT_EQ(bob->tunnel->admin_up("alice"), false);
  EXPECT_EQ(bob->tunnel->session_count(), 0u);
  EXPECT_EQ(bob->events.back().kind, TunnelEvent::Kind::kSessionDown);
  EXPECT_EQ(bob->events.back().reason, "administratively down");
  // Alice finds the session dead and discovers again: bob refuses her.
  loop.run_for(seconds(60));
  EXPECT_EQ(bob->tunnel->session_count(), 0u);
  EXPECT_EQ(count_events(*bob, TunnelEvent::Kind::kSessionUp), 1u);
  EXPECT_EQ(bob->tunnel->status()["peers"][0]["admin_state"], "down");
  ASSERT_TRUE(bob->tunnel->set_admin_up("alice", true));
  EXPECT_EQ(bob->tunnel->status()["peers"][0]["admin_state"], "up");
  ASSERT_TRUE(connected());
  // Down on the initiating side: its session ends and it sends no discovery.
  ASSERT_TRUE(alice->tunnel->set_admin_up("bob", false));
  EXPECT_EQ(alice->tunnel->session_count(), 0u);
  const std::uint64_t sent = alice->tunnel->stats().datagrams_sent;
  loop.run_for(seconds(30));
  EXPECT_EQ(alice->tunnel->stats().datagrams_sent, sent);
  ASSERT_TRUE(alice->tunnel->set_admin_up("bob", true));
  ASSERT_TRUE(loop.run_until([&] { return alice->tunnel->session_count() == 1; },
                             loop.now() + seconds(20)));
}

TEST_P(TunnelReloadTest, APeerDownStaysDownThroughAReloadThatChangesItsKeys) {
  start();
  ASSERT_TRUE(connected());
  ASSERT_TRUE(alice->tunnel->set_admin_up("bob", false));
  // bob's entry is unchanged, its PSK's key is not.
  auto next = std::make_unique<Config>(
      host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true));
  crypto::DeterministicRandom rng(99);
  next->psks[0].key = crypto::SecretBytes::random(32, rng);
  auto r = alice->tunnel->reconfigure(keep(std::move(next)));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const std::uint64_t sent = alice->tunnel->stats().datagrams_sent;
  loop.run_for(seconds(30));
  EXPECT_EQ(alice->tunnel->stats().datagrams_sent, sent);
  EXPECT_EQ(alice->tunnel->session_count(), 0u);
  EXPECT_EQ(alice->tunnel->admin_up("bob"), false);
}

TEST_P(TunnelReloadTest, UnansweredDiscoveryIsReportedOnceAfterFiveAttempts) {
  drop_all = true;  // bob never hears alice
  start();
  loop.run_for(seconds(300));
  EXPECT_EQ(count_events(*alice, TunnelEvent::Kind::kRecoveryFailed), 1u);
  const nlohmann::json peer = alice->tunnel->status()["peers"][0];
  EXPECT_GE(peer["unanswered_discovery_attempts"].get<int>(), 5);
  // The path comes back: a session at the next attempt (at most 30 s + 25 %
  // away, then its exchange), and the count starts again.
  drop_all = false;
  ASSERT_TRUE(loop.run_until(
      [&] { return alice->tunnel->session_count() == 1 && bob->tunnel->session_count() == 1; },
      loop.now() + seconds(49)));
  EXPECT_EQ(alice->tunnel->status()["peers"][0]["unanswered_discovery_attempts"], 0);
}

TEST_P(TunnelReloadTest, ReloadRefusesAKeyThatCannotChangeAndChangesNothing) {
  start();
  ASSERT_TRUE(connected());
  const std::uint64_t id = alice->tunnel->session_ids().front();
  auto next = std::make_unique<Config>(
      host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true));
  next->network.discovery_port = 2000;
  next->peers.clear();
  auto r = alice->tunnel->reconfigure(keep(std::move(next)));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message,
            "network.discovery_port cannot change while running; restart buckwild to change it");
  EXPECT_EQ(alice->tunnel->session_ids(), std::vector<std::uint64_t>{id});
  exchange("unchanged");
}

TEST_P(TunnelReloadTest, StatusReportsEachPeerItsSessionPortsAndCounters) {
  start();
  ASSERT_TRUE(connected());
  exchange("one");
  nlohmann::json st = alice->tunnel->status();
  ASSERT_EQ(st["peers"].size(), 1u);
  const nlohmann::json& bob_block = st["peers"][0];
  EXPECT_EQ(bob_block["name"], "bob");
  EXPECT_EQ(bob_block["endpoint_configured"], "10.200.0.2:1025");
  EXPECT_EQ(bob_block["virtual_addresses"], nlohmann::json::array({"10.77.0.2"}));
  const nlohmann::json& s = bob_block["session"];
  ASSERT_TRUE(s.is_object());
  EXPECT_EQ(s["id"], fmt::format("{:08x}", alice->tunnel->session_ids().front() >> 32));
  EXPECT_EQ(s["role"], "initiator");
  EXPECT_EQ(s["psk"], "main");
  EXPECT_EQ(s["endpoint"], "10.200.0.2:1025");
  EXPECT_GE(s["tx_packets"].get<std::uint64_t>(), 1u);
  EXPECT_GT(s["rx_bytes"].get<std::uint64_t>(), 0u);
  EXPECT_FALSE(s["one_way_delay_ms"].is_null());
  EXPECT_TRUE(s["rtt_ms"].is_null());  // packet mode: no connections
  // Our listening ports of the session are among the interface's, with the discovery port.
  const auto all = st["listening_ports"].get<std::vector<std::uint16_t>>();
  EXPECT_NE(std::find(all.begin(), all.end(), 1025), all.end());
  for (std::uint16_t port : s["listen_ports"].get<std::vector<std::uint16_t>>()) {
    EXPECT_NE(std::find(all.begin(), all.end(), port), all.end()) << port;
  }
  EXPECT_EQ(st["ebpf"].is_null(), !GetParam());
  // A window later the ports have hopped and the counters moved.
  const std::uint64_t sent = st["counters"]["datagrams_sent"];
  const auto before = s["listen_ports"];
  loop.run_for(milliseconds(300));
  exchange("two");
  nlohmann::json later = alice->tunnel->status();
  EXPECT_NE(later["window"]["index"], st["window"]["index"]);
  EXPECT_NE(later["peers"][0]["session"]["listen_ports"], before);
  EXPECT_GT(later["counters"]["datagrams_sent"].get<std::uint64_t>(), sent);
}

INSTANTIATE_TEST_SUITE_P(ReceivePaths, TunnelReloadTest, ::testing::Bool(), receive_path_name);

}  // namespace
}  // namespace buckwild::daemon::tunnel_testing

// A peer is known by the PSK it proved (docs/protocol.md §11.5): who may take
// which peer's place, and peers without a [[peer]] entry.
#include "unit/daemon/tunnel/tunnel_fixture.h"

namespace buckwild::daemon::tunnel_testing {
namespace {

class TunnelPskTest : public TunnelTest {};

// ---- a peer is known by the PSK it proved (docs/protocol.md §11.5) ----

PskConfig guests_psk(std::vector<Cidr> prefixes) {
  PskConfig g;
  g.id = "guests";
  crypto::DeterministicRandom r(55);
  g.key = crypto::SecretBytes::random(32, r);
  g.allowed_prefixes = std::move(prefixes);
  return g;
}

// Mallory holds another of bob's PSKs and sends from alice's address (the
// same office NAT or CGNAT address): she is not alice, gets neither alice's
// address nor her traffic, and claims only what her own PSK allows.
TEST_P(TunnelPskTest, ASecondPskHolderBehindThePeersAddressCannotTakeThePeer) {
  Config bc = host_config("10.200.0.2", "10.77.0.2/24", "10.200.0.1", "10.77.0.1", false);
  bc.psks.push_back(guests_psk({cidr("10.77.0.64/26")}));
  bob = std::make_unique<Host>(std::move(bc), loop, 0, 2);
  Config mc = host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true);
  mc.psks[0] = guests_psk({});
  mc.peers[0].psk = "guests";
  alice = std::make_unique<Host>(std::move(mc), loop, 0, 1);  // mallory, on alice's address
  bob->start(loop, net, GetParam());
  alice->start(loop, net, GetParam());
  ASSERT_TRUE(connected());
  const nlohmann::json st = bob->tunnel->status();
  EXPECT_TRUE(st["peers"][0]["session"].is_null());  // alice has no session
  // She sends as alice (10.77.0.1): refused, it is not hers to claim.
  ASSERT_TRUE(alice->tun.inject(ipv4("10.77.0.1", "10.77.0.2", "as alice")));
  loop.run_for(milliseconds(50));
  EXPECT_FALSE(bob->tun.take_written().has_value());
  EXPECT_GE(bob->tunnel->stats().spoofed_source, 1u);
  // Traffic for alice does not go to her.
  ASSERT_TRUE(bob->tun.inject(ipv4("10.77.0.2", "10.77.0.1", "for alice")));
  loop.run_for(milliseconds(50));
  EXPECT_FALSE(alice->tun.take_written().has_value());
  EXPECT_GE(bob->tunnel->stats().no_route, 1u);
}

// Two initiators without an entry behind one address, with different PSKs:
// the second's session does not replace the first's (only a restart of the
// same holder, proving the same PSK from the same address, does).
TEST_P(TunnelPskTest, AnotherPsksHolderBehindTheSameAddressReplacesNoSession) {
  Config bc = host_config("10.200.0.2", "10.77.0.2/24", "10.200.0.1", "10.77.0.1", false);
  bc.peers.clear();
  bc.psks[0].allowed_prefixes.push_back(cidr("10.77.0.0/28"));
  bc.psks.push_back(guests_psk({cidr("10.77.0.64/26")}));
  bob = std::make_unique<Host>(std::move(bc), loop, 0, 2);
  alice = std::make_unique<Host>(
      host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true), loop, 0, 1);
  Config mc = host_config("10.200.0.1", "10.77.0.70/24", "10.200.0.2", "10.77.0.2", true);
  mc.network.discovery_port = 2025;
  mc.psks[0] = guests_psk({});
  mc.peers[0].psk = "guests";
  Host mallory(std::move(mc), loop, 0, 3);
  bob->start(loop, net, GetParam());
  alice->start(loop, net, GetParam());
  ASSERT_TRUE(connected());
  const std::uint64_t first = bob->tunnel->session_ids().at(0);
  mallory.start(loop, net, GetParam());
  ASSERT_TRUE(loop.run_until([&] { return mallory.tunnel->session_count() == 1; },
                             loop.now() + seconds(20)));
  loop.run_for(seconds(1));
  EXPECT_EQ(bob->tunnel->session_count(), 2u);
  const std::vector<std::uint64_t> ids = bob->tunnel->session_ids();
  EXPECT_NE(std::find(ids.begin(), ids.end(), first), ids.end());
}

// Several [[psk]] and a peer that names none of them: which would it prove?
// Refused rather than taking any.
TEST_P(TunnelPskTest, APeerThatNamesNoPskAmongSeveralIsRefused) {
  Config bc = host_config("10.200.0.2", "10.77.0.2/24", "10.200.0.1", "10.77.0.1", false);
  bc.psks.push_back(guests_psk({}));
  bc.peers[0].psk.clear();
  bob = std::make_unique<Host>(std::move(bc), loop, 0, 2);
  SocketFactory factory =
      [this](const SocketAddress& at) -> SysResult<std::unique_ptr<DatagramSocket>> {
    auto s = net.bind(at);
    if (!s) return std::unexpected(s.error());
    return std::unique_ptr<DatagramSocket>(std::move(*s));
  };
  auto t = Tunnel::create(bob->config, 1412,
                          TunnelDeps{loop, bob->clock, bob->tun, factory, bob->tcp, bob->rng,
                                     nullptr, [](const SysError&) {}, nullptr, nullptr});
  ASSERT_FALSE(t.has_value());
  EXPECT_NE(t.error().message.find("alice"), std::string::npos);
}

// An on-path attacker races bob's RESPONSE with a copy from its own address:
// alice does not take it (it would have sent her CONFIRM, and her traffic,
// there); the genuine one still establishes the session.
TEST_P(TunnelPskTest, AResponseFromAnotherAddressIsRefused) {
  std::vector<std::uint8_t> captured;
  net.set_filter([&](const SocketAddress& from, const SocketAddress&, Bytes payload) {
    if (from.ip == ip("10.200.0.2") && payload.size() > 1 && payload[1] == 0x0D &&
        captured.empty()) {
      captured.assign(payload.begin(), payload.end());
      return false;  // the genuine one is late
    }
    return true;
  });
  start();
  loop.run_for(milliseconds(20));
  ASSERT_FALSE(captured.empty());
  auto mallory = net.bind(SocketAddress{ip("10.200.0.66"), 1025});
  ASSERT_TRUE(mallory.has_value());
  OutgoingDatagram d{captured, SocketAddress{ip("10.200.0.1"), 1025}, std::nullopt};
  ASSERT_TRUE((*mallory)->send_batch({&d, 1}).has_value());
  loop.run_for(milliseconds(5));
  EXPECT_EQ(alice->tunnel->session_count(), 0u);
  EXPECT_EQ(alice->tunnel->stats().response_wrong_source, 1u);
  EXPECT_EQ(alice->tunnel->status()["drops"]["response_wrong_source"], 1u);
  std::array<std::uint8_t, 2048> buf;
  std::array<ReceivedDatagram, 4> slots{ReceivedDatagram{buf}};
  EXPECT_EQ((*mallory)->receive_batch(std::span(slots.data(), 1)).value(), 0u);  // no CONFIRM
  ASSERT_TRUE(connected());  // alice asks again; bob's answer comes from bob
  EXPECT_EQ(alice->tunnel->status()["peers"][0]["session"]["endpoint"], "10.200.0.2:1025");
  exchange("genuine");
}

TEST_P(TunnelPskTest, StrangersGetSilence) {
  start();
  ASSERT_TRUE(connected());
  auto stranger = net.bind(SocketAddress{ip("10.200.0.66"), 5555});
  ASSERT_TRUE(stranger.has_value());
  std::array<std::uint8_t, 1176> junk{};
  junk[0] = 0x01;
  junk[1] = 0x0C;
  for (int i = 0; i < 10; ++i) {
    OutgoingDatagram d{junk, SocketAddress{ip("10.200.0.2"), 1025}, std::nullopt};
    ASSERT_TRUE((*stranger)->send_batch({&d, 1}).has_value());
  }
  loop.run_for(milliseconds(100));
  std::array<std::uint8_t, 2048> buf;
  ReceivedDatagram r{buf};
  EXPECT_EQ((*stranger)->receive_batch({&r, 1}).value(), 0u);
  EXPECT_GE(bob->tunnel->discovery_counters().malformed, 10u);
}

// A responder with no [[peer]] entry for the initiator accepts it because they
// share a PSK that allows a prefix; the initiator may then use one address in it.
TEST_P(TunnelPskTest, PeerWithoutAnEntryGetsOneAddressInsideItsPskPrefixes) {
  start_without_an_entry({cidr("10.77.0.0/28")});
  ASSERT_TRUE(connected());
  // Until it has sent from an address, nothing routes to it.
  ASSERT_TRUE(alice->tun.inject(ipv4("10.77.0.1", "10.77.0.2", "first")));
  loop.run_for(milliseconds(50));
  ASSERT_TRUE(bob->tun.take_written().has_value());
  exchange("claims 10.77.0.1");
  // Having claimed 10.77.0.1, it cannot also use another address of the prefix.
  ASSERT_TRUE(alice->tun.inject(ipv4("10.77.0.5", "10.77.0.2", "second address")));
  loop.run_for(milliseconds(50));
  EXPECT_FALSE(bob->tun.take_written().has_value());
  EXPECT_EQ(bob->tunnel->stats().spoofed_source, 1u);
}

TEST_P(TunnelPskTest, PeerWithoutAnEntryIsRefusedWhenItsPskAllowsNoPrefix) {
  start_without_an_entry({});
  loop.run_for(seconds(3));
  EXPECT_EQ(bob->tunnel->session_count(), 0u);
}

// User space opens a socket for every valid port; the steered path opens only
// the one it sends from and describes the rest as valid (peer, port) pairs.

INSTANTIATE_TEST_SUITE_P(ReceivePaths, TunnelPskTest, ::testing::Bool(), receive_path_name);

}  // namespace
}  // namespace buckwild::daemon::tunnel_testing

// Two tunnels in one process: in-memory TUN devices and UDP network, virtual
// time. Discovery, hopping, IP packets both ways, clock skew, anti-spoofing
// and a restarted responder, all through the real Tunnel code, on both receive
// paths: a socket per hopping port (user space) and one steered socket (the
// eBPF path, with FakeEbpfPath standing in for sk_lookup and XDP).
#include "daemon/tunnel/tunnel.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <sys/socket.h>

#include <array>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <string>

#include "daemon/ebpf/testing/fake_ebpf_path.h"
#include "core/inner/tcp_segment.h"
#include "core/wire/codec.h"
#include "daemon/net/testing/fake_datagram_network.h"
#include "daemon/net/testing/fake_tcp_endpoints.h"
#include "daemon/net/testing/fake_tun_device.h"
#include "daemon/os/testing/fake_clock.h"
#include "daemon/os/testing/manual_event_loop.h"
#include "daemon/tunnel/aead_choice.h"
#include "support/daemon_test_support.h"
#include "support/inner_packets.h"
#include "unit/core/offload/offload_packets.h"

namespace buckwild::daemon {
namespace {

constexpr std::int64_t kUnixStart = 1'764'080'000'000;

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}
Cidr cidr(const char* text) {
  return *Cidr::parse(text);
}

crypto::SecretBytes test_psk() {
  crypto::DeterministicRandom rng(77);
  return crypto::SecretBytes::random(32, rng);
}

Config host_config(const char* underlay, const char* vip, const char* peer_underlay,
                   const char* peer_vip, bool initiate) {
  Config c;
  c.network.listen_address = ip(underlay);
  c.network.virtual_address = cidr(vip);
  c.protocol.tcp_mode = TcpMode::kPacket;
  PskConfig psk;
  psk.id = "main";
  psk.key = test_psk();
  c.psks.push_back(std::move(psk));
  PeerConfig peer;
  peer.name = initiate ? "bob" : "alice";
  peer.endpoint = SocketAddress{ip(peer_underlay), 1025};
  peer.virtual_address = ip(peer_vip);
  peer.psk = "main";  // as the loader writes it: the peer proves this PSK
  peer.initiate = initiate;
  c.peers.push_back(std::move(peer));
  return c;
}

// A minimal IPv4 packet from `src` to `dst` carrying `payload`.
std::vector<std::uint8_t> ipv4(const char* src, const char* dst, const std::string& payload) {
  std::vector<std::uint8_t> p(20 + payload.size());
  p[0] = 0x45;
  p[2] = static_cast<std::uint8_t>(p.size() >> 8);
  p[3] = static_cast<std::uint8_t>(p.size());
  p[8] = 64;
  p[9] = 17;
  const IpAddress s = ip(src);
  const IpAddress d = ip(dst);
  std::copy(s.bytes().begin(), s.bytes().end(), p.begin() + 12);
  std::copy(d.bytes().begin(), d.bytes().end(), p.begin() + 16);
  std::copy(payload.begin(), payload.end(), p.begin() + 20);
  return p;
}

struct Host {
  Config config;
  FakeClock clock;
  FakeTunDevice tun{"bw0"};
  FakeTcpEndpoints tcp;
  crypto::DeterministicRandom rng;
  std::unique_ptr<FakeEbpfPath> ebpf;  // set on the eBPF path
  std::unique_ptr<AuditLog> audit;  // set before start() to record sessions
  std::unique_ptr<SecurityAudit> trail;  // writes to `audit`
  std::unique_ptr<Tunnel> tunnel;
  int fatal_errors = 0;  // on_fatal calls
  std::vector<TunnelEvent> events;  // on_event calls
  std::size_t pool_buffers = 256;  // TunnelDeps::pool_buffers

  Host(Config c, const ManualEventLoop& loop, std::int64_t skew, std::uint64_t seed)
      : config(std::move(c)), clock(loop, kUnixStart + skew), rng(seed) {}

  void start(ManualEventLoop& loop, FakeDatagramNetwork& net, bool steered) {
    tunnel.reset();
    ebpf.reset();
    // Counted events are written every second, at most 4 sources each.
    trail = std::make_unique<SecurityAudit>(loop, [this] { return audit.get(); },
                                            SecurityAuditLimits{seconds(1), 4});
    if (steered) {
      ebpf = std::make_unique<FakeEbpfPath>(net, config.network.listen_address,
                                            config.network.discovery_port);
    }
    SocketFactory factory =
        [&net](const SocketAddress& at) -> SysResult<std::unique_ptr<DatagramSocket>> {
      auto s = net.bind(at);
      if (!s) return std::unexpected(s.error());
      return std::unique_ptr<DatagramSocket>(std::move(*s));
    };
    auto t = Tunnel::create(config, 1412,
                            TunnelDeps{loop, clock, tun, factory, tcp, rng, ebpf.get(),
                                       [this](const SysError&) { ++fatal_errors; },
                                       trail.get(),
                                       [this](const TunnelEvent& e) { events.push_back(e); },
                                       pool_buffers});
    ASSERT_TRUE(t.has_value()) << t.error().message;
    tunnel = std::move(*t);
  }
};

class TunnelTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    net.set_filter([this](const SocketAddress& from, const SocketAddress& to, Bytes payload) {
      if (payload.size() > 1 && payload[1] == 0x18) {
        datagram_ports.insert(to.port);
        source_ports.insert(from.port);
      }
      return !drop_all;
    });
  }
  void start(std::int64_t bob_skew_ms = 0) {
    alice = std::make_unique<Host>(
        host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true), loop, 0, 1);
    bob = std::make_unique<Host>(
        host_config("10.200.0.2", "10.77.0.2/24", "10.200.0.1", "10.77.0.1", false), loop,
        bob_skew_ms, 2);
    bob->start(loop, net, GetParam());
    alice->start(loop, net, GetParam());
  }
  // Alice initiates; bob has no [[peer]] for her, only a PSK allowing `prefixes`.
  void start_without_an_entry(std::vector<Cidr> prefixes) {
    alice = std::make_unique<Host>(
        host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true), loop, 0, 1);
    Config bc = host_config("10.200.0.2", "10.77.0.2/24", "10.200.0.1", "10.77.0.1", false);
    bc.peers.clear();
    bc.psks[0].allowed_prefixes = std::move(prefixes);
    bob = std::make_unique<Host>(std::move(bc), loop, 0, 2);
    bob->start(loop, net, GetParam());
    alice->start(loop, net, GetParam());
  }
  bool connected() {
    return loop.run_until(
        [&] { return alice->tunnel->session_count() == 1 && bob->tunnel->session_count() == 1; },
        loop.now() + seconds(20));
  }
  // Sends one packet each way and checks both arrive intact.
  void exchange(const std::string& tag) {
    auto there = ipv4("10.77.0.1", "10.77.0.2", "to bob " + tag);
    auto back = ipv4("10.77.0.2", "10.77.0.1", "to alice " + tag);
    ASSERT_TRUE(alice->tun.inject(there));
    ASSERT_TRUE(bob->tun.inject(back));
    loop.run_for(milliseconds(50));
    auto got = bob->tun.take_written();
    ASSERT_TRUE(got.has_value()) << tag;
    EXPECT_EQ(*got, there);
    auto got_back = alice->tun.take_written();
    ASSERT_TRUE(got_back.has_value()) << tag;
    EXPECT_EQ(*got_back, back);
  }

  // The SYN `host`'s daemon rewrites towards its own listener once the far
  // side connected (the host's kernel would queue that connection on it),
  // within 2 s.
  std::optional<inner::TcpSegment> held_syn(Host& host) {
    std::optional<inner::TcpSegment> held;
    loop.run_until(
        [&] {
          while (auto p = host.tun.take_written()) {
            auto s = inner::parse_tcp(*p);
            if (s && s->opening()) held = s;
          }
          return held.has_value();
        },
        loop.now() + seconds(2));
    return held;
  }

  // Both ends in stream mode (alice's windows capped at `alice_window_mb`
  // when set), connected, and one application connection from alice's host
  // to bob's server through the tunnel: the application's end on alice's
  // host and the server's on bob's.
  struct AppConnection {
    UniqueFd app_end;
    UniqueFd server_end;
  };
  // `pool_buffers` (0: the default) is both tunnels' TunnelDeps::pool_buffers.
  std::optional<AppConnection> open_stream_connection(std::uint32_t alice_window_mb = 0,
                                                      std::size_t pool_buffers = 0) {
    Config ac = host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true);
    Config bc = host_config("10.200.0.2", "10.77.0.2/24", "10.200.0.1", "10.77.0.1", false);
    ac.protocol.tcp_mode = bc.protocol.tcp_mode = TcpMode::kStream;
    if (alice_window_mb != 0) ac.protocol.max_window_mb = alice_window_mb;
    alice = std::make_unique<Host>(std::move(ac), loop, 0, 1);
    bob = std::make_unique<Host>(std::move(bc), loop, 0, 2);
    if (pool_buffers != 0) alice->pool_buffers = bob->pool_buffers = pool_buffers;
    bob->start(loop, net, GetParam());
    alice->start(loop, net, GetParam());
    if (!connected()) {
      ADD_FAILURE() << "no session";
      return std::nullopt;
    }
    // The application's SYN: bob's daemon connects to the server as the application.
    const SocketAddress app{ip("10.77.0.1"), 40001};
    const SocketAddress server{ip("10.77.0.2"), 80};
    if (!alice->tun.inject(buckwild::testing::tcp_segment(app, server, inner::tcp_flag::kSyn)) ||
        !loop.run_until([&] { return !bob->tcp.connect_calls().empty(); }, loop.now() + seconds(2))) {
      ADD_FAILURE() << "bob's daemon did not connect";
      return std::nullopt;
    }
    EXPECT_EQ(bob->tcp.connect_calls().at(0).to, app);
    auto server_end = bob->tcp.take_server(app);
    // Connected far away: alice's daemon rewrites the held SYN towards its own
    // listener; alice's kernel would queue that connection on it.
    std::optional<inner::TcpSegment> held = held_syn(*alice);
    if (!server_end || !held) {
      ADD_FAILURE() << "no server end or no SYN released";
      return std::nullopt;
    }
    EXPECT_EQ(held->destination.ip, ip("10.77.0.1"));
    auto app_end = alice->tcp.push_connection(ip("10.77.0.1"), held->source);
    if (!app_end) {
      ADD_FAILURE() << "alice's listener took no connection";
      return std::nullopt;
    }
    return AppConnection{std::move(*app_end), std::move(*server_end)};
  }

  // Writes `sent` into alice's TUN at once; bob's TUN gets each, in order.
  void carry_to_bob(const std::vector<std::vector<std::uint8_t>>& sent) {
    for (const auto& p : sent) ASSERT_TRUE(alice->tun.inject(p));
    loop.run_for(milliseconds(50));
    for (std::size_t i = 0; i < sent.size(); ++i) {
      auto got = bob->tun.take_written();
      ASSERT_TRUE(got.has_value()) << i;
      EXPECT_EQ(*got, sent[i]) << i;
    }
  }

  ManualEventLoop loop{seconds(1)};
  FakeDatagramNetwork net;
  std::set<std::uint16_t> datagram_ports;
  std::set<std::uint16_t> source_ports;
  bool drop_all = false;
  // Configurations put in force by reconfigure(): they outlive the tunnels.
  std::vector<std::unique_ptr<Config>> reloaded;
  std::unique_ptr<Host> alice, bob;
  Config& keep(std::unique_ptr<Config> c) {
    reloaded.push_back(std::move(c));
    return *reloaded.back();
  }
};

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
TEST_P(TunnelTest, ASecondPskHolderBehindThePeersAddressCannotTakeThePeer) {
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
TEST_P(TunnelTest, AnotherPsksHolderBehindTheSameAddressReplacesNoSession) {
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
TEST_P(TunnelTest, APeerThatNamesNoPskAmongSeveralIsRefused) {
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
TEST_P(TunnelTest, AResponseFromAnotherAddressIsRefused) {
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

TEST_P(TunnelTest, StrangersGetSilence) {
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
TEST_P(TunnelTest, PeerWithoutAnEntryGetsOneAddressInsideItsPskPrefixes) {
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

TEST_P(TunnelTest, PeerWithoutAnEntryIsRefusedWhenItsPskAllowsNoPrefix) {
  start_without_an_entry({});
  loop.run_for(seconds(3));
  EXPECT_EQ(bob->tunnel->session_count(), 0u);
}

// User space opens a socket for every valid port; the steered path opens only
// the one it sends from and describes the rest as valid (peer, port) pairs.
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

// Stream mode through both tunnels: an application's TCP connection from
// alice to a server on bob ends in the daemons (the test plays both kernels and
// holds the application's and the server's sockets) and its bytes travel as a
// Buckwild connection on its own hopping ports, byte-exact both ways.
TEST_P(TunnelTest, StreamModeCarriesAnApplicationsConnection) {
  // [protocol] max_window_mb reaches the connections.
  auto c = open_stream_connection(1);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(alice->tunnel->status()["stream"]["max_window_bytes"], 1u << 20);
  EXPECT_EQ(bob->tunnel->status()["stream"]["max_window_bytes"], 32u << 20);
  std::set<std::uint16_t> data_ports;
  net.set_filter([&](const SocketAddress&, const SocketAddress& to, Bytes payload) {
    if (payload.size() > 1 && payload[1] == static_cast<std::uint8_t>(wire::PacketType::kData)) {
      data_ports.insert(to.port);
    }
    return true;
  });
  const UniqueFd& app_end = c->app_end;
  const UniqueFd& server_end = c->server_end;

  // 200 KB each way, written as the sockets take it and read as it arrives.
  auto pattern = [](char seed) {
    std::string s(200'000, '\0');
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(seed + static_cast<char>(i % 251));
    return s;
  };
  const std::string up = pattern('a');
  const std::string down = pattern('z');
  std::string got_up, got_down;
  std::size_t sent_up = 0, sent_down = 0;
  auto pump = [](int fd, const std::string& out, std::size_t& sent, std::string& in) {
    if (sent < out.size()) {
      const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<std::size_t>(n);
    }
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) return;
      in.append(buf, static_cast<std::size_t>(n));
    }
  };
  bool done = false;
  for (int i = 0; i < 3000 && !done; ++i) {
    pump(app_end.get(), up, sent_up, got_down);
    pump(server_end.get(), down, sent_down, got_up);
    loop.run_for(milliseconds(5));
    done = got_up.size() >= up.size() && got_down.size() >= down.size();
  }
  ASSERT_TRUE(done) << "up " << got_up.size() << ", down " << got_down.size();
  EXPECT_EQ(got_up, up);
  EXPECT_EQ(got_down, down);
  EXPECT_EQ(alice->tunnel->stream_stats().opened, 1u);
  EXPECT_EQ(bob->tunnel->stream_stats().accepted, 1u);
  EXPECT_GE(data_ports.size(), 2u);  // the connection's packets hopped
  EXPECT_EQ(alice->tunnel->stats().rejected + bob->tunnel->stats().rejected, 0u);
}

// The send queue: the connection packets one turn seals (here a flow's
// callback reading what its application wrote) leave at the end of that turn
// in one send_batch, in the order sealed, and arrive intact; none waits past
// the turn.
TEST_P(TunnelTest, AConnectionsPacketsOfOneTurnLeaveInOneBatch) {
  auto c = open_stream_connection();
  ASSERT_TRUE(c.has_value());
  loop.run_for(milliseconds(200));  // the opening's packets are sent and answered
  ASSERT_EQ(alice->tunnel->session_ids().size(), 1u);
  const std::uint64_t id = alice->tunnel->session_ids()[0];
  const std::uint64_t sealed_before = alice->tunnel->session(id)->stats().sent;
  const std::uint64_t batches_before = alice->tunnel->stats().batched_sends;
  std::vector<std::vector<wire::Header>> batches;  // alice's send_batch calls
  net.set_batch_observer([&](const SocketAddress& from, std::span<const OutgoingDatagram> batch) {
    if (from.ip != ip("10.200.0.1")) return;
    std::vector<wire::Header>& headers = batches.emplace_back();
    for (const OutgoingDatagram& d : batch) {
      auto h = wire::parse_header(d.payload);
      if (h) headers.push_back(*h);
    }
  });

  // Six segments' worth at once, within the initial congestion window.
  std::string sent(6 * 1300, '\0');
  for (std::size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>('a' + i % 23);
  ASSERT_EQ(::send(c->app_end.get(), sent.data(), sent.size(), MSG_DONTWAIT | MSG_NOSIGNAL),
            static_cast<ssize_t>(sent.size()));
  ASSERT_GT(loop.dispatch_ready(), 0u);  // one turn

  ASSERT_EQ(batches.size(), 1u);
  const std::vector<wire::Header>& h = batches[0];
  ASSERT_GE(h.size(), 5u);
  for (std::size_t i = 0; i < h.size(); ++i) {
    EXPECT_EQ(h[i].type, wire::PacketType::kData) << i;
    if (i > 0) {
      EXPECT_GT(h[i].packet_number, h[i - 1].packet_number) << i;
      EXPECT_GT(h[i].sequence, h[i - 1].sequence) << i;
    }
  }
  // Everything the session sealed in the turn left in it.
  EXPECT_EQ(alice->tunnel->session(id)->stats().sent - sealed_before, h.size());
  EXPECT_EQ(alice->tunnel->stats().batched_sends - batches_before, 1u);
  EXPECT_EQ(alice->tunnel->status()["udp_offload"]["batched_sends"].get<std::uint64_t>(),
            alice->tunnel->stats().batched_sends);

  std::string got;
  for (int i = 0; i < 100 && got.size() < sent.size(); ++i) {
    loop.run_for(milliseconds(5));
    char buf[65536];
    const ssize_t n = ::recv(c->server_end.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) got.append(buf, static_cast<std::size_t>(n));
  }
  EXPECT_EQ(got, sent);
}

// Out of pool buffers (here a receive batch holds all eight while the bridge
// answers what it read), a connection packet goes at once from where it was
// built: none is lost. Every packet a session seals leaves, and the bytes
// arrive.
TEST_P(TunnelTest, ConnectionPacketsLeaveWhenThePoolIsOut) {
  auto c = open_stream_connection(0, 8);
  ASSERT_TRUE(c.has_value());
  loop.run_for(milliseconds(200));  // the opening's packets are sent and answered
  ASSERT_EQ(alice->tunnel->session_ids().size(), 1u);
  ASSERT_EQ(bob->tunnel->session_ids().size(), 1u);
  const std::uint64_t a = alice->tunnel->session_ids()[0];
  const std::uint64_t b = bob->tunnel->session_ids()[0];
  const std::uint64_t alice_sealed = alice->tunnel->session(a)->stats().sent;
  const std::uint64_t bob_sealed = bob->tunnel->session(b)->stats().sent;
  std::uint64_t alice_left = 0;
  std::uint64_t bob_left = 0;
  net.set_batch_observer([&](const SocketAddress& from, std::span<const OutgoingDatagram> batch) {
    if (from.ip == ip("10.200.0.1")) alice_left += batch.size();
    if (from.ip == ip("10.200.0.2")) bob_left += batch.size();
  });

  // Both ways, more than the congestion window: bob's ACKs and alice's
  // next segments are sealed while a receive batch holds the pool.
  std::string up(64 * 1024, '\0');
  std::string down(32 * 1024, '\0');
  for (std::size_t i = 0; i < up.size(); ++i) up[i] = static_cast<char>('a' + i % 23);
  for (std::size_t i = 0; i < down.size(); ++i) down[i] = static_cast<char>('A' + i % 19);
  std::size_t up_written = 0;
  std::size_t down_written = 0;
  std::string up_got;
  std::string down_got;
  for (int i = 0; i < 400 && (up_got.size() < up.size() || down_got.size() < down.size()); ++i) {
    if (up_written < up.size()) {
      const ssize_t n = ::send(c->app_end.get(), up.data() + up_written, up.size() - up_written,
                               MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) up_written += static_cast<std::size_t>(n);
    }
    if (down_written < down.size()) {
      const ssize_t n = ::send(c->server_end.get(), down.data() + down_written,
                               down.size() - down_written, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) down_written += static_cast<std::size_t>(n);
    }
    loop.run_for(milliseconds(5));
    char buf[65536];
    ssize_t n = ::recv(c->server_end.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) up_got.append(buf, static_cast<std::size_t>(n));
    n = ::recv(c->app_end.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) down_got.append(buf, static_cast<std::size_t>(n));
  }
  EXPECT_EQ(up_got.size(), up.size());
  EXPECT_TRUE(up_got == up);
  EXPECT_EQ(down_got.size(), down.size());
  EXPECT_TRUE(down_got == down);
  EXPECT_EQ(alice->tunnel->session(a)->stats().sent - alice_sealed, alice_left);
  EXPECT_EQ(bob->tunnel->session(b)->stats().sent - bob_sealed, bob_left);
  EXPECT_GT(alice_left, 40u);  // the transfer took data packets, not a few
  EXPECT_GT(bob_left, 20u);
}

// Stream mode's near leg with TUN offloads: a TSO read of a flow the NAT
// rewrites goes back into the TUN as one GSO write, rewritten whole; a TSO
// read of no flow is split and travels as DATAGRAMs, as before.
TEST_P(TunnelTest, StreamModePassesATsoReadOfANattedFlowThroughWhole) {
  Config ac = host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true);
  Config bc = host_config("10.200.0.2", "10.77.0.2/24", "10.200.0.1", "10.77.0.1", false);
  ac.protocol.tcp_mode = bc.protocol.tcp_mode = TcpMode::kStream;
  alice = std::make_unique<Host>(std::move(ac), loop, 0, 1);
  bob = std::make_unique<Host>(std::move(bc), loop, 0, 2);
  alice->tun.set_takes_gso(true);
  bob->start(loop, net, GetParam());
  alice->start(loop, net, GetParam());
  ASSERT_TRUE(connected());
  const SocketAddress app{ip("10.77.0.1"), 40001};
  const SocketAddress server{ip("10.77.0.2"), 80};
  ASSERT_TRUE(alice->tun.inject(buckwild::testing::tcp_segment(app, server, inner::tcp_flag::kSyn)));
  std::optional<inner::TcpSegment> held = held_syn(*alice);
  ASSERT_TRUE(held.has_value());

  // 20 segments of 1448 bytes from the application, read at once.
  const offload::Shape shape{.payload = 20 * 1448, .net = 77};
  std::vector<std::uint8_t> tso = offload::super_packet(shape);
  offload::set_endpoints(tso, app.ip.bytes().data(), server.ip.bytes().data(), app.port, server.port);
  ASSERT_TRUE(alice->tun.inject_gso(offload::gso_header(shape, 1448), tso));
  loop.run_for(milliseconds(10));
  EXPECT_EQ(alice->tun.gso_writes(), 1u);
  EXPECT_EQ(alice->tun.taken_whole(), 1u);
  ASSERT_EQ(alice->tun.written_count(), 20u);  // the kernel's split of the one write
  for (std::size_t i = 0; i < 20; ++i) {
    auto p = alice->tun.take_written();
    auto s = inner::parse_tcp(*p);
    ASSERT_TRUE(s) << i;
    EXPECT_EQ(s->source, held->source) << i;        // D:P
    EXPECT_EQ(s->destination, held->destination) << i;  // V:L
    EXPECT_EQ(s->payload_size, 1448u) << i;
    EXPECT_TRUE(inner::tcp_checksums_ok(*p)) << i;
  }
  EXPECT_EQ(alice->tunnel->stats().tun_passthrough_writes, 1u);
  EXPECT_EQ(alice->tunnel->stats().tun_passthrough_segments, 20u);
  EXPECT_EQ(alice->tunnel->stats().tun_coalesced_writes, 0u);
  EXPECT_EQ(alice->tunnel->status()["tun_offload"]["passed_through"], 1u);
  EXPECT_EQ(alice->tunnel->stream_stats().rewritten_whole, 1u);

  // A TSO read of no flow (no SYN seen for it) is split and carried as
  // DATAGRAMs: bob's kernel gets the 20 segments (1000 bytes each, within
  // the path's datagrams).
  const offload::Shape small{.payload = 20 * 1000, .net = 77};
  std::vector<std::uint8_t> other = offload::super_packet(small);
  offload::set_endpoints(other, app.ip.bytes().data(), server.ip.bytes().data(), 40999, 81);
  const std::size_t bob_before = bob->tun.written_count();
  ASSERT_TRUE(alice->tun.inject_gso(offload::gso_header(small, 1000), other));
  loop.run_for(milliseconds(50));
  EXPECT_EQ(alice->tun.taken_whole(), 1u) << "declined, then split";
  EXPECT_EQ(bob->tun.written_count() - bob_before, 20u);
  EXPECT_EQ(alice->tunnel->stats().tun_passthrough_writes, 1u);
}

// Sessions established and ended go to the audit log as JSON lines, by peer
// name and PSK id, never with a key.
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
  void start_behind_nat() {
    net.set_translator([this](SocketAddress& from, SocketAddress& to) { return nat.translate(from, to); });
    Config ac = host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true);
    Config bc = host_config("10.200.0.2", "10.77.0.2/24", "10.200.0.1", "10.77.0.1", false);
    // Bob cannot know alice's address: her peer entry names only the PSK.
    bc.peers[0].endpoint.reset();
    bc.peers[0].psk = "main";
    alice = std::make_unique<Host>(std::move(ac), loop, 0, 1);
    bob = std::make_unique<Host>(std::move(bc), loop, 0, 2);
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
  net.set_translator([this](SocketAddress& from, SocketAddress& to) { return nat.translate(from, to); });
  Config ac = host_config("10.200.0.1", "10.77.0.1/24", "10.200.0.2", "10.77.0.2", true);
  Config bc = host_config("10.200.0.2", "10.77.0.2/24", "10.200.0.1", "10.77.0.1", false);
  bc.peers[0].endpoint.reset();
  bc.peers[0].psk = "main";
  alice = std::make_unique<Host>(std::move(ac), loop, 0, 1);
  bob = std::make_unique<Host>(std::move(bc), loop, 0, 2);
  auto opened = AuditLog::open(path);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  bob->audit = std::move(*opened);
  bob->start(loop, net, GetParam());
  alice->start(loop, net, GetParam());
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

INSTANTIATE_TEST_SUITE_P(ReceivePaths, NatTunnelTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param) {
                           return std::string(param.param ? "Ebpf" : "UserSpace");
                         });

INSTANTIATE_TEST_SUITE_P(ReceivePaths, TunnelTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param) {
                           return std::string(param.param ? "Ebpf" : "UserSpace");
                         });

// ---- reload and status ----

TEST_P(TunnelTest, ReloadAddsAPeerAndChangesALimitWithoutTouchingTheRunningSession) {
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

TEST_P(TunnelTest, ReloadEndsOnlyTheSessionsOfRemovedOrChangedPeersAndPsks) {
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

TEST_P(TunnelTest, AnotherPsksPrefixesDoNotEndANamedPeersSession) {
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

TEST_P(TunnelTest, AnAddressClaimedWithoutAnEntryIsTakenBackWhenAPeerIsConfiguredOnIt) {
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

TEST_P(TunnelTest, MaxConnectionsMayNotGrowOnTheEbpfPath) {
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

TEST_P(TunnelTest, EndingEverySessionRecordsEachEnd) {
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

std::size_t count_events(const Host& h, TunnelEvent::Kind kind) {
  return static_cast<std::size_t>(std::count_if(h.events.begin(), h.events.end(),
                                                [&](const TunnelEvent& e) { return e.kind == kind; }));
}

TEST_P(TunnelTest, SessionsComingAndGoingAreEvents) {
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

TEST_P(TunnelTest, AdministrativelyDownEndsTheSessionAndKeepsThePeerAwayUntilUp) {
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

TEST_P(TunnelTest, APeerDownStaysDownThroughAReloadThatChangesItsKeys) {
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

TEST_P(TunnelTest, UnansweredDiscoveryIsReportedOnceAfterFiveAttempts) {
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

// ---- The session state machine and recovery (docs/protocol.md §11.9) ----

std::string state_of(Host& h) {
  return h.tunnel->status()["peers"][0]["state"]["state"].get<std::string>();
}
std::string strategy_of(Host& h) {
  return h.tunnel->status()["peers"][0]["state"]["strategy"].get<std::string>();
}
int attempts_of(Host& h) {
  return h.tunnel->status()["peers"][0]["state"]["attempts"].get<int>();
}

TEST_P(TunnelTest, StatesFollowDiscoveryAndTheSession) {
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
TEST_P(TunnelTest, AClockStepIsRecoveredByResync) {
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
TEST_P(TunnelTest, AnUnansweredRekeyIsRecoveredByRekey) {
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

TEST_P(TunnelTest, ARekeyNeverAnsweredIsSpentAndEmergencyMakesANewSession) {
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
TEST_P(TunnelTest, APeerGoneForGoodEndsInErrorAndIsFoundWhenBack) {
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
TEST_P(TunnelTest, APeerThatCannotBeReachedIsErrorAndItsReturnIsTriedAtOnce) {
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
TEST_P(TunnelTest, EmergencyKeepsAConnectionWhenBothSessionsEnded) {
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

TEST_P(TunnelTest, ReloadRefusesAKeyThatCannotChangeAndChangesNothing) {
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

TEST_P(TunnelTest, StatusReportsEachPeerItsSessionPortsAndCounters) {
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

}  // namespace
}  // namespace buckwild::daemon

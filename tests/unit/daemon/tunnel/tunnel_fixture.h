// The tunnel tests' two hosts: two tunnels in one process, in-memory TUN
// devices and UDP network, virtual time, all through the real Tunnel code on
// both receive paths: a socket per hopping port (user space) and one steered
// socket (the eBPF path, with FakeEbpfPath standing in for sk_lookup and XDP).
// Each tunnel_*_test.cc derives its suite from TunnelTest.
#pragma once

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

namespace buckwild::daemon::tunnel_testing {

inline constexpr std::int64_t kUnixStart = 1'764'080'000'000;

inline IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}
inline Cidr cidr(const char* text) {
  return *Cidr::parse(text);
}

inline crypto::SecretBytes test_psk() {
  crypto::DeterministicRandom rng(77);
  return crypto::SecretBytes::random(32, rng);
}

inline Config host_config(const char* underlay, const char* vip, const char* peer_underlay,
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
inline std::vector<std::uint8_t> ipv4(const char* src, const char* dst,
                                      const std::string& payload) {
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

// How many of an event a host saw.
inline std::size_t count_events(const Host& h, TunnelEvent::Kind kind) {
  return static_cast<std::size_t>(std::count_if(h.events.begin(), h.events.end(),
                                                [&](const TunnelEvent& e) { return e.kind == kind; }));
}

// The first peer's session state machine, from the status document
// (docs/protocol.md §11.9).
inline std::string state_of(Host& h) {
  return h.tunnel->status()["peers"][0]["state"]["state"].get<std::string>();
}
inline std::string strategy_of(Host& h) {
  return h.tunnel->status()["peers"][0]["state"]["strategy"].get<std::string>();
}
inline int attempts_of(Host& h) {
  return h.tunnel->status()["peers"][0]["state"]["attempts"].get<int>();
}

// Each suite runs on both receive paths: a socket per hopping port, and the
// steered one.
inline std::string receive_path_name(const ::testing::TestParamInfo<bool>& param) {
  return param.param ? "Ebpf" : "UserSpace";
}

}  // namespace buckwild::daemon::tunnel_testing

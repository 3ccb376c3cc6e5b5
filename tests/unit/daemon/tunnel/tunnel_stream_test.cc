// Stream mode through the tunnel: an application's TCP connection ends in the
// daemons and travels as a Buckwild connection; its packets' batching, the
// pool running out, TSO reads passed through whole.
#include "unit/daemon/tunnel/tunnel_fixture.h"

namespace buckwild::daemon::tunnel_testing {
namespace {

class TunnelStreamTest : public TunnelTest {};

// Stream mode through both tunnels: an application's TCP connection from
// alice to a server on bob ends in the daemons (the test plays both kernels and
// holds the application's and the server's sockets) and its bytes travel as a
// Buckwild connection on its own hopping ports, byte-exact both ways.
TEST_P(TunnelStreamTest, StreamModeCarriesAnApplicationsConnection) {
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
TEST_P(TunnelStreamTest, AConnectionsPacketsOfOneTurnLeaveInOneBatch) {
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

  // Status shows the connection on both sides, as `ss -ti` would.
  const nlohmann::json ca = alice->tunnel->status()["peers"][0]["session"]["stream_connections"];
  const nlohmann::json cb = bob->tunnel->status()["peers"][0]["session"]["stream_connections"];
  ASSERT_EQ(ca.size(), 1u) << ca.dump();
  ASSERT_EQ(cb.size(), 1u) << cb.dump();
  EXPECT_EQ(ca[0]["id"], cb[0]["id"]);
  EXPECT_EQ(ca[0]["side"], "client");
  EXPECT_EQ(cb[0]["side"], "server");
  EXPECT_EQ(ca[0]["state"], "ESTABLISHED");
  EXPECT_EQ(ca[0]["target"], cb[0]["target"]);
  EXPECT_GE(ca[0]["segments_sent"].get<std::uint64_t>(), h.size());
  EXPECT_EQ(ca[0]["bytes_delivered"].get<std::uint64_t>(), sent.size());
  EXPECT_GE(cb[0]["segments_in_order"].get<std::uint64_t>(), h.size());
  EXPECT_GT(ca[0]["srtt_ms"].get<double>(), 0.0);
  EXPECT_GT(ca[0]["cwnd_bytes"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(ca[0]["bytes_in_flight"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(ca[0]["congestion_control"], cb[0]["congestion_control"]);
  ASSERT_EQ(ca[0]["congestion_control"], "bbr");
  EXPECT_TRUE(ca[0]["bbr"]["mode"].is_string());
  EXPECT_TRUE(ca[0]["bbr"]["bandwidth_bytes_per_second"].is_number_unsigned());
  EXPECT_TRUE(ca[0]["bbr"]["min_rtt_ms"].is_number());
  EXPECT_TRUE(cb[0]["bbr"]["rounds"].is_number_unsigned());
}

// Out of pool buffers (here a receive batch holds all eight while the bridge
// answers what it read), a connection packet goes at once from where it was
// built: none is lost. Every packet a session seals leaves, and the bytes
// arrive.
TEST_P(TunnelStreamTest, ConnectionPacketsLeaveWhenThePoolIsOut) {
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
TEST_P(TunnelStreamTest, StreamModePassesATsoReadOfANattedFlowThroughWhole) {
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

INSTANTIATE_TEST_SUITE_P(ReceivePaths, TunnelStreamTest, ::testing::Bool(), receive_path_name);

}  // namespace
}  // namespace buckwild::daemon::tunnel_testing

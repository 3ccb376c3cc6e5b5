// Two stream bridges in one process: the client host's (a) and the server
// host's (b), joined by a StreamHost that carries their connection packets
// with a fixed one-way delay, over FakeTcpEndpoints (Unix socket pairs) and one
// ManualEventLoop. The test plays the kernels: it feeds TCP segments in as the
// TUN device would, reads what the bridges write to it, and holds the
// application's and the server's sockets.
#include "daemon/stream/bridge.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/crypto/random.h"
#include "core/wire/codec.h"
#include "daemon/os/testing/manual_event_loop.h"
#include "daemon/net/testing/fake_tcp_endpoints.h"
#include "support/inner_packets.h"
#include "unit/core/offload/offload_packets.h"

namespace buckwild::daemon {
namespace {

using inner::parse_tcp;
using inner::tcp_checksums_ok;
using inner::TcpSegment;
namespace tcp_flag = inner::tcp_flag;

constexpr std::uint64_t kSession = 0x5eed;
constexpr Duration kLatency = milliseconds(5);  // one way

const IpAddress kHostA = *IpAddress::parse("10.77.0.1");  // client host: V, and the application's A
const IpAddress kHostB = *IpAddress::parse("10.77.0.2");  // server host: V, and the destination D
const SocketAddress kApp{kHostA, 40001};
const SocketAddress kServer{kHostB, 80};

// ---- TCP segments, with checksums computed from scratch (tests/support) ----

std::vector<std::uint8_t> segment(const SocketAddress& src, const SocketAddress& dst, std::uint8_t flags) {
  return testing::tcp_segment(src, dst, flags);
}

std::vector<std::uint8_t> syn(const SocketAddress& src, const SocketAddress& dst) {
  return segment(src, dst, tcp_flag::kSyn);
}

// The TUN device hands `packet` to the bridge.
bool feed(StreamBridge& bridge, std::vector<std::uint8_t> packet) { return bridge.on_tun_segment(packet); }

// ---- the tunnel between the two bridges ----

class TestHost final : public StreamHost {
 public:
  TestHost(ManualEventLoop& loop, IpAddress peer) : loop_(loop), peer_(peer) {}
  void connect_to(TestHost& other) { other_ = &other; }
  void set_bridge(StreamBridge* b) { bridge_ = b; }

  std::uint64_t session_for(const IpAddress& destination) override {
    return destination == peer_ ? kSession : 0;
  }
  bool source_allowed(std::uint64_t, const IpAddress& source) override { return source == peer_; }
  MutableBytes connection_packet_buffer() override { return MutableBytes(send_buffer_); }
  void send_connection_packet(std::uint64_t session, wire::Header& header, MutableBytes packet,
                              std::size_t body_len) override {
    EXPECT_EQ(session, kSession);
    // Built where the host asked: the tunnel seals it there, with no copy.
    EXPECT_EQ(packet.data(), send_buffer_.data());
    EXPECT_EQ(packet.size(), send_buffer_.size());
    ++packets_sent;
    if (down) return;  // an underlay outage: lost
    wire::Header h = header;
    h.payload_length = static_cast<std::uint16_t>(body_len);
    std::vector<std::uint8_t> body(packet.begin() + wire::kHeaderSize,
                                   packet.begin() + static_cast<std::ptrdiff_t>(wire::kHeaderSize + body_len));
    TestHost* to = other_;
    loop_.add_timer(kLatency, [to, h, body = std::move(body)] { to->deliver(h, body); });
  }
  void write_tun(Bytes ip_packet) override { tun.emplace_back(ip_packet.begin(), ip_packet.end()); }
  void write_tun_gso(const offload::VnetHeader& header, Bytes ip_packet, std::size_t segments) override {
    gso.push_back(GsoWrite{header, std::vector<std::uint8_t>(ip_packet.begin(), ip_packet.end()), segments});
  }
  void connections_changed(std::uint64_t) override { ++changes; }
  // The NAT rules the kernel would hold (EbpfPath::set_nat_rule).
  void nat_rule_added(const NatKey& key, const NatRule& rule) override { kernel_nat[key] = rule; }
  void nat_rule_removed(const NatKey& key) override {
    EXPECT_TRUE(kernel_nat.erase(key)) << "removed a rule the kernel does not hold";
  }

  void deliver(const wire::Header& h, const std::vector<std::uint8_t>& body) {
    if (bridge_ == nullptr) return;
    auto parsed = wire::parse_body(h, body);
    ASSERT_TRUE(parsed) << "a connection packet the codec refuses";
    bridge_->on_connection_packet(kSession, h, *parsed);
    bridge_->flush();
  }

  std::deque<std::vector<std::uint8_t>> tun;  // what the bridge wrote to the TUN device
  struct GsoWrite {
    offload::VnetHeader header;
    std::vector<std::uint8_t> packet;
    std::size_t segments = 0;
  };
  std::deque<GsoWrite> gso;  // and what it wrote whole
  std::size_t packets_sent = 0;
  std::size_t changes = 0;
  std::unordered_map<NatKey, NatRule, NatKeyHash> kernel_nat;
  bool down = false;  // what this host sends is lost

 private:
  ManualEventLoop& loop_;
  IpAddress peer_;
  TestHost* other_ = nullptr;
  StreamBridge* bridge_ = nullptr;
  std::array<std::uint8_t, wire::kMaxDatagramSize> send_buffer_{};
};

// ---- sockets the test holds ----

std::size_t write_some(int fd, const std::string& s) {
  const ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

// Reads what is there; sets `eof` on EOF.
void read_into(int fd, std::string& out, bool* eof = nullptr) {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0 && eof != nullptr) *eof = true;
    return;
  }
}

// Bytes i..i+n of a pattern that makes any misordering or loss visible.
std::string pattern(std::size_t from, std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(((from + i) * 7 + (from + i) / 251) & 0xFF);
  return s;
}

class StreamBridgeTest : public ::testing::Test {
 protected:
  struct OpenFlow {
    UniqueFd app;     // the application's socket, on host a
    UniqueFd server;  // the server's socket, on host b
    std::uint16_t nat_port = 0;
  };

  void SetUp() override { host_a.connect_to(host_b), host_b.connect_to(host_a); }

  void start() {
    ASSERT_TRUE(make(a, options_a, host_a, tcp_a, kHostA));
    ASSERT_TRUE(make(b, options_b, host_b, tcp_b, kHostB));
    a->add_session(kSession, SessionRole::kInitiator);
    b->add_session(kSession, SessionRole::kResponder);
  }

  bool make(std::unique_ptr<StreamBridge>& bridge, StreamBridge::Options options, TestHost& host,
            FakeTcpEndpoints& tcp, const IpAddress& v) {
    options.virtual_v4 = v;
    auto created = StreamBridge::create(options, host, loop, tcp, rng);
    if (!created) return false;
    bridge = std::move(*created);
    host.set_bridge(bridge.get());
    return true;
  }

  bool run_until(const std::function<bool()>& done, Duration limit = seconds(10)) {
    return loop.run_until(done, loop.now() + limit);
  }

  // The application at `app` connects to kServer through the bridges, all the
  // way to bytes flowing.
  OpenFlow open(const SocketAddress& app = kApp) {
    OpenFlow flow;
    auto s = syn(app, kServer);
    EXPECT_TRUE(a->on_tun_segment(s));
    EXPECT_TRUE(host_a.tun.empty()) << "the application's SYN is held";
    // Host b connects to the application's own address (its SYN comes back
    // through the TUN device and is rewritten to A:X -> D:dp).
    if (!run_until([&] { return tcp_b.connect_calls().size() > connects_seen_; })) {
      ADD_FAILURE() << "host b never connected";
      return flow;
    }
    const auto call = tcp_b.connect_calls()[connects_seen_++];
    EXPECT_EQ(call.to, app);
    EXPECT_EQ(call.from, kHostB);
    auto kernel_syn = syn(call.local, app);
    EXPECT_TRUE(b->on_tun_segment(kernel_syn));
    if (!host_b.tun.empty()) {
      auto rewritten = host_b.tun.front();
      host_b.tun.pop_front();
      auto r = parse_tcp(rewritten);
      EXPECT_TRUE(r && r->source == app && r->destination == kServer) << "the server sees the application";
      EXPECT_TRUE(tcp_checksums_ok(rewritten));
    } else {
      ADD_FAILURE() << "host b's SYN was not rewritten";
    }
    flow.server = tcp_b.take_server(app).value_or(UniqueFd());
    // Host a lets its listener take the held SYN, rewritten to D:P -> V:L.
    if (!run_until([&] { return !host_a.tun.empty(); })) {
      ADD_FAILURE() << "the held SYN was never released";
      return flow;
    }
    auto released = host_a.tun.front();
    host_a.tun.pop_front();
    auto r = parse_tcp(released);
    EXPECT_TRUE(r && r->opening());
    EXPECT_TRUE(tcp_checksums_ok(released));
    if (!r) return flow;
    EXPECT_EQ(r->source.ip, kServer.ip);
    EXPECT_EQ(r->destination, (SocketAddress{kHostA, a->listener_port(kHostA)}));
    flow.nat_port = r->source.port;
    flow.app = tcp_a.push_connection(kHostA, r->source).value_or(UniqueFd());
    return flow;
  }

  // Moves `data` from `from` to `to` through the bridges; returns what arrived.
  std::string carry(int from, int to, const std::string& data) {
    std::string got;
    std::size_t sent = 0;
    run_until([&] {
      if (sent < data.size()) sent += write_some(from, data.substr(sent));
      read_into(to, got);
      return got.size() >= data.size();
    });
    return got;
  }

  // The server closes first and the application reads its EOF, then closes
  // too: host a's connection closes passively, host b's waits in TIME_WAIT.
  // False when an EOF does not arrive.
  bool close_server_first(OpenFlow& f) {
    if (::shutdown(f.server.get(), SHUT_WR) != 0) return false;
    std::string rest;
    bool app_eof = false;
    if (!run_until([&] {
          read_into(f.app.get(), rest, &app_eof);
          return app_eof;
        })) {
      return false;
    }
    return ::shutdown(f.app.get(), SHUT_WR) == 0;
  }

  ManualEventLoop loop{seconds(1000)};
  crypto::DeterministicRandom rng{7};
  TestHost host_a{loop, kHostB};
  TestHost host_b{loop, kHostA};
  FakeTcpEndpoints tcp_a;
  FakeTcpEndpoints tcp_b;
  StreamBridge::Options options_a;
  StreamBridge::Options options_b;
  std::unique_ptr<StreamBridge> a;
  std::unique_ptr<StreamBridge> b;
  std::size_t connects_seen_ = 0;
};

TEST_F(StreamBridgeTest, OpensAndCarriesBytesBothWaysExactly) {
  start();
  OpenFlow f = open();
  ASSERT_GE(f.app.get(), 0);
  ASSERT_GE(f.server.get(), 0);
  EXPECT_EQ(a->stats().opened, 1u);
  EXPECT_EQ(b->stats().accepted, 1u);

  const std::string up = pattern(0, 300'000);
  EXPECT_EQ(carry(f.app.get(), f.server.get(), up), up);
  const std::string down = pattern(5, 200'000);
  EXPECT_EQ(carry(f.server.get(), f.app.get(), down), down);
  EXPECT_EQ(a->stats().bytes_up, up.size());
  EXPECT_EQ(b->stats().bytes_down, up.size());
  EXPECT_EQ(b->stats().bytes_up, down.size());
  EXPECT_EQ(a->stats().bytes_down, down.size());
}

TEST_F(StreamBridgeTest, ListenerRepliesAreRewrittenToTheApplicationsAddresses) {
  start();
  OpenFlow f = open();
  // The listener's SYN-ACK, V:L -> D:P, goes back to the application as D:dp -> A:X.
  auto reply = segment(SocketAddress{kHostA, a->listener_port(kHostA)}, SocketAddress{kHostB, f.nat_port},
                       tcp_flag::kSyn | tcp_flag::kAck);
  ASSERT_TRUE(a->on_tun_segment(reply));
  ASSERT_EQ(host_a.tun.size(), 1u);
  auto r = parse_tcp(host_a.tun.front());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->source, kServer);
  EXPECT_EQ(r->destination, kApp);
  EXPECT_TRUE(tcp_checksums_ok(host_a.tun.front()));
  EXPECT_EQ(a->stats().rewritten, 1u);
}

// A 30 000-byte TSO read of `from` -> `to` (IPv4), as the kernel hands it over.
std::vector<std::uint8_t> tso_read(const SocketAddress& from, const SocketAddress& to) {
  std::vector<std::uint8_t> p = offload::super_packet(offload::Shape{.payload = 30'000});
  offload::set_endpoints(p, from.ip.bytes().data(), to.ip.bytes().data(), from.port, to.port);
  return p;
}
const offload::Shape kTsoShape{.payload = 30'000};

TEST_F(StreamBridgeTest, ATsoReadOfANattedFlowIsRewrittenWholeBothWays) {
  start();
  OpenFlow f = open();
  const SocketAddress listener{kHostA, a->listener_port(kHostA)};
  const SocketAddress seen{kHostB, f.nat_port};  // the application, as the listener sees it
  const offload::VnetHeader header = offload::gso_header(kTsoShape, 1448);
  struct Case {
    SocketAddress from, to, want_from, want_to;
  };
  const Case cases[] = {{kApp, kServer, seen, listener}, {listener, seen, kServer, kApp}};
  std::size_t written = 0;
  for (const Case& c : cases) {
    std::vector<std::uint8_t> p = tso_read(c.from, c.to);
    const std::vector<std::uint8_t> before = p;
    ASSERT_TRUE(a->on_tun_gso(header, p, 21));
    ASSERT_EQ(host_a.gso.size(), ++written);
    EXPECT_TRUE(host_a.tun.empty()) << "nothing split";
    const TestHost::GsoWrite& w = host_a.gso.back();
    EXPECT_EQ(w.segments, 21u);
    EXPECT_EQ(w.header.gso_type, header.gso_type);
    EXPECT_EQ(w.header.gso_size, header.gso_size);
    EXPECT_EQ(w.header.csum_start, header.csum_start);
    EXPECT_EQ(w.header.csum_offset, header.csum_offset);
    EXPECT_EQ(w.header.hdr_len, header.hdr_len);
    EXPECT_EQ(w.header.flags, header.flags);
    auto r = parse_tcp(w.packet);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->source, c.want_from);
    EXPECT_EQ(r->destination, c.want_to);
    // The seed is the one built from scratch for the new endpoints; the
    // payload is untouched.
    std::vector<std::uint8_t> want = tso_read(c.want_from, c.want_to);
    EXPECT_EQ(w.packet, want);
    EXPECT_EQ(w.packet.size(), before.size());
    // And the kernel can split it into segments that verify.
    auto plan = offload::plan_split(w.header, w.packet).plan;
    ASSERT_TRUE(plan);
    for (std::size_t i = 0; i < plan->count; ++i) {
      std::vector<std::uint8_t> seg(plan->max_size);
      seg.resize(offload::write_segment(*plan, w.packet, i, seg));
      EXPECT_TRUE(tcp_checksums_ok(seg)) << i;
    }
  }
  EXPECT_EQ(a->stats().rewritten_whole, 2u);
  EXPECT_EQ(a->stats().rewritten, 42u);
}

TEST_F(StreamBridgeTest, ATsoReadWithAFullChecksumKeepsItFull) {
  start();
  OpenFlow f = open();
  offload::VnetHeader header = offload::gso_header(kTsoShape, 1448);
  header.flags = 0;  // no NEEDS_CSUM: the field holds the full checksum
  std::vector<std::uint8_t> p = tso_read(kApp, kServer);
  offload::put16(p, 36, 0);
  offload::put16(p, 36, static_cast<std::uint16_t>(~offload::fold(offload::pseudo(p, 20, 6) +
                                                                    offload::sum_bytes(p, 20, p.size()))));
  ASSERT_TRUE(tcp_checksums_ok(p));
  ASSERT_TRUE(a->on_tun_gso(header, p, 21));
  ASSERT_EQ(host_a.gso.size(), 1u);
  EXPECT_TRUE(tcp_checksums_ok(host_a.gso.back().packet));
  EXPECT_EQ(parse_tcp(host_a.gso.back().packet)->source.port, f.nat_port);
}

TEST_F(StreamBridgeTest, ATsoReadOfNoNattedFlowOrASynIsLeftToTheSplit) {
  start();
  OpenFlow f = open();
  const offload::VnetHeader header = offload::gso_header(kTsoShape, 1448);
  // Not a flow of ours (another port of the application).
  std::vector<std::uint8_t> p = tso_read(SocketAddress{kHostA, 40999}, kServer);
  const std::vector<std::uint8_t> before = p;
  EXPECT_FALSE(a->on_tun_gso(header, p, 21));
  EXPECT_EQ(p, before) << "declined packets are left as they were";
  // A SYN of the flow's own 4-tuple opens or is held: on_tun_segment's.
  std::vector<std::uint8_t> s = tso_read(kApp, kServer);
  s[20 + 13] = tcp_flag::kSyn;
  EXPECT_FALSE(a->on_tun_gso(header, s, 21));
  EXPECT_TRUE(host_a.gso.empty());
  EXPECT_EQ(a->stats().rewritten_whole, 0u);
  EXPECT_GE(f.nat_port, 1u);
}

TEST_F(StreamBridgeTest, RefusedByTheFarServerTheApplicationGetsAnRstWithinARoundTrip) {
  start();
  tcp_b.set_connect_outcome(kApp, FakeTcpEndpoints::ConnectOutcome::kRefuse);
  const TimePoint start_at = loop.now();
  auto s = syn(kApp, kServer);
  ASSERT_TRUE(a->on_tun_segment(s));
  ASSERT_TRUE(run_until([&] { return !host_a.tun.empty(); }));
  EXPECT_LE(loop.now() - start_at, 2 * kLatency + milliseconds(1));
  auto r = parse_tcp(host_a.tun.front());
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->has(tcp_flag::kRst));
  EXPECT_EQ(r->source, kServer);
  EXPECT_EQ(r->destination, kApp);
  EXPECT_TRUE(tcp_checksums_ok(host_a.tun.front()));
  EXPECT_EQ(a->stats().refused, 1u);
  EXPECT_EQ(b->stats().refused, 1u);
  EXPECT_EQ(b->stats().accepted, 0u);
}

TEST_F(StreamBridgeTest, HalfCloseLetsTheOtherDirectionFlowThenBothClose) {
  start();
  OpenFlow f = open();
  ASSERT_GE(f.app.get(), 0);
  ASSERT_EQ(carry(f.app.get(), f.server.get(), "request"), "request");
  ASSERT_EQ(::shutdown(f.app.get(), SHUT_WR), 0);  // the application is done sending
  std::string got;
  bool server_eof = false;
  ASSERT_TRUE(run_until([&] {
    read_into(f.server.get(), got, &server_eof);
    return server_eof;
  }));
  EXPECT_EQ(got, "");
  // The server still answers, at length, after the application's FIN.
  const std::string answer = pattern(0, 150'000);
  EXPECT_EQ(carry(f.server.get(), f.app.get(), answer), answer);
  ASSERT_EQ(::shutdown(f.server.get(), SHUT_WR), 0);
  std::string rest;
  bool app_eof = false;
  ASSERT_TRUE(run_until([&] {
    read_into(f.app.get(), rest, &app_eof);
    return app_eof;
  }));
  EXPECT_EQ(rest, "");
  // Both flows end cleanly (after the connection's TIME_WAIT on one side).
  ASSERT_TRUE(run_until([&] { return a->stats().completed == 1 && b->stats().completed == 1; }, seconds(120)));
  EXPECT_EQ(a->stats().resets, 0u);
  EXPECT_EQ(b->stats().resets, 0u);
  EXPECT_EQ(tcp_a.abortive_closes() + tcp_b.abortive_closes(), 0u);
}

// The server closes first, so host b's connection waits out TIME_WAIT (60 s).
// Meanwhile the server's socket is closed and the flow no longer counts
// against the peer's limit: a peer's short connections are not refused for a
// minute after they ended.
TEST_F(StreamBridgeTest, AFlowInTimeWaitHoldsNoSocketAndNoPlaceInTheLimits) {
  options_b.limits.max_per_source = 1;
  start();
  OpenFlow f = open(SocketAddress{kHostA, 40501});
  ASSERT_GE(f.app.get(), 0);
  ASSERT_EQ(carry(f.server.get(), f.app.get(), "answer"), "answer");
  ASSERT_TRUE(close_server_first(f));
  // The application's FIN reaches the server.
  std::string got;
  bool server_eof = false;
  ASSERT_TRUE(run_until([&] {
    read_into(f.server.get(), got, &server_eof);
    return server_eof;
  }, seconds(5)));
  loop.run_for(seconds(1));
  EXPECT_EQ(b->stats().completed, 0u) << "still in TIME_WAIT";
  EXPECT_EQ(b->flow_count(), 1u);
  // A second connection from the same peer is not refused by the limit of 1.
  OpenFlow second = open(SocketAddress{kHostA, 40502});
  ASSERT_GE(second.app.get(), 0);
  EXPECT_EQ(b->stats().limit_refusals, 0u);
  EXPECT_EQ(carry(second.app.get(), second.server.get(), "next"), "next");
  ASSERT_TRUE(run_until([&] { return b->stats().completed == 1; }, seconds(120)));
  EXPECT_EQ(b->stats().resets, 0u);
}

TEST_F(StreamBridgeTest, StalledReaderStopsTheFarWriterWithBoundedBuffersAndResumes) {
  options_a.connection.send_buffer = options_a.connection.receive_buffer = 64 * 1024;
  options_b.connection.send_buffer = options_b.connection.receive_buffer = 64 * 1024;
  tcp_a.set_buffer_size(16 * 1024);
  tcp_b.set_buffer_size(16 * 1024);
  start();
  OpenFlow f = open();
  ASSERT_GE(f.app.get(), 0);

  // The application reads nothing; the server writes all it can.
  std::size_t written = 0;
  std::size_t most_buffered = 0;
  auto write_more = [&] {
    for (;;) {
      const std::size_t n = write_some(f.server.get(), pattern(written, 32 * 1024));
      if (n == 0) return;
      written += n;
    }
  };
  run_until(
      [&] {
        write_more();
        most_buffered = std::max(most_buffered, a->buffered_bytes() + b->buffered_bytes());
        return false;
      },
      seconds(3));
  const std::size_t stalled_at = written;
  // The bridges hold at most b's send buffer, a's receive buffer and a chunk
  // per flow; the rest of what the server wrote sits in the two socket pairs.
  constexpr std::size_t kBridgeBound = 2 * 64 * 1024 + 2 * kPumpChunk;
  EXPECT_LE(most_buffered, kBridgeBound);
  EXPECT_LE(stalled_at, kBridgeBound + 2 * 64 * 1024);
  EXPECT_GE(stalled_at, 64 * 1024u) << "bytes flowed before the stall";
  run_until(
      [&] {
        write_more();
        return false;
      },
      seconds(2));
  EXPECT_EQ(written, stalled_at) << "the server's bytes are still being taken";

  // The application reads again: everything arrives, in order, and more follows.
  std::string got;
  const std::size_t total = stalled_at + 500'000;
  ASSERT_TRUE(run_until([&] {
    if (written < total) written += write_some(f.server.get(), pattern(written, std::min<std::size_t>(32 * 1024, total - written)));
    read_into(f.app.get(), got);
    return got.size() >= total;
  }, seconds(60)));
  EXPECT_EQ(got.size(), total);
  EXPECT_TRUE(got == pattern(0, total)) << "bytes lost, duplicated or reordered";
}

// Connections whose readers stall hold at most their guaranteed 64 KiB each
// plus the shared budget, whatever their buffer sizes; once the readers read
// again every byte arrives.
TEST_F(StreamBridgeTest, AllConnectionsBuffersTogetherStayWithinTheMemoryBudget) {
  constexpr std::size_t kBudget = 96 * 1024;
  options_a.limits.memory = kBudget;
  options_b.limits.memory = kBudget;
  tcp_a.set_buffer_size(16 * 1024);
  tcp_b.set_buffer_size(16 * 1024);
  start();
  std::vector<OpenFlow> flows;
  for (std::uint16_t i = 0; i < 3; ++i) flows.push_back(open(SocketAddress{kHostA, static_cast<std::uint16_t>(40300 + i)}));
  for (const OpenFlow& f : flows) ASSERT_GE(f.app.get(), 0);

  // The applications read nothing; the servers write all they can.
  std::vector<std::size_t> written(flows.size(), 0);
  auto write_more = [&] {
    for (std::size_t k = 0; k < flows.size(); ++k) {
      for (;;) {
        const std::size_t n = write_some(flows[k].server.get(), pattern(written[k], 32 * 1024));
        if (n == 0) break;
        written[k] += n;
      }
    }
  };
  std::size_t most_charged = 0;
  run_until(
      [&] {
        write_more();
        most_charged = std::max({most_charged, a->memory().used(), b->memory().used()});
        return false;
      },
      seconds(3));
  EXPECT_LE(most_charged, kBudget);
  EXPECT_GT(most_charged, 0u) << "connections grew past their guaranteed bytes";
  // Each side: three connections, each a send and a receive ring of at most
  // 64 KiB unless charged, plus pump chunks; far below the 2 x 2 MiB each
  // connection's buffers could otherwise reach.
  constexpr std::size_t kBound = 3 * 2 * conn::MemoryBudget::kGuaranteedRing + kBudget + 3 * 2 * kPumpChunk;
  EXPECT_LE(a->buffered_bytes(), kBound);
  EXPECT_LE(b->buffered_bytes(), kBound);

  std::vector<std::string> got(flows.size());
  std::vector<std::size_t> total(flows.size());
  for (std::size_t k = 0; k < flows.size(); ++k) total[k] = written[k] + 100'000;
  ASSERT_TRUE(run_until([&] {
    bool done = true;
    for (std::size_t k = 0; k < flows.size(); ++k) {
      if (written[k] < total[k])
        written[k] += write_some(flows[k].server.get(),
                                 pattern(written[k], std::min<std::size_t>(32 * 1024, total[k] - written[k])));
      read_into(flows[k].app.get(), got[k]);
      done = done && got[k].size() >= total[k];
    }
    return done;
  }, seconds(60)));
  for (std::size_t k = 0; k < flows.size(); ++k) {
    EXPECT_TRUE(got[k] == pattern(0, total[k])) << "flow " << k << ": bytes lost, duplicated or reordered";
  }
}

TEST_F(StreamBridgeTest, FlowLimitRefusesWithAnRstAndCounts) {
  options_a.limits.max_flows = 1;
  start();
  ASSERT_TRUE(feed(*a, syn(kApp, kServer)));
  EXPECT_TRUE(host_a.tun.empty());
  const SocketAddress second{kHostA, 40002};
  ASSERT_TRUE(feed(*a, syn(second, kServer)));
  ASSERT_EQ(host_a.tun.size(), 1u);
  auto r = parse_tcp(host_a.tun.front());
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->has(tcp_flag::kRst));
  EXPECT_EQ(r->destination, second);
  EXPECT_EQ(a->stats().limit_refusals, 1u);
  EXPECT_EQ(a->stats().opened, 1u);
}

// Every local application shares the virtual address; the limit is per local
// user (the socket's owner, from the kernel), so one user's connections do
// not refuse another's.
TEST_F(StreamBridgeTest, PerSourceLimitHereCountsEachLocalUserApart) {
  options_a.limits.max_per_source = 1;
  start();
  const SocketAddress alice_app{kHostA, 40401};
  const SocketAddress alice_again{kHostA, 40402};
  const SocketAddress bob_app{kHostA, 40403};
  tcp_a.set_owner(alice_app, 1000);
  tcp_a.set_owner(alice_again, 1000);
  tcp_a.set_owner(bob_app, 1001);
  OpenFlow first = open(alice_app);
  ASSERT_GE(first.app.get(), 0);
  ASSERT_TRUE(feed(*a, syn(alice_again, kServer)));
  ASSERT_EQ(host_a.tun.size(), 1u) << "the same user's second connection is refused at once";
  auto r = parse_tcp(host_a.tun.front());
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->has(tcp_flag::kRst));
  EXPECT_EQ(r->destination, alice_again);
  host_a.tun.clear();
  EXPECT_EQ(a->stats().limit_refusals, 1u);
  OpenFlow other_user = open(bob_app);
  ASSERT_GE(other_user.app.get(), 0) << "another user on the same address is not refused";
  EXPECT_EQ(carry(other_user.app.get(), other_user.server.get(), "mine"), "mine");
}

TEST_F(StreamBridgeTest, PerSourceLimitOnTheFarSideRefusesWithAnRstAndCounts) {
  options_b.limits.max_per_source = 1;
  start();
  OpenFlow first = open();
  ASSERT_GE(first.app.get(), 0);
  const SocketAddress second{kHostA, 40002};
  ASSERT_TRUE(feed(*a, syn(second, kServer)));
  ASSERT_TRUE(run_until([&] { return !host_a.tun.empty(); }));
  auto r = parse_tcp(host_a.tun.front());
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->has(tcp_flag::kRst));
  EXPECT_EQ(r->destination, second);
  EXPECT_EQ(b->stats().limit_refusals, 1u);
  EXPECT_EQ(tcp_b.connect_calls().size(), 1u) << "the refused flow must not connect";
  // Other sources are not limited by this one's count.
  EXPECT_EQ(carry(first.app.get(), first.server.get(), "still fine"), "still fine");
}

TEST_F(StreamBridgeTest, NatKeysLingerAfterAFlowEndsThenGo) {
  options_a.limits.linger = seconds(60);
  start();
  tcp_b.set_connect_outcome(kApp, FakeTcpEndpoints::ConnectOutcome::kRefuse);
  ASSERT_TRUE(feed(*a, syn(kApp, kServer)));
  ASSERT_TRUE(run_until([&] { return !host_a.tun.empty(); }));  // the RST
  host_a.tun.clear();
  EXPECT_EQ(a->flow_count(), 1u) << "the flow lingers";
  // A late segment on the 4-tuple is still the bridge's (rewritten, not a DATAGRAM).
  auto late = segment(kApp, kServer, tcp_flag::kAck);
  EXPECT_TRUE(a->on_tun_segment(late));
  loop.run_for(seconds(59));
  EXPECT_EQ(a->flow_count(), 1u);
  loop.run_for(seconds(2));
  EXPECT_EQ(a->flow_count(), 0u);
  auto later = segment(kApp, kServer, tcp_flag::kAck);
  EXPECT_FALSE(a->on_tun_segment(later)) << "the keys are gone";
}

// The kernel's copy of the NAT (bw_tun_nat) holds what the bridge's does:
// every rule as it is installed, rewriting as the bridge itself would, and
// each gone when its flow is.
TEST_F(StreamBridgeTest, TheKernelIsToldEveryNatRuleAndItsEnd) {
  options_a.limits.linger = seconds(60);
  options_b.limits.linger = seconds(60);
  start();
  OpenFlow f = open();
  ASSERT_EQ(carry(f.app.get(), f.server.get(), "x"), "x");
  for (auto [host, bridge] : {std::pair{&host_a, a.get()}, std::pair{&host_b, b.get()}}) {
    ASSERT_EQ(host->kernel_nat.size(), 2u) << "one rule each way";
    for (const auto& [key, rule] : host->kernel_nat) {
      host->tun.clear();
      auto ack = segment(key.source, key.destination, tcp_flag::kAck);
      ASSERT_TRUE(bridge->on_tun_segment(ack));
      ASSERT_EQ(host->tun.size(), 1u);
      auto r = parse_tcp(host->tun.front());
      ASSERT_TRUE(r);
      EXPECT_EQ(r->source, rule.source);
      EXPECT_EQ(r->destination, rule.destination);
    }
  }
  a->remove_session(kSession);
  b->remove_session(kSession);
  loop.run_for(seconds(61));
  EXPECT_EQ(a->flow_count(), 0u);
  EXPECT_TRUE(host_a.kernel_nat.empty());
  EXPECT_TRUE(host_b.kernel_nat.empty());
}

TEST_F(StreamBridgeTest, ANewSynOnALingeringFourTupleReplacesItsKeysAtOnce) {
  start();
  tcp_b.set_connect_outcome(kApp, FakeTcpEndpoints::ConnectOutcome::kRefuse);
  ASSERT_TRUE(feed(*a, syn(kApp, kServer)));
  ASSERT_TRUE(run_until([&] { return !host_a.tun.empty(); }));
  host_a.tun.clear();
  ASSERT_EQ(a->flow_count(), 1u);
  ++connects_seen_;  // the refused one
  tcp_b.set_connect_outcome(kApp, FakeTcpEndpoints::ConnectOutcome::kSucceed);
  OpenFlow f = open();  // same 4-tuple, at once
  EXPECT_EQ(a->flow_count(), 1u) << "the lingering flow gave way";
  EXPECT_EQ(a->stats().opened, 2u);
  ASSERT_GE(f.app.get(), 0);
  EXPECT_EQ(carry(f.app.get(), f.server.get(), "again"), "again");
}

TEST_F(StreamBridgeTest, AcceptOutOfDescriptorsPausesTheListenerInsteadOfSpinning) {
  start();
  // Open up to the point where the listener must accept.
  ASSERT_TRUE(feed(*a, syn(kApp, kServer)));
  ASSERT_TRUE(run_until([&] { return !host_a.tun.empty(); }));
  auto r = parse_tcp(host_a.tun.front());
  ASSERT_TRUE(r);
  tcp_a.fail_accepts_with(kHostA, EMFILE);
  auto app = tcp_a.push_connection(kHostA, r->source);
  ASSERT_TRUE(app);
  const std::size_t calls_before = tcp_a.accept_calls(kHostA);
  // A spinning listener would make thousands of calls without time moving.
  run_until([&] { return tcp_a.accept_calls(kHostA) > calls_before + 1000; }, seconds(1));
  const std::size_t calls = tcp_a.accept_calls(kHostA) - calls_before;
  EXPECT_GE(calls, 2u) << "it tries again";
  EXPECT_LE(calls, 12u) << "about one try per 100 ms pause";
  EXPECT_GE(a->stats().listener.accept_pauses, 2u);
  EXPECT_EQ(tcp_a.pending_connections(kHostA), 1u) << "the connection waits in the queue";

  tcp_a.fail_accepts_with(kHostA, 0);
  loop.run_for(milliseconds(150));
  EXPECT_EQ(tcp_a.pending_connections(kHostA), 0u);
  auto server = tcp_b.take_server(kApp);
  ASSERT_TRUE(server);
  EXPECT_EQ(carry(app->get(), server->get(), "accepted at last"), "accepted at last");
}

// A flow refused while its SYN was held never had a kernel socket on its
// port P: the port is free at once, not after the linger time (1 100 refused
// connects a second would otherwise hold every port).
TEST_F(StreamBridgeTest, ARefusedFlowFreesItsPortAtOnce) {
  options_a.limits.nat_ports = 2;
  start();
  tcp_b.set_connect_outcome(kApp, FakeTcpEndpoints::ConnectOutcome::kRefuse);
  for (std::uint16_t i = 0; i < 5; ++i) {
    const SocketAddress app{kHostA, static_cast<std::uint16_t>(40100 + i)};
    tcp_b.set_connect_outcome(app, FakeTcpEndpoints::ConnectOutcome::kRefuse);
    ASSERT_TRUE(feed(*a, syn(app, kServer)));
    ASSERT_TRUE(run_until([&] { return !host_a.tun.empty(); }));
    host_a.tun.clear();
  }
  EXPECT_EQ(tcp_b.connect_calls().size(), 5u) << "each reached the far side: none lacked a port";
  EXPECT_EQ(a->stats().refused, 5u);
  EXPECT_EQ(a->stats().ports_reclaimed, 0u);
}

// With every port held by flows that are over, the one that ended first gives
// its port up to a new flow.
TEST_F(StreamBridgeTest, WhenEveryPortIsHeldTheOldestEndedFlowGivesItsUp) {
  options_a.limits.nat_ports = 2;
  options_a.limits.linger = seconds(60);
  start();
  OpenFlow first = open(SocketAddress{kHostA, 40201});
  OpenFlow second = open(SocketAddress{kHostA, 40202});
  ASSERT_NE(first.nat_port, 0);
  ASSERT_NE(second.nat_port, 0);
  // Both end (their session goes) and linger, holding both ports.
  a->remove_session(kSession);
  b->remove_session(kSession);
  loop.run_for(seconds(1));  // the resets in flight arrive while there is no session
  a->add_session(kSession, SessionRole::kInitiator);
  b->add_session(kSession, SessionRole::kResponder);
  ASSERT_EQ(a->flow_count(), 2u);
  OpenFlow third = open(SocketAddress{kHostA, 40203});
  ASSERT_GE(third.app.get(), 0);
  EXPECT_EQ(third.nat_port, first.nat_port) << "the flow that ended first gave its port";
  EXPECT_EQ(a->stats().ports_reclaimed, 1u);
  EXPECT_EQ(carry(third.app.get(), third.server.get(), "through"), "through");
}

TEST_F(StreamBridgeTest, ASessionGoingAwayResetsItsFlows) {
  start();
  OpenFlow f = open();
  ASSERT_GE(f.app.get(), 0);
  ASSERT_EQ(carry(f.app.get(), f.server.get(), "x"), "x");
  a->remove_session(kSession);
  EXPECT_EQ(a->stats().resets, 1u);
  EXPECT_EQ(tcp_a.abortive_closes(), 1u);
  std::vector<std::uint16_t> ids;
  a->connection_ids(kSession, ids);
  EXPECT_TRUE(ids.empty());
}

// A connection that closes here (the passive close: the server closed
// first) is gone from the table at the peer's last ACK, but packets the peer
// sent before are still on the way: its ports stay listened on for two
// seconds, then go.
TEST_F(StreamBridgeTest, AnEndedConnectionsPortsStayForTwoSeconds) {
  start();
  OpenFlow f = open();
  ASSERT_GE(f.app.get(), 0);
  ASSERT_EQ(carry(f.server.get(), f.app.get(), "answer"), "answer");
  std::vector<std::uint16_t> live;
  a->connection_ids(kSession, live);
  ASSERT_EQ(live.size(), 1u);
  ASSERT_TRUE(close_server_first(f));
  ASSERT_TRUE(run_until([&] { return a->stats().completed == 1; }, seconds(5)));
  const TimePoint ended = loop.now();
  std::vector<std::uint16_t> ids;
  a->connection_ids(kSession, ids);
  EXPECT_EQ(ids, live) << "the ended connection's ports went at once";
  loop.run_until(ended + StreamBridge::kEndedPortsLinger - milliseconds(100));
  ids.clear();
  a->connection_ids(kSession, ids);
  EXPECT_EQ(ids, live);
  loop.run_until(ended + StreamBridge::kEndedPortsLinger + milliseconds(1));
  ids.clear();
  a->connection_ids(kSession, ids);
  EXPECT_TRUE(ids.empty());
}

TEST_F(StreamBridgeTest, DataStuckInAnOutageLeavesAsSoonAsThePeerIsBack) {
  start();
  OpenFlow f = open();
  ASSERT_GE(f.app.get(), 0);
  ASSERT_EQ(carry(f.app.get(), f.server.get(), "before"), "before");
  // 90 s without a path: what the application writes is retransmitted with
  // a backed-off timer, tens of seconds apart by the end.
  host_a.down = true;
  host_b.down = true;
  ASSERT_EQ(write_some(f.app.get(), "during"), 6u);
  loop.run_for(seconds(90));
  std::string got;
  read_into(f.server.get(), got);
  EXPECT_TRUE(got.empty());
  // The path is back; without being told, the connection would wait for its
  // timer (not within a second).
  host_a.down = false;
  host_b.down = false;
  EXPECT_FALSE(run_until(
      [&] {
        read_into(f.server.get(), got);
        return !got.empty();
      },
      milliseconds(100)));
  // The session heard from its peer: the bytes go now, one round trip.
  EXPECT_EQ(b->on_peer_back(kSession), 0u);  // b has nothing in flight
  EXPECT_EQ(a->on_peer_back(kSession), 1u);
  const TimePoint back = loop.now();
  EXPECT_TRUE(run_until(
      [&] {
        read_into(f.server.get(), got);
        return got == "during";
      },
      milliseconds(50)));
  EXPECT_LE(loop.now() - back, 2 * kLatency);
  EXPECT_EQ(a->stats().resets, 0u);
  // The same connection carries on both ways.
  EXPECT_EQ(carry(f.server.get(), f.app.get(), "after"), "after");
  EXPECT_EQ(a->on_peer_back(kSession), 0u);
  EXPECT_EQ(a->on_peer_back(kSession + 1), 0u);  // an unknown session
}

}  // namespace
}  // namespace buckwild::daemon

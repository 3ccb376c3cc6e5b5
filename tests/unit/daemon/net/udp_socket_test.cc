#include "daemon/net/udp_socket.h"

#include <gtest/gtest.h>

#include <poll.h>

#include <array>
#include <chrono>
#include <string>
#include <vector>

#include "daemon/net/netlink.h"
#include "daemon/net/packet_pool.h"
#include "daemon/net/udp_control.h"
#include "support/daemon_test_support.h"

namespace buckwild::daemon {
namespace {

// "IP:PORT" with port 0 allowed (ask the kernel for one), unlike a peer endpoint.
SocketAddress addr(const char* text) {
  std::string t(text);
  auto colon = t.rfind(':');
  std::string host = t.substr(0, colon);
  if (host.front() == '[') host = host.substr(1, host.size() - 2);
  auto ip = IpAddress::parse(host);
  EXPECT_TRUE(ip) << text;
  return SocketAddress{ip.value_or(IpAddress{}),
                       static_cast<std::uint16_t>(std::stoi(t.substr(colon + 1)))};
}

std::unique_ptr<UdpSocket> bind_or_fail(const char* at) {
  UdpSocketOptions o;
  o.bind_address = addr(at);
  auto s = UdpSocket::bind(o);
  if (!s) ADD_FAILURE() << s.error().message;
  return s ? std::move(*s) : nullptr;
}

bool wait_readable(int fd, int ms = 2000) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) == 1;
}

// Receives until `want` datagrams arrived (or 2 s pass) in batches of up to
// 64 into pool buffers; returns them in order.
std::vector<std::vector<std::uint8_t>> receive_all(UdpSocket& s, std::size_t want,
                                                   std::vector<ReceivedDatagram>* meta = nullptr) {
  PacketPool pool(64, 2048);
  std::vector<std::vector<std::uint8_t>> got;
  while (got.size() < want && wait_readable(s.fd())) {
    std::array<PacketPool::Buffer, 64> bufs;
    std::array<ReceivedDatagram, 64> slots;
    for (std::size_t i = 0; i < slots.size(); ++i) {
      bufs[i] = pool.acquire();
      slots[i].buffer = bufs[i].space();
    }
    auto n = s.receive_batch(slots);
    EXPECT_TRUE(n) << (n ? "" : n.error().message);
    if (!n) break;
    for (std::size_t i = 0; i < *n; ++i) {
      got.emplace_back(slots[i].buffer.begin(), slots[i].buffer.begin() + slots[i].length);
      if (meta) meta->push_back(slots[i]);
    }
  }
  return got;
}

TEST(UdpSocketTest, BatchedSendAndReceiveOnLoopback) {
  auto a = bind_or_fail("127.0.0.1:0");
  auto b = bind_or_fail("127.0.0.1:0");
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->local_address().port, 0);
  EXPECT_EQ(a->local_address().ip, *IpAddress::parse("127.0.0.1"));

  // 150 datagrams: more than one system call's worth (64) each way.
  std::vector<std::vector<std::uint8_t>> payloads;
  for (int i = 0; i < 150; ++i) {
    std::vector<std::uint8_t> p(static_cast<std::size_t>(1 + i * 9));
    for (std::size_t j = 0; j < p.size(); ++j) p[j] = static_cast<std::uint8_t>(i + j);
    payloads.push_back(std::move(p));
  }
  std::vector<OutgoingDatagram> out;
  for (const auto& p : payloads) out.push_back({p, b->local_address(), {}});
  auto sent = a->send_batch(out);
  ASSERT_TRUE(sent) << sent.error().message;
  EXPECT_EQ(*sent, 150u);
  EXPECT_EQ(a->send_errors(), 0u);

  std::vector<ReceivedDatagram> meta;
  auto got = receive_all(*b, 150, &meta);
  ASSERT_EQ(got.size(), 150u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i], payloads[i]) << i;
    EXPECT_EQ(meta[i].source, a->local_address());
    // The local address and port each datagram arrived on.
    EXPECT_EQ(meta[i].destination, b->local_address());
    EXPECT_FALSE(meta[i].truncated);
  }
}

// The kernel stamps each datagram as it arrives: one read 200 ms later says
// how long it waited, one read at once says (almost) nothing.
TEST(UdpSocketTest, ADatagramReadLateSaysHowLongItWaited) {
  auto a = bind_or_fail("127.0.0.1:0");
  auto b = bind_or_fail("127.0.0.1:0");
  ASSERT_TRUE(a && b);
  const std::vector<std::uint8_t> payload{1, 2, 3};
  std::vector<OutgoingDatagram> out{{payload, b->local_address(), {}}};
  // The first socket on the host to ask for stamps turns them on in a kernel
  // work item, later: until then a datagram is stamped when it is read. Wait
  // (up to 2 s) until one read 20 ms late says so.
  bool stamping = false;
  for (int i = 0; i < 100 && !stamping; ++i) {
    ASSERT_EQ(a->send_batch(out).value_or(0), 1u);
    ASSERT_TRUE(wait_readable(b->fd()));
    ::poll(nullptr, 0, 20);
    std::vector<ReceivedDatagram> first;
    ASSERT_EQ(receive_all(*b, 1, &first).size(), 1u);
    stamping = first[0].queued_for >= milliseconds(15);
  }
  ASSERT_TRUE(stamping) << "the kernel never stamped a datagram on arrival";
  ASSERT_EQ(a->send_batch(out).value_or(0), 1u);
  ASSERT_TRUE(wait_readable(b->fd()));
  ::poll(nullptr, 0, 200);
  std::vector<ReceivedDatagram> meta;
  ASSERT_EQ(receive_all(*b, 1, &meta).size(), 1u);
  EXPECT_GE(meta[0].queued_for, milliseconds(195));
  EXPECT_LT(meta[0].queued_for, seconds(2));

  // Read at once: it waited no longer than the time from its sending to its
  // reading (a loaded machine may stretch that, never the other way round).
  const auto sent = std::chrono::steady_clock::now();
  ASSERT_EQ(a->send_batch(out).value_or(0), 1u);
  meta.clear();
  ASSERT_EQ(receive_all(*b, 1, &meta).size(), 1u);
  const auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::steady_clock::now() - sent)
                           .count();
  EXPECT_LE(meta[0].queued_for, static_cast<Duration>(elapsed) + milliseconds(1));
}

TEST(UdpSocketTest, NothingWaitingReturnsZero) {
  auto a = bind_or_fail("127.0.0.1:0");
  ASSERT_TRUE(a);
  std::array<std::uint8_t, 16> buf;
  std::array<ReceivedDatagram, 1> slot;
  slot[0].buffer = buf;
  auto n = a->receive_batch(slot);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0u);
}

TEST(UdpSocketTest, Ipv6Loopback) {
  UdpSocketOptions o;
  o.bind_address = addr("[::1]:0");
  auto a = UdpSocket::bind(o);
  if (!a && a.error().sys_errno == EADDRNOTAVAIL) GTEST_SKIP() << "this host has no ::1";
  ASSERT_TRUE(a) << a.error().message;
  auto b = UdpSocket::bind(o);
  ASSERT_TRUE(b);
  std::string m = "six";
  std::array<OutgoingDatagram, 1> out = {OutgoingDatagram{
      {reinterpret_cast<const std::uint8_t*>(m.data()), m.size()}, (*b)->local_address(), {}}};
  ASSERT_EQ(*(*a)->send_batch(out), 1u);
  std::vector<ReceivedDatagram> meta;
  auto got = receive_all(**b, 1, &meta);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(std::string(got[0].begin(), got[0].end()), "six");
  EXPECT_EQ(meta[0].source, (*a)->local_address());
  EXPECT_EQ(meta[0].destination, (*b)->local_address());
  EXPECT_EQ(meta[0].destination.ip, *IpAddress::parse("::1"));
}

TEST(UdpSocketTest, AddressInUseSaysWhichPort) {
  auto a = bind_or_fail("127.0.0.1:0");
  ASSERT_TRUE(a);
  UdpSocketOptions o;
  o.bind_address = a->local_address();
  auto b = UdpSocket::bind(o);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().sys_errno, EADDRINUSE);
  std::string port = std::to_string(a->local_address().port);
  EXPECT_NE(b.error().message.find("port " + port + " is already in use"), std::string::npos)
      << b.error().message;
  EXPECT_NE(b.error().message.find("127.0.0.1:" + port), std::string::npos) << b.error().message;
}

TEST(UdpSocketTest, AddressNotOfThisHost) {
  UdpSocketOptions o;
  o.bind_address = addr("198.51.100.77:0");  // TEST-NET-2: documentation only
  auto s = UdpSocket::bind(o);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().sys_errno, EADDRNOTAVAIL);
  EXPECT_NE(s.error().message.find("198.51.100.77 is not an address of this host"),
            std::string::npos)
      << s.error().message;
}

TEST(UdpSocketTest, TruncationIsReported) {
  auto a = bind_or_fail("127.0.0.1:0");
  auto b = bind_or_fail("127.0.0.1:0");
  ASSERT_TRUE(a && b);
  std::vector<std::uint8_t> big(1000, 0x5a);
  std::array<OutgoingDatagram, 1> out = {OutgoingDatagram{big, b->local_address(), {}}};
  ASSERT_EQ(*a->send_batch(out), 1u);
  ASSERT_TRUE(wait_readable(b->fd()));
  std::array<std::uint8_t, 100> small;
  std::array<ReceivedDatagram, 1> slot;
  slot[0].buffer = small;
  ASSERT_EQ(*b->receive_batch(slot), 1u);
  EXPECT_EQ(slot[0].length, 100u);
  EXPECT_TRUE(slot[0].truncated);
}

TEST(UdpSocketTest, ExplicitSourceAddressIsUsed) {
  auto a = bind_or_fail("127.0.0.1:0");
  auto b = bind_or_fail("127.0.0.1:0");
  ASSERT_TRUE(a && b);
  std::string m = "from";
  std::array<OutgoingDatagram, 1> out = {
      OutgoingDatagram{{reinterpret_cast<const std::uint8_t*>(m.data()), m.size()},
                       b->local_address(),
                       *IpAddress::parse("127.0.0.1")}};
  ASSERT_EQ(*a->send_batch(out), 1u);
  EXPECT_EQ(a->send_errors(), 0u);
  std::vector<ReceivedDatagram> meta;
  ASSERT_EQ(receive_all(*b, 1, &meta).size(), 1u);
  EXPECT_EQ(meta[0].source, a->local_address());
}

TEST(UdpSocketTest, DatagramsTheSocketCannotSendAreCountedAndSkipped) {
  auto a = bind_or_fail("127.0.0.1:0");
  auto b = bind_or_fail("127.0.0.1:0");
  ASSERT_TRUE(a && b);
  std::string m = "ok";
  Bytes payload{reinterpret_cast<const std::uint8_t*>(m.data()), m.size()};
  std::vector<std::uint8_t> huge(70'000);  // larger than any UDP datagram: EMSGSIZE
  std::vector<OutgoingDatagram> out = {
      {payload, addr("[fd00::1]:9"), {}},  // IPv6 destination on an IPv4 socket
      {payload, b->local_address(), {}},
      {huge, b->local_address(), {}},
      {payload, b->local_address(), {}},
  };
  auto sent = a->send_batch(out);
  ASSERT_TRUE(sent) << sent.error().message;
  EXPECT_EQ(*sent, 4u);  // all consumed
  EXPECT_EQ(a->send_errors(), 2u);
  EXPECT_EQ(a->last_send_errno(), EMSGSIZE);
  EXPECT_EQ(receive_all(*b, 2).size(), 2u);
}

TEST(UdpSocketTest, BufferSizesAreApplied) {
  UdpSocketOptions o;
  o.bind_address = addr("127.0.0.1:0");
  o.receive_buffer_bytes = 1 << 20;
  o.send_buffer_bytes = 1 << 19;
  auto s = UdpSocket::bind(o);
  ASSERT_TRUE(s);
  if (testing::is_root()) {
    // With CAP_NET_ADMIN the size is forced past the sysctl cap; the kernel
    // reports double what was set.
    EXPECT_EQ((*s)->receive_buffer_bytes(), 2 << 20);
    EXPECT_EQ((*s)->send_buffer_bytes(), 2 << 19);
  } else {
    EXPECT_GT((*s)->receive_buffer_bytes(), 0);
  }
}

// A dual-stack "::" socket, bound on every interface, so it runs in a private
// network namespace where the only interface is a loopback of its own.
TEST(UdpSocketTest, DualStackWildcardSeesIpv4PeersAsIpv4) {
  if (!testing::is_root()) GTEST_SKIP() << "needs root for a private network namespace";
  testing::run_isolated(CLONE_NEWNET, [] {
    auto nl = Netlink::open();
    ASSERT_TRUE(nl);
    ASSERT_TRUE(nl->set_link(1, std::nullopt, Netlink::LinkState::kUp));  // lo
    UdpSocketOptions o;
    o.bind_address = addr("[::]:4500");
    auto wild = UdpSocket::bind(o);
    ASSERT_TRUE(wild) << wild.error().message;
    EXPECT_EQ((*wild)->local_address().to_string(), "[::]:4500");
    auto v4 = bind_or_fail("127.0.0.1:0");
    ASSERT_TRUE(v4);
    std::string m = "v4";
    std::array<OutgoingDatagram, 1> out = {OutgoingDatagram{
        {reinterpret_cast<const std::uint8_t*>(m.data()), m.size()}, addr("127.0.0.1:4500"), {}}};
    ASSERT_EQ(*v4->send_batch(out), 1u);
    std::vector<ReceivedDatagram> meta;
    ASSERT_EQ(receive_all(**wild, 1, &meta).size(), 1u);
    EXPECT_EQ(meta[0].source, v4->local_address());
    EXPECT_EQ(meta[0].destination, addr("127.0.0.1:4500"));
    // And back, from the dual-stack socket to the IPv4 one, with an IPv4 source.
    out[0].destination = v4->local_address();
    out[0].source = *IpAddress::parse("127.0.0.1");
    ASSERT_EQ(*(*wild)->send_batch(out), 1u);
    EXPECT_EQ((*wild)->send_errors(), 0u) << (*wild)->last_send_errno();
    std::vector<ReceivedDatagram> back;
    ASSERT_EQ(receive_all(*v4, 1, &back).size(), 1u);
    EXPECT_EQ(back[0].source, addr("127.0.0.1:4500"));
  });
}

// --- UDP GSO / GRO

std::vector<OutgoingDatagram> datagrams_of(const std::vector<std::vector<std::uint8_t>>& payloads,
                                           const SocketAddress& to) {
  std::vector<OutgoingDatagram> out;
  for (const auto& p : payloads) out.push_back({p, to, {}});
  return out;
}

TEST(GsoRunTest, EqualDatagramsToOneDestinationAreOneRun) {
  const SocketAddress to = addr("192.0.2.7:4000");
  std::vector<std::vector<std::uint8_t>> p(10, std::vector<std::uint8_t>(1200));
  EXPECT_EQ(gso_run_length(datagrams_of(p, to)), 10u);
  EXPECT_EQ(gso_run_length({}), 0u);
  // A shorter one is the run's last; a longer one starts the next run.
  p[6].resize(300);
  EXPECT_EQ(gso_run_length(datagrams_of(p, to)), 7u);
  p[6].resize(1200);
  p[4].resize(1300);
  EXPECT_EQ(gso_run_length(datagrams_of(p, to)), 4u);
  // An empty datagram never joins or starts one.
  p[4].resize(0);
  EXPECT_EQ(gso_run_length(datagrams_of(p, to)), 4u);
  p[0].resize(0);
  EXPECT_EQ(gso_run_length(datagrams_of(p, to)), 1u);
}

TEST(GsoRunTest, AnotherDestinationOrSourceEndsTheRun) {
  const SocketAddress to = addr("192.0.2.7:4000");
  std::vector<std::vector<std::uint8_t>> p(8, std::vector<std::uint8_t>(1000));
  auto out = datagrams_of(p, to);
  out[5].destination.port = 4001;  // the port hopped
  EXPECT_EQ(gso_run_length(out), 5u);
  EXPECT_EQ(gso_run_length(std::span(out).subspan(5)), 1u);
  out[5].destination = to;
  out[3].destination.ip = *IpAddress::parse("192.0.2.8");
  EXPECT_EQ(gso_run_length(out), 3u);
  out[3].destination = to;
  out[2].source = *IpAddress::parse("192.0.2.1");
  EXPECT_EQ(gso_run_length(out), 2u);
  EXPECT_EQ(gso_run_length(std::span(out).subspan(2)), 1u);
}

TEST(GsoRunTest, AtMost64DatagramsAnd64KiBARun) {
  const SocketAddress to = addr("192.0.2.7:4000");
  std::vector<std::vector<std::uint8_t>> small(100, std::vector<std::uint8_t>(100));
  EXPECT_EQ(gso_run_length(datagrams_of(small, to)), kMaxGsoSegments);
  std::vector<std::vector<std::uint8_t>> big(60, std::vector<std::uint8_t>(1400));
  EXPECT_EQ(gso_run_length(datagrams_of(big, to)), kMaxGsoBytes / 1400);  // 46
  // A datagram as large as a run may be alone.
  std::vector<std::vector<std::uint8_t>> huge(2, std::vector<std::uint8_t>(40000));
  EXPECT_EQ(gso_run_length(datagrams_of(huge, to)), 1u);
}

// Reads with UDP_GRO into 64 KiB slots and splits what the kernel coalesced.
std::vector<std::vector<std::uint8_t>> receive_coalesced(UdpSocket& s, std::size_t want,
                                                         std::size_t* coalesced_reads) {
  std::vector<std::uint8_t> arena(8 * 65536);
  std::vector<std::vector<std::uint8_t>> got;
  for (int round = 0; round < 100 && got.size() < want && wait_readable(s.fd()); ++round) {
    std::array<ReceivedDatagram, 8> slots;
    for (std::size_t i = 0; i < slots.size(); ++i) {
      slots[i].buffer = MutableBytes(arena.data() + i * 65536, 65536);
    }
    auto n = s.receive_batch(slots);
    EXPECT_TRUE(n) << (n ? "" : n.error().message);
    if (!n) break;
    for (std::size_t i = 0; i < *n; ++i) {
      EXPECT_FALSE(slots[i].truncated);
      const GroSplit split = split_coalesced(slots[i].length, slots[i].segment_size);
      EXPECT_GT(split.count, 0u);
      if (split.count > 1) ++*coalesced_reads;
      for (std::size_t k = 0; k < split.count; ++k) {
        const MutableBytes d = split.datagram(slots[i].buffer.first(slots[i].length), k);
        got.emplace_back(d.begin(), d.end());
      }
    }
  }
  return got;
}

// One sendmmsg of GSO runs on loopback, read with UDP_GRO: every datagram
// arrives intact and in order, most of them in coalesced reads.
TEST(UdpSocketTest, GsoSendsAndGroReadsCarryEveryDatagramIntact) {
  auto a = bind_or_fail("127.0.0.1:0");
  auto b = bind_or_fail("127.0.0.1:0");
  auto c = bind_or_fail("127.0.0.1:0");
  ASSERT_TRUE(a && b && c);
  if (!a->sends_gso()) GTEST_SKIP() << "this kernel has no UDP_SEGMENT";
  ASSERT_TRUE(b->enable_coalesced_reads());
  EXPECT_TRUE(b->coalesces_reads());
  EXPECT_FALSE(c->coalesces_reads());

  // Runs to b of 1200-byte datagrams (each 40th shorter, ending a run), and
  // every 25th to c: 150 datagrams in all.
  std::vector<std::vector<std::uint8_t>> payloads;
  std::vector<OutgoingDatagram> out;
  std::vector<std::vector<std::uint8_t>> want_b, want_c;
  for (int i = 0; i < 150; ++i) {
    std::vector<std::uint8_t> p(i % 40 == 39 ? 500 : 1200);
    for (std::size_t j = 0; j < p.size(); ++j) p[j] = static_cast<std::uint8_t>(i * 7 + j);
    payloads.push_back(std::move(p));
  }
  for (int i = 0; i < 150; ++i) {
    const bool to_c = i % 25 == 24;
    out.push_back({payloads[i], (to_c ? c : b)->local_address(), {}});
    (to_c ? want_c : want_b).push_back(payloads[i]);
  }
  const UdpOffloadStats before = udp_offload_stats();
  auto sent = a->send_batch(out);
  ASSERT_TRUE(sent) << sent.error().message;
  EXPECT_EQ(*sent, 150u);
  EXPECT_EQ(a->send_errors(), 0u);
  const UdpOffloadStats& after = udp_offload_stats();
  EXPECT_GT(after.gso_sends, before.gso_sends);
  // All but the 6 datagrams to c went in runs.
  EXPECT_EQ(after.gso_datagrams - before.gso_datagrams, 144u);

  std::size_t coalesced = 0;
  auto got_b = receive_coalesced(*b, want_b.size(), &coalesced);
  ASSERT_EQ(got_b.size(), want_b.size());
  for (std::size_t i = 0; i < got_b.size(); ++i) EXPECT_EQ(got_b[i], want_b[i]) << i;
  EXPECT_GT(coalesced, 0u);
  // c has no UDP_GRO: the kernel hands it datagram by datagram.
  auto got_c = receive_all(*c, want_c.size());
  ASSERT_EQ(got_c.size(), want_c.size());
  for (std::size_t i = 0; i < got_c.size(); ++i) EXPECT_EQ(got_c[i], want_c[i]) << i;
}

// With [network] udp_offload = false nothing changes: one datagram a message,
// and no coalesced reads.
TEST(UdpSocketTest, WithoutOffloadEveryDatagramGoesAlone) {
  UdpSocketOptions o;
  o.bind_address = addr("127.0.0.1:0");
  o.offload = false;
  auto a = UdpSocket::bind(o);
  auto b = UdpSocket::bind(o);
  ASSERT_TRUE(a && b);
  EXPECT_FALSE((*a)->sends_gso());
  EXPECT_FALSE((*b)->enable_coalesced_reads());
  std::vector<std::vector<std::uint8_t>> p(20, std::vector<std::uint8_t>(1000, 9));
  const UdpOffloadStats before = udp_offload_stats();
  ASSERT_EQ((*a)->send_batch(datagrams_of(p, (*b)->local_address())).value_or(0), 20u);
  EXPECT_EQ(udp_offload_stats().gso_sends, before.gso_sends);
  EXPECT_EQ(receive_all(**b, 20).size(), 20u);
}

}  // namespace
}  // namespace buckwild::daemon

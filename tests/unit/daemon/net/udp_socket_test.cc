#include "daemon/net/udp_socket.h"

#include <gtest/gtest.h>

#include <poll.h>

#include <array>
#include <chrono>
#include <string>
#include <vector>

#include "daemon/net/netlink.h"
#include "daemon/net/packet_pool.h"
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

}  // namespace
}  // namespace buckwild::daemon

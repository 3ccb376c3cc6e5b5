// The real TUN device, in a private network namespace (root only): created,
// configured over netlink, and carrying packets both ways with the kernel.
#include "daemon/net/tun_device.h"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <net/if.h>
#include <poll.h>
#include <sys/syscall.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/inner/tcp_segment.h"
#include "daemon/net/netlink.h"
#include "daemon/net/udp_socket.h"
#include "support/daemon_test_support.h"

namespace buckwild::daemon {
namespace {

using testing::is_root;
using testing::run_isolated;

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}
Cidr cidr(const char* text) {
  return *Cidr::parse(text);
}

std::uint16_t checksum(const std::uint8_t* data, std::size_t len) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i + 1 < len; i += 2)
    sum += static_cast<std::uint32_t>(data[i] << 8 | data[i + 1]);
  if (len % 2) sum += static_cast<std::uint32_t>(data[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

// An IPv4 UDP datagram (UDP checksum 0: "none", allowed for IPv4).
std::vector<std::uint8_t> ipv4_udp(IpAddress src, std::uint16_t sport, IpAddress dst,
                                   std::uint16_t dport, const std::string& payload) {
  std::vector<std::uint8_t> p(28 + payload.size());
  auto total = static_cast<std::uint16_t>(p.size());
  p[0] = 0x45;
  p[2] = static_cast<std::uint8_t>(total >> 8);
  p[3] = static_cast<std::uint8_t>(total);
  p[8] = 64;  // TTL
  p[9] = 17;  // UDP
  std::copy_n(src.bytes().begin(), 4, p.begin() + 12);
  std::copy_n(dst.bytes().begin(), 4, p.begin() + 16);
  std::uint16_t c = checksum(p.data(), 20);
  p[10] = static_cast<std::uint8_t>(c >> 8);
  p[11] = static_cast<std::uint8_t>(c);
  auto udp_len = static_cast<std::uint16_t>(8 + payload.size());
  p[20] = static_cast<std::uint8_t>(sport >> 8);
  p[21] = static_cast<std::uint8_t>(sport);
  p[22] = static_cast<std::uint8_t>(dport >> 8);
  p[23] = static_cast<std::uint8_t>(dport);
  p[24] = static_cast<std::uint8_t>(udp_len >> 8);
  p[25] = static_cast<std::uint8_t>(udp_len);
  std::copy(payload.begin(), payload.end(), p.begin() + 28);
  return p;
}

bool wait_readable(int fd, int ms = 2000) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) == 1;
}

// Reads packets from the TUN until one satisfies `match` (the kernel also
// sends its own, such as IPv6 router solicitations), or 2 s pass.
std::optional<std::vector<std::uint8_t>> read_until(
    TunDevice& tun, const std::function<bool(const std::vector<std::uint8_t>&)>& match) {
  for (int i = 0; i < 50 && wait_readable(tun.fd()); ++i) {
    std::array<std::uint8_t, 2048> buf;
    auto n = tun.read_packet(buf);
    EXPECT_TRUE(n);
    if (!n || *n == 0) continue;
    std::vector<std::uint8_t> p(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
    if (match(p)) return p;
  }
  return std::nullopt;
}

void bring_up_loopback() {
  auto nl = Netlink::open();
  ASSERT_TRUE(nl) << nl.error().message;
  ASSERT_TRUE(nl->set_link(1, std::nullopt, Netlink::LinkState::kUp));
}

TEST(LinuxTunDeviceTest, RefusesBadNamesWithoutTouchingTheKernel) {
  auto t = LinuxTunDevice::open("a-name-that-is-far-too-long");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().sys_errno, EINVAL);
  EXPECT_NE(t.error().message.find("1..15 characters"), std::string::npos) << t.error().message;
  EXPECT_FALSE(LinuxTunDevice::open(""));
}

TEST(LinuxTunDeviceTest, CreateConfigureAndCarryPacketsBothWays) {
  if (!is_root())
    GTEST_SKIP() << "needs root (CAP_NET_ADMIN) for a TUN device in a private network namespace";
  run_isolated(CLONE_NEWNET, [] {
    bring_up_loopback();
    auto tun = LinuxTunDevice::open("bwtest0");
    ASSERT_TRUE(tun) << tun.error().message;
    LinuxTunDevice& dev = **tun;
    EXPECT_EQ(dev.name(), "bwtest0");
    EXPECT_GT(dev.ifindex(), 1);
    EXPECT_EQ(Netlink::ifindex("bwtest0").value_or(-1), dev.ifindex());

    auto nl = Netlink::open();
    ASSERT_TRUE(nl) << nl.error().message;
    ASSERT_TRUE(nl->set_link(dev.ifindex(), 1380, Netlink::LinkState::kUp));
    ASSERT_TRUE(nl->add_address(dev.ifindex(), cidr("10.99.0.1/24")));
    ASSERT_TRUE(nl->add_address(dev.ifindex(), cidr("fd99::1/64")));
    auto routed = nl->add_route(dev.ifindex(), cidr("10.98.0.0/16"), ip("10.99.0.1"));
    ASSERT_TRUE(routed) << routed.error().message;

    // What the kernel now says about the device.
    auto link = nl->link(dev.ifindex());
    ASSERT_TRUE(link) << link.error().message;
    EXPECT_EQ(link->name, "bwtest0");
    EXPECT_EQ(link->mtu, 1380u);
    EXPECT_TRUE(link->flags & IFF_UP);
    auto addrs = nl->addresses(dev.ifindex());
    ASSERT_TRUE(addrs) << addrs.error().message;
    EXPECT_NE(std::find(addrs->begin(), addrs->end(), cidr("10.99.0.1/24")), addrs->end());
    EXPECT_NE(std::find(addrs->begin(), addrs->end(), cidr("fd99::1/64")), addrs->end());
    auto via = nl->route_to(ip("10.98.7.7"));
    ASSERT_TRUE(via) << via.error().message;
    EXPECT_EQ(via->ifindex, dev.ifindex());
    EXPECT_EQ(via->interface, "bwtest0");
    EXPECT_EQ(via->preferred_source, ip("10.99.0.1"));

    // Kernel -> TUN: a datagram to an address routed to the device is read
    // from the TUN descriptor as an IPv4 packet.
    UdpSocketOptions o;
    o.bind_address = SocketAddress{ip("10.99.0.1"), 0};
    auto sock = UdpSocket::bind(o);
    ASSERT_TRUE(sock) << sock.error().message;
    std::string marker = "through-the-tun";
    std::array<OutgoingDatagram, 1> out = {
        OutgoingDatagram{{reinterpret_cast<const std::uint8_t*>(marker.data()), marker.size()},
                         SocketAddress{ip("10.98.1.2"), 9999},
                         {}}};
    ASSERT_EQ(*(*sock)->send_batch(out), 1u);
    auto packet = read_until(dev, [](const std::vector<std::uint8_t>& p) {
      return p.size() >= 28 && (p[0] >> 4) == 4 && p[9] == 17;
    });
    ASSERT_TRUE(packet) << "no IPv4 UDP packet came out of the TUN device";
    EXPECT_EQ(IpAddress::v4({(*packet)[12], (*packet)[13], (*packet)[14], (*packet)[15]}),
              ip("10.99.0.1"));
    EXPECT_EQ(IpAddress::v4({(*packet)[16], (*packet)[17], (*packet)[18], (*packet)[19]}),
              ip("10.98.1.2"));
    EXPECT_EQ((*packet)[22] << 8 | (*packet)[23], 9999);
    EXPECT_EQ(std::string(packet->begin() + 28, packet->end()), marker);

    // TUN -> kernel: a packet written into the device is delivered to the socket.
    auto reply =
        ipv4_udp(ip("10.98.1.2"), 9999, ip("10.99.0.1"), (*sock)->local_address().port, "reply");
    ASSERT_TRUE(dev.write_packet(reply));
    ASSERT_TRUE(wait_readable((*sock)->fd()))
        << "the kernel did not deliver the packet written to the TUN";
    std::array<std::uint8_t, 64> buf;
    std::array<ReceivedDatagram, 1> slot;
    slot[0].buffer = buf;
    ASSERT_EQ(*(*sock)->receive_batch(slot), 1u);
    EXPECT_EQ(std::string(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(slot[0].length)),
              "reply");
    EXPECT_EQ(slot[0].source, (SocketAddress{ip("10.98.1.2"), 9999}));

    // IPv6 too: on-link in fd99::/64 means out through the TUN.
    UdpSocketOptions o6;
    o6.bind_address = SocketAddress{ip("fd99::1"), 0};
    auto sock6 = UdpSocket::bind(o6);
    ASSERT_TRUE(sock6) << sock6.error().message;
    out[0].destination = SocketAddress{ip("fd99::2"), 5353};
    ASSERT_EQ(*(*sock6)->send_batch(out), 1u);
    auto packet6 = read_until(dev, [](const std::vector<std::uint8_t>& p) {
      return p.size() >= 48 && (p[0] >> 4) == 6 && p[6] == 17;
    });
    ASSERT_TRUE(packet6) << "no IPv6 UDP packet came out of the TUN device";
    std::array<std::uint8_t, 16> dst;
    std::copy_n(packet6->begin() + 24, 16, dst.begin());
    EXPECT_EQ(IpAddress::v6(dst), ip("fd99::2"));

    // Writing garbage is refused by the kernel with an error, not a crash.
    const std::uint8_t junk[] = {0x00, 0x01};
    auto bad = dev.write_packet(junk);
    if (!bad) {
      EXPECT_NE(bad.error().message.find("bwtest0"), std::string::npos);
    }
  });
}

TEST(LinuxTunDeviceTest, NameInUseAndRemovalOnClose) {
  if (!is_root())
    GTEST_SKIP() << "needs root (CAP_NET_ADMIN) for a TUN device in a private network namespace";
  run_isolated(CLONE_NEWNET, [] {
    auto first = LinuxTunDevice::open("bwtest1");
    ASSERT_TRUE(first) << first.error().message;
    auto second = LinuxTunDevice::open("bwtest1");
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().sys_errno, EBUSY);
    EXPECT_NE(second.error().message.find("an interface with that name already exists"),
              std::string::npos)
        << second.error().message;
    // Not a TUN at all: still "exists".
    auto lo = LinuxTunDevice::open("lo");
    ASSERT_FALSE(lo);
    EXPECT_NE(lo.error().message.find("already exists"), std::string::npos) << lo.error().message;

    // The kernel numbers "bw%d" itself.
    auto numbered = LinuxTunDevice::open("bwn%d");
    ASSERT_TRUE(numbered) << numbered.error().message;
    EXPECT_EQ((*numbered)->name(), "bwn0");

    first->reset();  // closing the descriptor deletes the interface
    auto gone = Netlink::ifindex("bwtest1");
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().sys_errno, ENODEV);
    EXPECT_TRUE(LinuxTunDevice::open("bwtest1"));
  });
}

TEST(LinuxTunDeviceTest, WithoutCapNetAdminTheMessageSaysSo) {
  if (!is_root()) GTEST_SKIP() << "needs root to drop a capability in a child";
  run_isolated(CLONE_NEWNET, [] {
    // Keep every capability except CAP_NET_ADMIN in the effective set.
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    ASSERT_EQ(::syscall(SYS_capget, &header, data), 0);
    data[CAP_NET_ADMIN / 32].effective &= ~(1u << (CAP_NET_ADMIN % 32));
    ASSERT_EQ(::syscall(SYS_capset, &header, data), 0);
    auto t = LinuxTunDevice::open("bwtest2");
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error().sys_errno, EPERM);
    EXPECT_NE(t.error().message.find("CAP_NET_ADMIN"), std::string::npos) << t.error().message;
    EXPECT_NE(t.error().message.find("run buckwild as root"), std::string::npos)
        << t.error().message;
  });
}

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

// Reads from the offloading device until `count` packets matched `match`, or
// 2 s of silence: split segments wait in the device without the descriptor
// being readable, so has_pending() is asked first.
std::vector<std::vector<std::uint8_t>> read_matching(
    LinuxTunDevice& tun, std::size_t count,
    const std::function<bool(const std::vector<std::uint8_t>&)>& match) {
  std::vector<std::vector<std::uint8_t>> got;
  for (int i = 0; i < 200 && got.size() < count && (tun.has_pending() || wait_readable(tun.fd()));
       ++i) {
    std::array<std::uint8_t, 2048> buf;
    auto n = tun.read_packet(buf);
    EXPECT_TRUE(n);
    if (!n || *n == 0) continue;
    std::vector<std::uint8_t> p(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
    if (match(p)) got.push_back(std::move(p));
  }
  return got;
}

TEST(LinuxTunDeviceTest, OffloadsSplitGsoReadsAndCompleteChecksums) {
  if (!is_root())
    GTEST_SKIP() << "needs root (CAP_NET_ADMIN) for a TUN device in a private network namespace";
  run_isolated(CLONE_NEWNET, [] {
    bring_up_loopback();
    auto tun = LinuxTunDevice::open("bwtest3", true);
    ASSERT_TRUE(tun) << tun.error().message;
    LinuxTunDevice& dev = **tun;
    ASSERT_TRUE(dev.offloading()) << dev.offload_mode();
    EXPECT_EQ(dev.offload_mode().rfind("on (checksum, TSO4, TSO6", 0), 0u) << dev.offload_mode();
    auto nl = Netlink::open();
    ASSERT_TRUE(nl) << nl.error().message;
    ASSERT_TRUE(nl->set_link(dev.ifindex(), 1400, Netlink::LinkState::kUp));
    ASSERT_TRUE(nl->add_address(dev.ifindex(), cidr("10.99.0.1/24")));

    // A TCP SYN: the kernel leaves its checksum to the device (NEEDS_CSUM);
    // what read_packet returns verifies.
    int tcp = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ASSERT_GE(tcp, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(80);
    to.sin_addr.s_addr = htonl(0x0A630002);  // 10.99.0.2, through the TUN
    ::connect(tcp, reinterpret_cast<const sockaddr*>(&to), sizeof to);
    auto syn = read_matching(dev, 1, [](const std::vector<std::uint8_t>& p) {
      auto s = inner::parse_tcp(p);
      return s && s->opening();
    });
    ASSERT_EQ(syn.size(), 1u) << "no SYN came out of the TUN device";
    EXPECT_TRUE(inner::tcp_checksums_ok(syn[0]));
    ::close(tcp);

    // 3000 bytes sent as one UDP GSO datagram of 1000-byte segments: three
    // UDP datagrams come out (split by us under USO, else by the kernel), each
    // with a checksum that verifies and its own length.
    int udp = ::socket(AF_INET, SOCK_DGRAM, 0);
    ASSERT_GE(udp, 0);
    int seg = 1000;
    ASSERT_EQ(::setsockopt(udp, SOL_UDP, UDP_SEGMENT, &seg, sizeof seg), 0);
    to.sin_port = htons(9999);
    std::vector<std::uint8_t> payload(3000);
    for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::uint8_t>(i * 13);
    ASSERT_EQ(::sendto(udp, payload.data(), payload.size(), 0, reinterpret_cast<const sockaddr*>(&to),
                       sizeof to),
              3000);
    auto dgrams = read_matching(dev, 3, [](const std::vector<std::uint8_t>& p) {
      return p.size() >= 28 && (p[0] >> 4) == 4 && p[9] == 17 && p[22] == (9999 >> 8) &&
             p[23] == (9999 & 0xff);
    });
    ::close(udp);
    ASSERT_EQ(dgrams.size(), 3u);
    std::vector<std::uint8_t> joined;
    for (const auto& d : dgrams) {
      ASSERT_EQ(d.size(), 1028u);
      EXPECT_EQ(d[24] << 8 | d[25], 1008);  // UDP length
      EXPECT_EQ(checksum(d.data(), 20), 0);  // IPv4 header
      std::vector<std::uint8_t> pseudo(d.begin() + 12, d.begin() + 20);
      pseudo.insert(pseudo.end(), {0, 17, d[24], d[25]});
      pseudo.insert(pseudo.end(), d.begin() + 20, d.end());
      EXPECT_EQ(checksum(pseudo.data(), pseudo.size()), 0) << "UDP checksum";
      joined.insert(joined.end(), d.begin() + 28, d.end());
    }
    EXPECT_EQ(joined, payload);
    if (dev.offload_mode().find("USO4") != std::string::npos) {
      EXPECT_GE(dev.offload_stats().gso_reads, 1u);
      EXPECT_GE(dev.offload_stats().gso_segments, 3u);
    }
    EXPECT_EQ(dev.offload_stats().refused, 0u);

    // Writes carry a (zero) vnet header: the kernel delivers the packet.
    UdpSocketOptions o;
    o.bind_address = SocketAddress{ip("10.99.0.1"), 0};
    auto sock = UdpSocket::bind(o);
    ASSERT_TRUE(sock) << sock.error().message;
    auto reply =
        ipv4_udp(ip("10.99.0.2"), 9999, ip("10.99.0.1"), (*sock)->local_address().port, "reply");
    ASSERT_TRUE(dev.write_packet(reply));
    ASSERT_TRUE(wait_readable((*sock)->fd())) << "the kernel did not deliver the packet written";
    std::array<std::uint8_t, 64> buf;
    std::array<ReceivedDatagram, 1> slot;
    slot[0].buffer = buf;
    ASSERT_EQ(*(*sock)->receive_batch(slot), 1u);
    EXPECT_EQ(slot[0].length, 5u);
  });
}

TEST(LinuxTunDeviceTest, WithoutOffloadsTheModeSaysSo) {
  if (!is_root())
    GTEST_SKIP() << "needs root (CAP_NET_ADMIN) for a TUN device in a private network namespace";
  run_isolated(CLONE_NEWNET, [] {
    auto tun = LinuxTunDevice::open("bwtest4", false);
    ASSERT_TRUE(tun) << tun.error().message;
    EXPECT_FALSE((*tun)->offloading());
    EXPECT_EQ((*tun)->offload_mode(), "off (network.tun_offload = false)");
  });
}

}  // namespace
}  // namespace buckwild::daemon

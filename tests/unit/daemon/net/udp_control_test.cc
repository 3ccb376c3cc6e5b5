#include "daemon/net/udp_control.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <time.h>

#include <array>
#include <cstring>
#include <vector>

namespace buckwild::daemon {
namespace {

const SocketAddress kLocal{IpAddress::v4({192, 0, 2, 1}), 1025};

template <typename T>
void append(std::vector<std::uint8_t>& out, int level, int type, const T& value,
            std::size_t claimed_len = CMSG_LEN(sizeof(T))) {
  const std::size_t at = out.size();
  out.resize(at + CMSG_SPACE(sizeof(T)));
  cmsghdr c{};
  c.cmsg_len = claimed_len;
  c.cmsg_level = level;
  c.cmsg_type = type;
  std::memcpy(out.data() + at, &c, sizeof c);
  std::memcpy(out.data() + at + CMSG_LEN(0), &value, sizeof value);
}

sockaddr_in v4(std::uint8_t last, std::uint16_t port) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  const std::uint8_t a[4] = {198, 51, 100, last};
  std::memcpy(&sin.sin_addr, a, 4);
  return sin;
}

TEST(UdpControl, NothingUsableLeavesTheLocalAddress) {
  EXPECT_EQ(destination_from_control({}, kLocal), kLocal);
  std::vector<std::uint8_t> other;
  append(other, SOL_SOCKET, SO_TIMESTAMP, 12345L);
  EXPECT_EQ(destination_from_control(other, kLocal), kLocal);
}

TEST(UdpControl, OrigDstAddrGivesAddressAndPortOverPktinfo) {
  std::vector<std::uint8_t> c;
  in_pktinfo pi{};
  const std::uint8_t a[4] = {203, 0, 113, 9};
  std::memcpy(&pi.ipi_addr, a, 4);
  append(c, IPPROTO_IP, IP_PKTINFO, pi);
  EXPECT_EQ(destination_from_control(c, kLocal),
            (SocketAddress{IpAddress::v4({203, 0, 113, 9}), 1025}));
  append(c, IPPROTO_IP, IP_ORIGDSTADDR, v4(7, 4242));
  EXPECT_EQ(destination_from_control(c, kLocal),
            (SocketAddress{IpAddress::v4({198, 51, 100, 7}), 4242}));
}

TEST(UdpControl, IPv4MappedOrigDstAddrIsPlainIPv4) {
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(5000);
  const std::uint8_t a[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 2};
  std::memcpy(&sin6.sin6_addr, a, 16);
  std::vector<std::uint8_t> c;
  append(c, IPPROTO_IPV6, IPV6_ORIGDSTADDR, sin6);
  EXPECT_EQ(destination_from_control(c, kLocal), (SocketAddress{IpAddress::v4({10, 0, 0, 2}), 5000}));
}

// A length shorter than the header (the CMSG macros would take data_len as
// cmsg_len - 16, wrapped to nearly 2^64) or longer than the buffer ends the
// walk; so does a truncated header. Nothing is read past the buffer.
TEST(UdpControl, MalformedLengthsEndTheWalk) {
  std::vector<std::uint8_t> c;
  append(c, IPPROTO_IP, IP_ORIGDSTADDR, v4(7, 4242), /*claimed_len=*/8);
  EXPECT_EQ(destination_from_control(c, kLocal), kLocal);

  c.clear();
  append(c, IPPROTO_IP, IP_ORIGDSTADDR, v4(7, 4242), /*claimed_len=*/4096);
  EXPECT_EQ(destination_from_control(c, kLocal), kLocal);

  c.clear();
  append(c, IPPROTO_IP, IP_ORIGDSTADDR, v4(7, 4242));
  std::vector<std::uint8_t> truncated(c.begin(), c.begin() + 20);  // header and 4 bytes
  EXPECT_EQ(destination_from_control(truncated, kLocal), kLocal);
}

// An ORIGDSTADDR too short for its family is skipped, not read beyond.
TEST(UdpControl, ShortOrigDstAddrIsSkipped) {
  std::vector<std::uint8_t> c;
  const std::uint16_t family = AF_INET6;
  append(c, IPPROTO_IPV6, IPV6_ORIGDSTADDR, family);
  EXPECT_EQ(destination_from_control(c, kLocal), kLocal);
}

// The kernel's receive stamp: SO_TIMESTAMPNS in either form, or the software
// stamp of SO_TIMESTAMPING (the first of its three), among other messages.
TEST(UdpControl, ReceiveStampFromEitherFormOfEitherOption) {
  const std::int64_t ns = 1'796'515'200'123'456'789;
  const timespec ts{ns / 1'000'000'000, ns % 1'000'000'000};
  const std::int64_t wide[2] = {ns / 1'000'000'000, ns % 1'000'000'000};
  std::vector<std::uint8_t> c;
  EXPECT_FALSE(receive_stamp_from_control(c).has_value());
  append(c, IPPROTO_IP, IP_ORIGDSTADDR, v4(7, 4242));
  EXPECT_FALSE(receive_stamp_from_control(c).has_value());
  append(c, SOL_SOCKET, SO_TIMESTAMPNS_OLD, ts);
  EXPECT_EQ(receive_stamp_from_control(c), ns);
  // The destination is read as before, next to a stamp.
  EXPECT_EQ(destination_from_control(c, kLocal),
            (SocketAddress{IpAddress::v4({198, 51, 100, 7}), 4242}));

  c.clear();
  append(c, SOL_SOCKET, SO_TIMESTAMPNS_NEW, wide);
  EXPECT_EQ(receive_stamp_from_control(c), ns);

  c.clear();
  const std::int64_t three[6] = {wide[0], wide[1], 0, 0, 0, 0};
  append(c, SOL_SOCKET, SO_TIMESTAMPING_NEW, three);
  EXPECT_EQ(receive_stamp_from_control(c), ns);
  c.clear();
  const timespec three_old[3] = {ts, {}, {}};
  append(c, SOL_SOCKET, SO_TIMESTAMPING_OLD, three_old);
  EXPECT_EQ(receive_stamp_from_control(c), ns);
}

// A zero stamp (SO_TIMESTAMPING without a software stamp), nanoseconds out of
// range, a short message or another level's message with the same number are
// no stamp.
TEST(UdpControl, NoStampFromMalformedOrForeignMessages) {
  std::vector<std::uint8_t> c;
  append(c, SOL_SOCKET, SO_TIMESTAMPING_NEW, std::array<std::int64_t, 6>{});
  EXPECT_FALSE(receive_stamp_from_control(c).has_value());
  c.clear();
  const std::int64_t bad[2] = {1'796'515'200, 1'000'000'000};
  append(c, SOL_SOCKET, SO_TIMESTAMPNS_NEW, bad);
  EXPECT_FALSE(receive_stamp_from_control(c).has_value());
  c.clear();
  append(c, SOL_SOCKET, SO_TIMESTAMPNS_NEW, std::int64_t{1'796'515'200});
  EXPECT_FALSE(receive_stamp_from_control(c).has_value());
  c.clear();
  const std::int64_t good[2] = {1'796'515'200, 5};
  append(c, IPPROTO_IP, SO_TIMESTAMPNS_NEW, good);
  EXPECT_FALSE(receive_stamp_from_control(c).has_value());
  c.clear();
  append(c, SOL_SOCKET, SO_TIMESTAMPNS_NEW, good, /*claimed_len=*/4096);
  EXPECT_FALSE(receive_stamp_from_control(c).has_value());
}

// --- UDP GRO

TEST(UdpControl, GroSegmentSizeIsTheLastUdpGroMessage) {
  EXPECT_EQ(gro_segment_size_from_control({}), 0);
  std::vector<std::uint8_t> c;
  append(c, SOL_SOCKET, SO_TIMESTAMP, 12345L);
  EXPECT_EQ(gro_segment_size_from_control(c), 0);
  append(c, SOL_UDP, UDP_GRO, 1400);
  EXPECT_EQ(gro_segment_size_from_control(c), 1400);
  append(c, SOL_UDP, UDP_GRO, 1200);
  EXPECT_EQ(gro_segment_size_from_control(c), 1200);
  // Returned as it came, for split_coalesced to refuse.
  std::vector<std::uint8_t> bad;
  append(bad, SOL_UDP, UDP_GRO, -5);
  EXPECT_EQ(gro_segment_size_from_control(bad), -5);
  // Too short to hold an int: no segment size.
  std::vector<std::uint8_t> short_one;
  append(short_one, SOL_UDP, UDP_GRO, std::uint16_t{1400});
  EXPECT_EQ(gro_segment_size_from_control(short_one), 0);
  // Claiming more than the buffer holds: skipped.
  std::vector<std::uint8_t> overlong;
  append(overlong, SOL_UDP, UDP_GRO, 1400, 4096);
  EXPECT_EQ(gro_segment_size_from_control(overlong), 0);
}

TEST(UdpControl, ACoalescedReadSplitsIntoItsDatagrams) {
  std::vector<std::uint8_t> read(1000 * 3 + 250);
  for (std::size_t i = 0; i < read.size(); ++i) read[i] = static_cast<std::uint8_t>(i / 1000);
  const GroSplit split = split_coalesced(read.size(), 1000);
  ASSERT_EQ(split.count, 4u);
  for (std::size_t k = 0; k < split.count; ++k) {
    const MutableBytes d = split.datagram(read, k);
    EXPECT_EQ(d.data(), read.data() + k * 1000);
    EXPECT_EQ(d.size(), k < 3 ? 1000u : 250u);
    EXPECT_EQ(d.front(), k);
    EXPECT_EQ(d.back(), k);
  }
  // Exactly full segments: no empty last one.
  EXPECT_EQ(split_coalesced(3000, 1000).count, 3u);
  // A segment size past the read: one datagram, the whole read.
  const GroSplit one = split_coalesced(700, 1000);
  ASSERT_EQ(one.count, 1u);
  EXPECT_EQ(one.datagram(MutableBytes(read).first(700), 0).size(), 700u);
  // No UDP_GRO message: one datagram.
  const GroSplit plain = split_coalesced(1234, 0);
  ASSERT_EQ(plain.count, 1u);
  EXPECT_EQ(plain.datagram(MutableBytes(read).first(1234), 0).size(), 1234u);
}

TEST(UdpControl, AMalformedSegmentSizeIsRefusedNeverSplit) {
  EXPECT_EQ(split_coalesced(3000, -1).count, 0u);
  EXPECT_EQ(split_coalesced(3000, 65536).count, 0u);
  EXPECT_EQ(split_coalesced(3000, std::int64_t{1} << 40).count, 0u);
  // More datagrams than the kernel ever merges: refused, not 65 500 of them.
  EXPECT_EQ(split_coalesced(65500, 1).count, 0u);
  EXPECT_EQ(split_coalesced(64 * 100, 100).count, 64u);
  EXPECT_EQ(split_coalesced(64 * 100 + 1, 100).count, 0u);
}

}  // namespace
}  // namespace buckwild::daemon

#include "core/inner/ip_packet.h"

#include <gtest/gtest.h>

#include <vector>

namespace buckwild::inner {
namespace {

std::vector<std::uint8_t> ipv4(std::uint8_t protocol, std::size_t payload,
                               std::uint16_t fragment = 0) {
  std::vector<std::uint8_t> p(20 + payload);
  p[0] = 0x45;
  p[2] = static_cast<std::uint8_t>(p.size() >> 8);
  p[3] = static_cast<std::uint8_t>(p.size());
  p[6] = static_cast<std::uint8_t>(fragment >> 8);
  p[7] = static_cast<std::uint8_t>(fragment);
  p[9] = protocol;
  p[12] = 10, p[13] = 77, p[14] = 0, p[15] = 1;
  p[16] = 10, p[17] = 77, p[18] = 0, p[19] = 2;
  return p;
}

std::vector<std::uint8_t> ipv6(std::uint8_t next, std::size_t payload) {
  std::vector<std::uint8_t> p(40 + payload);
  p[0] = 0x60;
  p[4] = static_cast<std::uint8_t>(payload >> 8);
  p[5] = static_cast<std::uint8_t>(payload);
  p[6] = next;
  p[8] = 0xfd, p[23] = 1;
  p[24] = 0xfd, p[39] = 2;
  return p;
}

TEST(IpPacketTest, AddressesOfBothFamilies) {
  auto a = ip_addresses(ipv4(kProtoUdp, 8));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->source, *IpAddress::parse("10.77.0.1"));
  EXPECT_EQ(a->destination, *IpAddress::parse("10.77.0.2"));
  auto b = ip_addresses(ipv6(kProtoUdp, 8));
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->source, *IpAddress::parse("fd00::1"));
  EXPECT_EQ(b->destination, *IpAddress::parse("fd00::2"));
}

TEST(IpPacketTest, NoAddressesForShortOrOtherVersions) {
  EXPECT_FALSE(ip_addresses({}).has_value());
  auto p = ipv4(kProtoUdp, 0);
  EXPECT_FALSE(ip_addresses(Bytes(p).first(19)).has_value());
  p[0] = 0x55;
  EXPECT_FALSE(ip_addresses(p).has_value());
  auto q = ipv6(kProtoUdp, 0);
  EXPECT_FALSE(ip_addresses(Bytes(q).first(39)).has_value());
}

TEST(IpPacketTest, HeaderOfAWholePacket) {
  auto p = ipv4(kProtoTcp, 20);
  p.push_back(0);  // trailing bytes beyond the IP length are not the packet's
  auto h = parse_ip(p);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->protocol, kProtoTcp);
  EXPECT_EQ(h->transport_offset, 20u);
  EXPECT_EQ(h->end, 40u);
  auto h6 = parse_ip(ipv6(kProtoTcp, 20));
  ASSERT_TRUE(h6.has_value());
  EXPECT_EQ(h6->transport_offset, 40u);
  EXPECT_EQ(h6->end, 60u);
}

TEST(IpPacketTest, RefusesFragmentsAndInconsistentLengths) {
  EXPECT_FALSE(parse_ip(ipv4(kProtoTcp, 20, 0x2000)).has_value());  // more fragments
  EXPECT_FALSE(parse_ip(ipv4(kProtoTcp, 20, 0x0001)).has_value());  // an offset
  EXPECT_TRUE(parse_ip(ipv4(kProtoTcp, 20, 0x4000)).has_value());   // don't fragment is fine
  auto p = ipv4(kProtoTcp, 20);
  p[3] = 60;  // longer than the buffer
  EXPECT_FALSE(parse_ip(p).has_value());
  p = ipv4(kProtoTcp, 20);
  p[0] = 0x44;  // IHL below 20 bytes
  EXPECT_FALSE(parse_ip(p).has_value());
  auto q = ipv6(kProtoTcp, 20);
  q.pop_back();
  EXPECT_FALSE(parse_ip(q).has_value());
}

}  // namespace
}  // namespace buckwild::inner

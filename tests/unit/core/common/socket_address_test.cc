#include "core/common/socket_address.h"

#include <gtest/gtest.h>
#include <netinet/in.h>

namespace buckwild {
namespace {

TEST(SocketAddressTest, ParsesEndpointForms) {
  auto a = SocketAddress::parse("10.200.0.2", 1025);
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ(a->to_string(), "10.200.0.2:1025");
  auto b = SocketAddress::parse("10.200.0.2:4000", 1025);
  ASSERT_TRUE(b) << b.error();
  EXPECT_EQ(b->port, 4000);
  auto c = SocketAddress::parse("fd00::2", 1025);
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->to_string(), "[fd00::2]:1025");
  auto d = SocketAddress::parse("[fd00::2]:4000", 1025);
  ASSERT_TRUE(d) << d.error();
  EXPECT_EQ(d->port, 4000);
  EXPECT_TRUE(d->ip.is_v6());
  auto e = SocketAddress::parse("[fd00::2]", 7);
  ASSERT_TRUE(e) << e.error();
  EXPECT_EQ(e->port, 7);
}

TEST(SocketAddressTest, RejectsBadEndpoints) {
  EXPECT_NE(SocketAddress::parse("10.200.0.2:0", 1).error().find("outside 1..65535"),
            std::string::npos);
  EXPECT_NE(SocketAddress::parse("10.200.0.2:70000", 1).error().find("outside"), std::string::npos);
  EXPECT_NE(SocketAddress::parse("10.200.0.2:x", 1).error().find("not a number"),
            std::string::npos);
  EXPECT_NE(SocketAddress::parse("[fd00::2", 1).error().find("']'"), std::string::npos);
  EXPECT_NE(SocketAddress::parse("[fd00::2]x", 1).error().find("':PORT'"), std::string::npos);
  EXPECT_NE(SocketAddress::parse("peer.example:1", 1).error().find("not an IP address"),
            std::string::npos);
  EXPECT_FALSE(SocketAddress::parse("", 1));
}

TEST(SocketAddressTest, RoundTripsThroughSockaddr) {
  auto v4 = *SocketAddress::parse("192.0.2.1:53", 1);
  sockaddr_storage ss;
  socklen_t len = v4.to_sockaddr(ss);
  ASSERT_EQ(len, sizeof(sockaddr_in));
  EXPECT_EQ(ss.ss_family, AF_INET);
  EXPECT_EQ(SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len), v4);

  auto v6 = *SocketAddress::parse("[2001:db8::1]:443", 1);
  len = v6.to_sockaddr(ss);
  ASSERT_EQ(len, sizeof(sockaddr_in6));
  EXPECT_EQ(ss.ss_family, AF_INET6);
  EXPECT_EQ(SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len), v6);
}

TEST(SocketAddressTest, MapsV4ForV6SocketsAndUnmapsOnTheWayBack) {
  auto v4 = *SocketAddress::parse("192.0.2.1:53", 1);
  sockaddr_storage ss;
  socklen_t len = v4.to_sockaddr(ss, IpFamily::kV6);
  ASSERT_EQ(len, sizeof(sockaddr_in6));
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
  EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr));
  EXPECT_EQ(SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len), v4);

  auto v6 = *SocketAddress::parse("[2001:db8::1]:443", 1);
  EXPECT_EQ(v6.to_sockaddr(ss, IpFamily::kV4), 0u);
}

TEST(SocketAddressTest, RejectsShortOrForeignSockaddr) {
  sockaddr_storage ss{};
  ss.ss_family = AF_UNIX;
  EXPECT_FALSE(SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), sizeof ss));
  ss.ss_family = AF_INET;
  EXPECT_FALSE(SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), 4));
  EXPECT_FALSE(SocketAddress::from_sockaddr(nullptr, 0));
}

TEST(SocketAddressTest, ConvertsToAndFromCoreEndpoints) {
  auto v4 = *SocketAddress::parse("10.200.0.2:1025", 1);
  Endpoint e = to_endpoint(v4);
  EXPECT_EQ(e, Endpoint::ipv4(0x0AC80002, 1025));
  EXPECT_EQ(from_endpoint(e), v4);
  auto v6 = *SocketAddress::parse("[fd00::9]:9", 1);
  EXPECT_EQ(from_endpoint(to_endpoint(v6)), v6);
}

}  // namespace
}  // namespace buckwild

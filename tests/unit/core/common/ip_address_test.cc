#include "core/common/ip_address.h"

#include <gtest/gtest.h>

#include <unordered_set>

namespace buckwild {
namespace {

TEST(IpAddressTest, ParsesV4) {
  auto a = IpAddress::parse("10.77.0.1");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->is_v4());
  EXPECT_EQ(a->size(), 4u);
  EXPECT_EQ(a->bits(), 32u);
  EXPECT_EQ(a->bytes()[0], 10);
  EXPECT_EQ(a->bytes()[3], 1);
  EXPECT_EQ(a->to_string(), "10.77.0.1");
}

TEST(IpAddressTest, ParsesV6) {
  auto a = IpAddress::parse("fd77::1");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->is_v6());
  EXPECT_EQ(a->size(), 16u);
  EXPECT_EQ(a->bytes()[0], 0xfd);
  EXPECT_EQ(a->bytes()[15], 1);
  EXPECT_EQ(a->to_string(), "fd77::1");
}

TEST(IpAddressTest, RejectsMalformed) {
  for (const char* bad : {"", "10.0.0", "10.0.0.256", "10.0.0.1 ", " 10.0.0.1", "fd77:::1",
                          "[fd77::1]", "fe80::1%eth0", "host.example", "1.2.3.4/24",
                          "0123456789abcdef0123456789abcdef0123456789abcdef"}) {
    EXPECT_FALSE(IpAddress::parse(bad)) << bad;
  }
}

TEST(IpAddressTest, Classifies) {
  EXPECT_TRUE(IpAddress::parse("0.0.0.0")->is_unspecified());
  EXPECT_TRUE(IpAddress::parse("::")->is_unspecified());
  EXPECT_FALSE(IpAddress::parse("0.0.0.1")->is_unspecified());
  EXPECT_TRUE(IpAddress::parse("127.3.2.1")->is_loopback());
  EXPECT_TRUE(IpAddress::parse("::1")->is_loopback());
  EXPECT_TRUE(IpAddress::parse("::ffff:127.0.0.1")->is_loopback());
  EXPECT_FALSE(IpAddress::parse("::2")->is_loopback());
  EXPECT_EQ(IpAddress::any(IpFamily::kV6), *IpAddress::parse("::"));
}

TEST(IpAddressTest, MapsAndUnmapsV4) {
  auto v4 = *IpAddress::parse("192.0.2.7");
  auto mapped = v4.mapped_v6();
  EXPECT_TRUE(mapped.is_v6());
  EXPECT_TRUE(mapped.is_v4_mapped());
  EXPECT_EQ(mapped, *IpAddress::parse("::ffff:192.0.2.7"));
  EXPECT_EQ(mapped.unmapped(), v4);
  auto v6 = *IpAddress::parse("fd00::7");
  EXPECT_EQ(v6.unmapped(), v6);
  EXPECT_EQ(v6.mapped_v6(), v6);
}

TEST(IpAddressTest, OrdersAndHashes) {
  auto a = *IpAddress::parse("10.0.0.1");
  auto b = *IpAddress::parse("10.0.0.2");
  auto c = *IpAddress::parse("::1");
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);  // v4 before v6
  EXPECT_NE(a, a.mapped_v6());
  std::unordered_set<IpAddress> set{a, b, c, a};
  EXPECT_EQ(set.size(), 3u);
  EXPECT_NE(std::hash<IpAddress>{}(a), std::hash<IpAddress>{}(b));
}

}  // namespace
}  // namespace buckwild

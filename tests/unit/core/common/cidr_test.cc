#include "core/common/cidr.h"

#include <gtest/gtest.h>

namespace buckwild {
namespace {

Cidr cidr(const char* text) {
  auto c = Cidr::parse(text);
  EXPECT_TRUE(c) << text << ": " << c.error();
  return c.value_or(Cidr{});
}

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

TEST(CidrTest, Parses) {
  Cidr c = cidr("10.77.0.1/24");
  EXPECT_EQ(c.address, ip("10.77.0.1"));
  EXPECT_EQ(c.prefix_len, 24);
  EXPECT_EQ(c.to_string(), "10.77.0.1/24");
  Cidr d = cidr("fd77::1/64");
  EXPECT_EQ(d.family(), IpFamily::kV6);
  EXPECT_EQ(d.prefix_len, 64);
  EXPECT_EQ(cidr("0.0.0.0/0").prefix_len, 0);
  EXPECT_EQ(cidr("::/128").prefix_len, 128);
}

TEST(CidrTest, RejectsMalformed) {
  EXPECT_NE(Cidr::parse("10.0.0.1").error().find("missing '/LENGTH'"), std::string::npos);
  EXPECT_NE(Cidr::parse("10.0.0.1/33").error().find("33 is outside 0..32"), std::string::npos);
  EXPECT_NE(Cidr::parse("fd00::/129").error().find("outside 0..128"), std::string::npos);
  EXPECT_NE(Cidr::parse("10.0.0.1/").error().find("not a number"), std::string::npos);
  EXPECT_NE(Cidr::parse("10.0.0.1/2x").error().find("not a number"), std::string::npos);
  EXPECT_NE(Cidr::parse("10.0.0/8").error().find("not an IP address"), std::string::npos);
  EXPECT_FALSE(Cidr::parse("10.0.0.1/-1"));
}

TEST(CidrTest, NetworkAndHostBits) {
  EXPECT_EQ(cidr("10.77.0.1/24").network(), cidr("10.77.0.0/24"));
  EXPECT_TRUE(cidr("10.77.0.1/24").has_host_bits());
  EXPECT_FALSE(cidr("10.77.0.0/24").has_host_bits());
  EXPECT_EQ(cidr("10.77.255.255/17").network(), cidr("10.77.128.0/17"));
  EXPECT_EQ(cidr("fd77::1:2/112").network(), cidr("fd77::1:0/112"));
  EXPECT_EQ(cidr("fd77:1:2:3:4:5:6:7/61").network(), cidr("fd77:1:2::/61"));
  EXPECT_FALSE(cidr("10.1.2.3/32").has_host_bits());
}

TEST(CidrTest, Containment) {
  Cidr net = cidr("10.77.0.0/24");
  EXPECT_TRUE(net.contains(ip("10.77.0.200")));
  EXPECT_FALSE(net.contains(ip("10.77.1.1")));
  EXPECT_FALSE(net.contains(ip("::ffff:10.77.0.1")));  // families never mix
  EXPECT_TRUE(net.contains(cidr("10.77.0.128/25")));
  EXPECT_FALSE(net.contains(cidr("10.77.0.0/23")));
  EXPECT_TRUE(cidr("0.0.0.0/0").contains(ip("203.0.113.9")));
  EXPECT_TRUE(cidr("fd77::/64").contains(ip("fd77::ffff")));
  EXPECT_FALSE(cidr("fd77::/64").contains(ip("fd78::1")));
  EXPECT_TRUE(cidr("10.0.0.0/8").overlaps(cidr("10.5.0.0/16")));
  EXPECT_TRUE(cidr("10.5.0.0/16").overlaps(cidr("10.0.0.0/8")));
  EXPECT_FALSE(cidr("10.5.0.0/16").overlaps(cidr("10.6.0.0/16")));
}

TEST(CidrTest, ValidatePrefixRefusesHostBits) {
  auto ok = validate_prefix("192.168.5.0/24");
  ASSERT_TRUE(ok);
  auto bad = validate_prefix("192.168.5.9/24");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), "192.168.5.9/24 has host bits set; the network is 192.168.5.0/24");
  EXPECT_FALSE(validate_prefix("fd00::1/64"));
  EXPECT_TRUE(validate_prefix("fd00::/64"));
}

TEST(CidrTest, ValidateInterfaceAddress) {
  EXPECT_TRUE(validate_interface_address("10.77.0.1/24", IpFamily::kV4));
  EXPECT_TRUE(validate_interface_address("10.77.0.0/31", IpFamily::kV4));
  EXPECT_TRUE(validate_interface_address("10.77.0.9/32", IpFamily::kV4));
  EXPECT_TRUE(validate_interface_address("fd77::1/64", IpFamily::kV6));

  auto net = validate_interface_address("10.77.0.0/24", IpFamily::kV4);
  ASSERT_FALSE(net);
  EXPECT_NE(net.error().find("network address"), std::string::npos);
  EXPECT_NE(net.error().find("10.77.0.1/24"), std::string::npos) << net.error();
  auto bcast = validate_interface_address("10.77.0.255/24", IpFamily::kV4);
  ASSERT_FALSE(bcast);
  EXPECT_NE(bcast.error().find("broadcast"), std::string::npos);
  auto fam = validate_interface_address("fd77::1/64", IpFamily::kV4);
  ASSERT_FALSE(fam);
  EXPECT_NE(fam.error().find("expected an IPv4 address"), std::string::npos);
  EXPECT_FALSE(validate_interface_address("0.0.0.0/24", IpFamily::kV4));
  EXPECT_FALSE(validate_interface_address("10.0.0.1/0", IpFamily::kV4));
  auto v6net = validate_interface_address("fd77::/64", IpFamily::kV6);
  ASSERT_FALSE(v6net);
  EXPECT_NE(v6net.error().find("fd77::1/64"), std::string::npos) << v6net.error();
}

}  // namespace
}  // namespace buckwild

// Netlink requests against the kernel, in a private network namespace (root
// only) so nothing reaches the host's interfaces or routes.
#include "daemon/net/netlink.h"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sys/syscall.h>

#include "daemon/net/tun_device.h"
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

TEST(NetlinkTest, OpensWithoutPrivilegesAndNamesMissingInterfaces) {
  auto nl = Netlink::open();
  ASSERT_TRUE(nl) << nl.error().message;
  auto missing = Netlink::ifindex("no-such-if0");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().sys_errno, ENODEV);
  EXPECT_EQ(missing.error().message, "no network interface named \"no-such-if0\"");
}

TEST(NetlinkTest, LoopbackLinkAndRoute) {
  if (!is_root()) GTEST_SKIP() << "needs root for a private network namespace";
  run_isolated(CLONE_NEWNET, [] {
    auto nl = Netlink::open();
    ASSERT_TRUE(nl) << nl.error().message;
    auto lo = Netlink::ifindex("lo");
    ASSERT_TRUE(lo);
    auto before = nl->link(*lo);
    ASSERT_TRUE(before) << before.error().message;
    EXPECT_EQ(before->name, "lo");
    EXPECT_FALSE(before->flags & IFF_UP);  // a new namespace starts with lo down
    ASSERT_TRUE(nl->set_link(*lo, 16384, Netlink::LinkState::kUp));
    auto after = nl->link(*lo);
    ASSERT_TRUE(after);
    EXPECT_TRUE(after->flags & IFF_UP);
    EXPECT_EQ(after->mtu, 16384u);
    auto r = nl->route_to(ip("127.0.0.1"));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->interface, "lo");
    auto addrs = nl->addresses(*lo);
    ASSERT_TRUE(addrs);
    EXPECT_NE(std::find(addrs->begin(), addrs->end(), cidr("127.0.0.1/8")), addrs->end());
  });
}

TEST(NetlinkTest, FindsTheUnderlayInterfaceAndItsMtu) {
  if (!is_root()) GTEST_SKIP() << "needs root for a private network namespace";
  run_isolated(CLONE_NEWNET, [] {
    // A TUN device stands in for the underlay NIC.
    auto under = LinuxTunDevice::open("under0");
    ASSERT_TRUE(under) << under.error().message;
    auto nl = Netlink::open();
    ASSERT_TRUE(nl);
    ASSERT_TRUE(nl->set_link((*under)->ifindex(), 1420, Netlink::LinkState::kUp));
    ASSERT_TRUE(nl->add_address((*under)->ifindex(), cidr("10.200.0.1/24")));
    auto r = nl->route_to(ip("10.200.0.2"));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->interface, "under0");
    EXPECT_EQ(r->ifindex, (*under)->ifindex());
    EXPECT_EQ(r->preferred_source, ip("10.200.0.1"));
    EXPECT_FALSE(r->gateway);
    auto link = nl->link(r->ifindex);
    ASSERT_TRUE(link);
    EXPECT_EQ(link->mtu, 1420u);
  });
}

TEST(NetlinkTest, ErrorsCarryErrnoAndTheKernelsWords) {
  if (!is_root()) GTEST_SKIP() << "needs root for a private network namespace";
  run_isolated(CLONE_NEWNET, [] {
    auto tun = LinuxTunDevice::open("bwtest3");
    ASSERT_TRUE(tun) << tun.error().message;
    auto nl = Netlink::open();
    ASSERT_TRUE(nl);
    ASSERT_TRUE(nl->set_link((*tun)->ifindex(), std::nullopt, Netlink::LinkState::kUp));

    // No route anywhere in an empty namespace.
    auto none = nl->route_to(ip("203.0.113.1"));
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().sys_errno, ENETUNREACH);
    EXPECT_NE(none.error().message.find("203.0.113.1"), std::string::npos) << none.error().message;

    // A route with host bits set: the kernel refuses and says why.
    auto bad = nl->add_route((*tun)->ifindex(), Cidr{ip("10.98.1.0"), 16});
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().sys_errno, EINVAL);
    EXPECT_NE(bad.error().message.find("cannot add route 10.98.1.0/16 via bwtest3"),
              std::string::npos)
        << bad.error().message;
    EXPECT_NE(bad.error().message.find("(kernel: "), std::string::npos) << bad.error().message;

    // An MTU below the IPv4 minimum.
    auto tiny = nl->set_link((*tun)->ifindex(), 10, Netlink::LinkState::kUp);
    ASSERT_FALSE(tiny);
    EXPECT_EQ(tiny.error().sys_errno, EINVAL);
    EXPECT_NE(tiny.error().message.find("with MTU 10"), std::string::npos) << tiny.error().message;

    // Adding the same address twice is fine (replace), and a vanished
    // interface is reported.
    ASSERT_TRUE(nl->add_address((*tun)->ifindex(), cidr("10.97.0.1/24")));
    ASSERT_TRUE(nl->add_address((*tun)->ifindex(), cidr("10.97.0.1/24")));
    int index = (*tun)->ifindex();
    tun->reset();
    auto gone = nl->link(index);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().sys_errno, ENODEV);
  });
}

TEST(NetlinkTest, ChangesNeedCapNetAdmin) {
  auto attempt = [] {
    auto nl = Netlink::open();
    ASSERT_TRUE(nl);
    auto r = nl->set_link(1, std::nullopt, Netlink::LinkState::kUp);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().sys_errno, EPERM);
    EXPECT_NE(r.error().message.find("cannot bring up interface lo"), std::string::npos)
        << r.error().message;
  };
  if (!is_root()) {
    attempt();
    return;
  }
  run_isolated(CLONE_NEWNET, [&] {
    // Root without CAP_NET_ADMIN in the effective set.
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    ASSERT_EQ(::syscall(SYS_capget, &header, data), 0);
    data[CAP_NET_ADMIN / 32].effective &= ~(1u << (CAP_NET_ADMIN % 32));
    ASSERT_EQ(::syscall(SYS_capset, &header, data), 0);
    attempt();
  });
}

}  // namespace
}  // namespace buckwild::daemon

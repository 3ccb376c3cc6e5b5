#include "daemon/stream/nat_table.h"

#include <gtest/gtest.h>

#include <set>

namespace buckwild::daemon {
namespace {

SocketAddress at(const char* ip, std::uint16_t port) { return SocketAddress{*IpAddress::parse(ip), port}; }

const NatKey kKey{at("10.77.0.1", 40001), at("10.77.0.2", 80)};

TEST(NatTableTest, FindsTheRuleOfAKeyAndNothingElse) {
  NatTable t(NatLimits{});
  EXPECT_EQ(t.find(kKey), nullptr);
  EXPECT_FALSE(t.insert(kKey, NatRule{1, at("10.77.0.2", 1024), at("10.77.0.1", 7000)}));
  const NatRule* r = t.find(kKey);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->flow, 1u);
  EXPECT_EQ(r->source, at("10.77.0.2", 1024));
  EXPECT_EQ(r->destination, at("10.77.0.1", 7000));
  EXPECT_EQ(t.find(NatKey{kKey.destination, kKey.source}), nullptr) << "keys are directed";
}

TEST(NatTableTest, ANewFlowTakesAKeyOverAndTheOldOneCannotRemoveIt) {
  NatTable t(NatLimits{});
  t.insert(kKey, NatRule{1, {}, {}});
  const auto displaced = t.insert(kKey, NatRule{2, {}, {}});
  ASSERT_TRUE(displaced);
  EXPECT_EQ(*displaced, 1u);
  t.erase(kKey, 1);
  ASSERT_NE(t.find(kKey), nullptr);
  EXPECT_EQ(t.find(kKey)->flow, 2u);
  t.erase(kKey, 2);
  EXPECT_EQ(t.find(kKey), nullptr);
  EXPECT_EQ(t.key_count(), 0u);
}

TEST(NatTableTest, PortsAreUniqueWhileHeldAndReusedOnceReleased) {
  NatTable t(NatLimits{});
  std::set<std::uint16_t> seen;
  for (FlowId f = 1; f <= 1000; ++f) {
    auto p = t.allocate_port(f);
    ASSERT_TRUE(p);
    EXPECT_GE(*p, NatTable::kFirstPort);
    EXPECT_TRUE(seen.insert(*p).second);
    EXPECT_EQ(t.port_owner(*p), f);
  }
  t.release_port(NatTable::kFirstPort, 999);  // not its owner: kept
  EXPECT_EQ(t.port_owner(NatTable::kFirstPort), 1u);
  t.release_port(NatTable::kFirstPort, 1);
  EXPECT_EQ(t.port_owner(NatTable::kFirstPort), kNoFlow);
}

TEST(NatTableTest, RunsOutOfPortsOnlyWhenAllAreHeld) {
  NatTable t(NatLimits{});
  const std::size_t ports = 65536 - NatTable::kFirstPort;
  for (std::size_t i = 0; i < ports; ++i) ASSERT_TRUE(t.allocate_port(i + 1));
  EXPECT_FALSE(t.allocate_port(ports + 1));
  t.release_port(5000, t.port_owner(5000));
  auto p = t.allocate_port(ports + 2);
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, 5000);
}

// A released port comes back only after every port released before it: the
// one longest free is taken first, without a scan.
TEST(NatTableTest, TheLongestFreePortIsTakenFirst) {
  NatTable t(NatLimits{});
  const std::size_t ports = NatTable::kPorts;
  for (std::size_t i = 0; i < ports; ++i) ASSERT_TRUE(t.allocate_port(i + 1));
  t.release_port(7000, t.port_owner(7000));
  t.release_port(2000, t.port_owner(2000));
  t.release_port(65535, t.port_owner(65535));
  EXPECT_EQ(t.allocate_port(ports + 1), 7000);
  EXPECT_EQ(t.allocate_port(ports + 2), 2000);
  EXPECT_EQ(t.allocate_port(ports + 3), 65535);
  EXPECT_FALSE(t.allocate_port(ports + 4));
  // Releasing a port twice, or one never held, frees nothing more.
  t.release_port(7000, ports + 1);
  t.release_port(7000, ports + 1);
  t.release_port(80, 1);
  EXPECT_EQ(t.allocate_port(ports + 5), 7000);
  EXPECT_FALSE(t.allocate_port(ports + 6));
}

TEST(NatTableTest, LimitsCountLiveFlowsInTotalAndPerOwner) {
  NatTable t(NatLimits{.max_flows = 3, .max_per_source = 2});
  const FlowOwner x = FlowOwner::local_user(1000);
  const FlowOwner y = FlowOwner::peer(0xabcdef);
  EXPECT_TRUE(t.admits(x));
  t.count_flow(x);
  t.count_flow(x);
  EXPECT_FALSE(t.admits(x)) << "per owner";
  EXPECT_TRUE(t.admits(y));
  t.count_flow(y);
  EXPECT_FALSE(t.admits(y)) << "in total";
  EXPECT_EQ(t.live_flows(), 3u);
  t.uncount_flow(x);
  EXPECT_TRUE(t.admits(x));
  EXPECT_EQ(t.flows_of(x), 1u);
  t.uncount_flow(x);
  EXPECT_EQ(t.flows_of(x), 0u);
}

// Owners of different kinds never share a count, even with equal ids.
TEST(NatTableTest, OwnersOfDifferentKindsAreCountedApart) {
  NatTable t(NatLimits{.max_flows = 100, .max_per_source = 1});
  const IpAddress a = *IpAddress::parse("10.77.0.1");
  t.count_flow(FlowOwner::local_user(7));
  EXPECT_FALSE(t.admits(FlowOwner::local_user(7)));
  EXPECT_TRUE(t.admits(FlowOwner::local_user(8)));
  EXPECT_TRUE(t.admits(FlowOwner::peer(7)));
  EXPECT_TRUE(t.admits(FlowOwner::by_address(a)));
  t.count_flow(FlowOwner::by_address(a));
  EXPECT_FALSE(t.admits(FlowOwner::by_address(a)));
  EXPECT_TRUE(t.admits(FlowOwner::by_address(*IpAddress::parse("10.77.0.2"))));
}

}  // namespace
}  // namespace buckwild::daemon

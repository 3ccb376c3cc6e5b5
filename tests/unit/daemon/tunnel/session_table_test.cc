#include "daemon/tunnel/session_table.h"

#include <gtest/gtest.h>

#include "support/session_pair.h"

namespace buckwild::daemon {
namespace {

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}
Cidr cidr(const char* text) {
  return *Cidr::parse(text);
}

constexpr std::int64_t kUnix = 1'764'080'000'000;

Config config_with_peer() {
  Config c;
  c.network.virtual_address = cidr("10.77.0.1/24");
  PeerConfig p;
  p.name = "bob";
  p.virtual_address = ip("10.77.0.2");
  p.routes.push_back(cidr("192.168.50.0/24"));
  c.peers.push_back(std::move(p));
  return c;
}

std::unique_ptr<SessionEntry> entry(std::uint64_t id, std::optional<std::size_t> peer) {
  auto e = std::make_unique<SessionEntry>();
  e->id = id;
  e->peer = peer;
  e->remote = SocketAddress{ip("10.200.0.2"), 1025};
  return e;
}

TEST(SessionTableTest, RoutesByPeerAddressThenLongestRoute) {
  const Config c = config_with_peer();
  SessionTable t(&c);
  auto bob = entry(1, 0);
  bob->allowed = {cidr("10.77.0.2/32"), cidr("192.168.50.0/24")};
  auto other = entry(2, std::nullopt);
  other->allowed = {cidr("192.168.0.0/16")};
  t.insert(std::move(bob), ip("10.77.0.2"));
  t.insert(std::move(other), std::nullopt);
  EXPECT_EQ(t.route(ip("10.77.0.2"))->id, 1u);
  EXPECT_EQ(t.route(ip("192.168.50.9"))->id, 1u);  // /24 beats /16
  EXPECT_EQ(t.route(ip("192.168.7.9"))->id, 2u);
  EXPECT_EQ(t.route(ip("172.16.0.1")), nullptr);
  ASSERT_NE(t.remove(1), nullptr);
  EXPECT_EQ(t.route(ip("10.77.0.2")), nullptr);  // its address went with it
  EXPECT_EQ(t.route(ip("192.168.50.9"))->id, 2u);
  EXPECT_EQ(t.size(), 1u);
}

TEST(SessionTableTest, APeerWithoutAnEntryClaimsOneFreeAddressOfItsPrefixes) {
  const Config c = config_with_peer();
  SessionTable t(&c);
  auto a = entry(7, std::nullopt);
  a->claimable = {cidr("10.77.0.0/28")};
  auto b = entry(8, std::nullopt);
  b->claimable = {cidr("10.77.0.0/28")};
  SessionEntry& ea = t.insert(std::move(a), std::nullopt);
  SessionEntry& eb = t.insert(std::move(b), std::nullopt);
  EXPECT_FALSE(t.accept_source(ea, ip("10.77.0.1"))) << "ours";
  EXPECT_FALSE(t.accept_source(ea, ip("10.77.0.2"))) << "a configured peer's";
  EXPECT_FALSE(t.accept_source(ea, ip("10.77.0.99"))) << "outside its prefixes";
  EXPECT_TRUE(t.accept_source(ea, ip("10.77.0.5")));
  EXPECT_TRUE(t.accept_source(ea, ip("10.77.0.5")));
  EXPECT_FALSE(t.accept_source(ea, ip("10.77.0.6"))) << "one address per session";
  EXPECT_FALSE(t.accept_source(eb, ip("10.77.0.5"))) << "another session's";
  EXPECT_EQ(t.route(ip("10.77.0.5"))->id, 7u);
  EXPECT_EQ(t.unlisted(), 2u);
  EXPECT_EQ(t.unlisted_from(ip("10.200.0.2")).size(), 2u);
  EXPECT_TRUE(t.unlisted_from(ip("10.200.0.3")).empty());
}

TEST(SessionTableTest, ASimultaneousStartKeepsTheSmallerIdElseTheNewSessionWins) {
  auto ours = testing::make_session_pair(kUnix, seconds(100));
  auto theirs = testing::make_session_pair(kUnix, seconds(100));
  SessionEntry existing;
  existing.session = std::move(ours.initiator);          // we initiated
  const session::Session& incoming = *theirs.responder;  // they initiated too: we respond
  const TimePoint since = seconds(100);

  existing.id = incoming.id() - 1;  // ours is smaller: keep it
  EXPECT_EQ(succession(existing, since, incoming, since + seconds(1)), Succession::kKeepExisting);
  existing.id = incoming.id() + 1;  // theirs is smaller: take it
  EXPECT_EQ(succession(existing, since, incoming, since + seconds(1)),
            Succession::kReplaceExisting);
  existing.id = incoming.id() - 1;  // long after: the peer restarted, the new one wins
  EXPECT_EQ(succession(existing, since, incoming, since + kSimultaneousWindow),
            Succession::kReplaceExisting);
  // Same role both times: a restart, not a crossing.
  EXPECT_EQ(succession(existing, since, *theirs.initiator, since + seconds(1)),
            Succession::kReplaceExisting);
}

}  // namespace
}  // namespace buckwild::daemon

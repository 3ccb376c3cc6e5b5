#include "daemon/tunnel/peers.h"

#include <gtest/gtest.h>

#include "core/crypto/random.h"

namespace buckwild::daemon {
namespace {

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

PskConfig psk(const char* id, std::uint64_t seed) {
  crypto::DeterministicRandom rng(seed);
  PskConfig p;
  p.id = id;
  p.key = crypto::SecretBytes::random(32, rng);
  return p;
}

PeerConfig peer(const char* name, std::optional<const char*> endpoint, const char* psk_id) {
  PeerConfig p;
  p.name = name;
  if (endpoint) p.endpoint = SocketAddress{ip(*endpoint), 1025};
  p.psk = psk_id;
  p.initiate = endpoint.has_value();
  return p;
}

Config config() {
  Config c;
  c.psks.push_back(psk("office", 1));
  c.psks.push_back(psk("laptop", 2));
  c.psks.push_back(psk("guests", 3));
  c.psks.back().allowed_prefixes.push_back(*Cidr::parse("10.77.0.64/26"));
  c.peers.push_back(peer("branch", "10.200.0.3", "office"));   // only "office"
  c.peers.push_back(peer("roaming", std::nullopt, "laptop"));  // no endpoint
  return c;
}

TEST(PeersTest, EachPeerHoldsOnlyItsOwnPsk) {
  const Config c = config();
  auto peers = Peers::create(c);
  ASSERT_TRUE(peers) << peers.error().message;
  ASSERT_EQ((*peers)[0].psks->size(), 1u);
  EXPECT_EQ((*peers)[0].psk_index.at(0), 0u);  // "office" is our PSK 0
  ASSERT_EQ((*peers)[1].psks->size(), 1u);
  EXPECT_EQ((*peers)[1].psk_index.at(0), 1u);
  EXPECT_TRUE((*peers)[0].initiates());
  EXPECT_FALSE((*peers)[1].initiates());
}

TEST(PeersTest, IdentifiesAResponderSessionByTheProvedPskAlone) {
  const Config c = config();
  auto peers = Peers::create(c);
  ASSERT_TRUE(peers);
  EXPECT_EQ(peers->identify(0), 0u);  // "office": branch, from wherever it came
  EXPECT_EQ(peers->identify(1), 1u);  // "laptop": roaming
  EXPECT_FALSE(peers->identify(2).has_value());  // "guests": no listed peer
}

TEST(PeersTest, TheOnlyPskIsTheOneAPeerNamingNoneProves) {
  Config c;
  c.psks.push_back(psk("main", 1));
  c.peers.push_back(peer("gateway", "10.200.0.2", ""));
  auto peers = Peers::create(c);
  ASSERT_TRUE(peers) << peers.error().message;
  EXPECT_EQ(peers->identify(0), 0u);
}

TEST(PeersTest, APeerNamingNoPskAmongSeveralIsRefused) {
  Config c = config();
  c.peers.push_back(peer("gateway", "10.200.0.2", ""));  // was: any PSK, known by address
  auto peers = Peers::create(c);
  ASSERT_FALSE(peers);
  EXPECT_NE(peers.error().message.find("gateway"), std::string::npos);
}

TEST(PeersTest, TwoPeersProvingOnePskAreRefused) {
  Config c = config();
  c.peers.push_back(peer("annex", "10.200.0.4", "office"));  // same PSK as branch
  auto peers = Peers::create(c);
  ASSERT_FALSE(peers);
  EXPECT_NE(peers.error().message.find("branch and annex"), std::string::npos);
}

TEST(PeersTest, APeersPskCannotAdmitPeersWithoutAnEntry) {
  Config c = config();
  c.peers.push_back(peer("guest-gw", "10.200.0.4", "guests"));
  auto peers = Peers::create(c);
  ASSERT_FALSE(peers);
  EXPECT_NE(peers.error().message.find("allowed_prefixes"), std::string::npos);
}

TEST(PeersTest, APeerBoundToAnUnknownPskIsRefused) {
  Config c = config();
  c.peers.push_back(peer("typo", "10.200.0.4", "nonexistent"));
  auto peers = Peers::create(c);
  ASSERT_FALSE(peers);
  EXPECT_NE(peers.error().message.find("typo"), std::string::npos);
}

}  // namespace
}  // namespace buckwild::daemon

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
  c.peers.push_back(peer("gateway", "10.200.0.2", ""));        // any PSK, known by address
  c.peers.push_back(peer("branch", "10.200.0.3", "office"));   // only "office"
  c.peers.push_back(peer("roaming", std::nullopt, "laptop"));  // no endpoint: known by its PSK
  return c;
}

TEST(PeersTest, EachPeerHoldsOnlyThePsksItMayUse) {
  const Config c = config();
  auto peers = Peers::create(c);
  ASSERT_TRUE(peers) << peers.error().message;
  EXPECT_EQ((*peers)[0].psks->size(), 2u);
  ASSERT_EQ((*peers)[1].psks->size(), 1u);
  EXPECT_EQ((*peers)[1].psk_index.at(0), 0u);  // "office" is our PSK 0
  EXPECT_EQ((*peers)[2].psk_index.at(0), 1u);
  EXPECT_TRUE((*peers)[0].initiates());
  EXPECT_FALSE((*peers)[2].initiates());
}

TEST(PeersTest, IdentifiesAResponderSessionByAddressAndProvenPsk) {
  const Config c = config();
  auto peers = Peers::create(c);
  ASSERT_TRUE(peers);
  EXPECT_EQ(peers->identify(SocketAddress{ip("10.200.0.2"), 40000}, "laptop"), 0u);
  EXPECT_EQ(peers->identify(SocketAddress{ip("10.200.0.3"), 40000}, "office"), 1u);
  // From branch's address but with the other PSK: not branch; the PSK names roaming.
  EXPECT_EQ(peers->identify(SocketAddress{ip("10.200.0.3"), 40000}, "laptop"), 2u);
  EXPECT_EQ(peers->identify(SocketAddress{ip("192.0.2.9"), 40000}, "laptop"), 2u);
  EXPECT_FALSE(peers->identify(SocketAddress{ip("192.0.2.9"), 40000}, "office").has_value());
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

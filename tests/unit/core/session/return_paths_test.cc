#include "core/session/return_paths.h"

#include <gtest/gtest.h>

namespace buckwild::session {
namespace {

SocketAddress at(const char* ip, std::uint16_t port) {
  return SocketAddress{*IpAddress::parse(ip), port};
}

const auto kAny = [](std::uint16_t) { return true; };

TEST(ReturnPathsTest, AnswersFromThePortItArrivedOnToWhereItCameFrom) {
  ReturnPaths paths(*IpAddress::parse("198.51.100.7"));
  EXPECT_FALSE(paths.choose(4000, 100, 2, kAny).has_value());  // nothing yet
  ASSERT_TRUE(paths.observe(4000, at("198.51.100.7", 61001), 100));
  auto p = paths.choose(4000, 100, 2, kAny);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->local_port, 4000);
  EXPECT_EQ(p->remote, at("198.51.100.7", 61001));
}

TEST(ReturnPathsTest, TheCurrentPortWinsThenTheLatestArrivalWithinTheAllowance) {
  ReturnPaths paths(*IpAddress::parse("198.51.100.7"));
  paths.observe(4000, at("198.51.100.7", 61001), 100);  // window 100's port
  paths.observe(4100, at("198.51.100.7", 61002), 101);  // window 101's port
  paths.observe(4000, at("198.51.100.7", 61001), 101);  // a late one on window 100's
  // In window 101 with its own port observed, that one.
  EXPECT_EQ(paths.choose(4100, 101, 2, kAny)->local_port, 4100);
  // In window 102 before anything arrived on its port: the latest arrival.
  EXPECT_EQ(paths.choose(4200, 102, 2, kAny)->local_port, 4000);
  // A port we cannot send from is skipped.
  EXPECT_EQ(paths.choose(4200, 102, 2, [](std::uint16_t port) { return port != 4000; })->local_port,
            4100);
  // Past the allowance the initiator no longer listens there: none.
  EXPECT_FALSE(paths.choose(4300, 104, 2, kAny).has_value());
}

TEST(ReturnPathsTest, ANewMappingOnThePortReplacesTheOld) {
  ReturnPaths paths(*IpAddress::parse("198.51.100.7"));
  paths.observe(4000, at("198.51.100.7", 61001), 100);
  paths.observe(4000, at("198.51.100.7", 62002), 100);
  EXPECT_EQ(paths.choose(4000, 100, 1, kAny)->remote.port, 62002);
}

TEST(ReturnPathsTest, OnlyThePeersAddressIsLearnedNeverAnother) {
  ReturnPaths paths(*IpAddress::parse("198.51.100.7"));
  paths.observe(4000, at("198.51.100.7", 61001), 100);
  // An authentic datagram re-sent from a third host moves nothing.
  EXPECT_FALSE(paths.observe(4000, at("203.0.113.9", 61001), 100));
  EXPECT_FALSE(paths.observe(4100, at("203.0.113.9", 9), 100));
  EXPECT_EQ(paths.choose(4100, 100, 2, kAny)->remote, at("198.51.100.7", 61001));
  // The same peer spelled as a v4-mapped v6 address is the peer.
  EXPECT_TRUE(paths.observe(4100, at("::ffff:198.51.100.7", 61003), 100));
}

TEST(ReturnPathsTest, KeepsTheNewestFewPorts) {
  ReturnPaths paths(*IpAddress::parse("198.51.100.7"));
  for (std::uint16_t i = 0; i < 10; ++i) {
    paths.observe(static_cast<std::uint16_t>(4000 + i), at("198.51.100.7", static_cast<std::uint16_t>(61000 + i)), 100 + i);
  }
  std::size_t held = 0;
  for (const auto& s : paths.slots()) {
    ASSERT_TRUE(s.has_value());
    EXPECT_GE(s->local_port, 4000 + 10 - ReturnPaths::kSlots);
    ++held;
  }
  EXPECT_EQ(held, ReturnPaths::kSlots);
  EXPECT_EQ(paths.choose(1, 109, 16, kAny)->local_port, 4009);
}

}  // namespace
}  // namespace buckwild::session

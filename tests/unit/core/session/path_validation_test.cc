#include "core/session/path_validation.h"

#include <gtest/gtest.h>

namespace buckwild::session {
namespace {

SocketAddress at(const char* ip, std::uint16_t port) {
  return SocketAddress{*IpAddress::parse(ip), port};
}

constexpr std::size_t kBig = PathValidation::kChallengeDatagramSize;

class PathValidationTest : public ::testing::Test {
 protected:
  crypto::DeterministicRandom rng_{7};
  PathValidation v_{*IpAddress::parse("198.51.100.7")};
};

TEST_F(PathValidationTest, ThePeersOwnAddressIsNeverChallenged) {
  EXPECT_FALSE(v_.on_datagram(at("198.51.100.7", 40000), 1400, 0, rng_).has_value());
  EXPECT_FALSE(v_.on_datagram(at("::ffff:198.51.100.7", 40001), 1400, 0, rng_).has_value());
  EXPECT_EQ(v_.stats().started, 0u);
}

TEST_F(PathValidationTest, AnAnswerFromTheChallengedAddressMovesThePeer) {
  auto c = v_.on_datagram(at("203.0.113.9", 50000), kBig, 0, rng_);
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(v_.pending());
  // Another port of the same address: a NAT maps every port pair anew.
  EXPECT_TRUE(v_.on_response(*c, at("203.0.113.9", 50123), milliseconds(40)));
  EXPECT_EQ(v_.peer(), *IpAddress::parse("203.0.113.9"));
  EXPECT_FALSE(v_.pending());
  EXPECT_EQ(v_.stats().started, 1u);
  EXPECT_EQ(v_.stats().succeeded, 1u);
  // The old address is now the stranger.
  EXPECT_TRUE(v_.on_datagram(at("198.51.100.7", 40000), kBig, milliseconds(50), rng_).has_value());
}

TEST_F(PathValidationTest, TheRightBytesFromAnyOtherAddressMoveNothing) {
  auto c = v_.on_datagram(at("203.0.113.9", 50000), kBig, 0, rng_);
  ASSERT_TRUE(c.has_value());
  EXPECT_FALSE(v_.on_response(*c, at("198.51.100.7", 40000), milliseconds(10)));  // the old path
  EXPECT_FALSE(v_.on_response(*c, at("192.0.2.66", 50000), milliseconds(10)));    // a third host
  EXPECT_EQ(v_.peer(), *IpAddress::parse("198.51.100.7"));
  EXPECT_TRUE(v_.pending());
}

TEST_F(PathValidationTest, WrongBytesFromTheChallengedAddressMoveNothing) {
  auto c = v_.on_datagram(at("203.0.113.9", 50000), kBig, 0, rng_);
  ASSERT_TRUE(c.has_value());
  Bytes16 wrong = *c;
  wrong[15] ^= 1;
  EXPECT_FALSE(v_.on_response(wrong, at("203.0.113.9", 50000), milliseconds(10)));
  EXPECT_FALSE(v_.on_response(Bytes16{}, at("203.0.113.9", 50000), milliseconds(10)));
  EXPECT_EQ(v_.peer(), *IpAddress::parse("198.51.100.7"));
  // The challenge stays live for the real answer.
  EXPECT_TRUE(v_.on_response(*c, at("203.0.113.9", 50000), milliseconds(20)));
}

TEST_F(PathValidationTest, AnOldChallengesAnswerDoesNotValidateANewOne) {
  auto first = v_.on_datagram(at("203.0.113.9", 50000), kBig, 0, rng_);
  ASSERT_TRUE(first.has_value());
  v_.expire(PathValidation::kLifetime);
  EXPECT_EQ(v_.stats().failed, 1u);
  EXPECT_FALSE(v_.pending());
  // Too late for the first: its answer (a replay of it too) is refused.
  EXPECT_FALSE(v_.on_response(*first, at("203.0.113.9", 50000), PathValidation::kLifetime));
  auto second = v_.on_datagram(at("203.0.113.9", 50001), kBig, PathValidation::kLifetime, rng_);
  ASSERT_TRUE(second.has_value());
  EXPECT_NE(*first, *second);  // fresh bytes for every challenge
  EXPECT_FALSE(v_.on_response(*first, at("203.0.113.9", 50000), PathValidation::kLifetime + 1));
  EXPECT_TRUE(v_.on_response(*second, at("203.0.113.9", 50000), PathValidation::kLifetime + 2));
}

TEST_F(PathValidationTest, NoChallengeLargerThanWhatTriggeredIt) {
  EXPECT_FALSE(v_.on_datagram(at("203.0.113.9", 50000), kBig - 1, 0, rng_).has_value());
  EXPECT_EQ(v_.stats().started, 0u);
  EXPECT_TRUE(v_.on_datagram(at("203.0.113.9", 50000), kBig, 0, rng_).has_value());
}

TEST_F(PathValidationTest, RepeatsAreRateLimitedAndCarryTheSameBytes) {
  auto c = v_.on_datagram(at("203.0.113.9", 50000), kBig, 0, rng_);
  ASSERT_TRUE(c.has_value());
  int sent = 1;
  // A flood of datagrams from the address over one second: one challenge
  // per interval.
  for (TimePoint t = milliseconds(1); t < seconds(1); t += milliseconds(1)) {
    auto again = v_.on_datagram(at("203.0.113.9", 50000), 1400, t, rng_);
    if (again) {
      ++sent;
      EXPECT_EQ(*again, *c);
    }
  }
  EXPECT_EQ(sent, 4);
  EXPECT_EQ(v_.stats().started, 1u);
  EXPECT_EQ(v_.stats().challenges_sent, 4u);
}

TEST_F(PathValidationTest, AtMostKSlotsAddressesAtATimeTheOldestGivesWay) {
  std::vector<Bytes16> data;
  for (int i = 0; i < 5; ++i) {
    std::string ip = "203.0.113." + std::to_string(10 + i);
    auto c = v_.on_datagram(at(ip.c_str(), 50000), kBig, milliseconds(i), rng_);
    ASSERT_TRUE(c.has_value());
    data.push_back(*c);
  }
  EXPECT_EQ(v_.stats().started, 5u);
  EXPECT_EQ(v_.stats().failed, 1u);  // the first gave way
  EXPECT_FALSE(v_.on_response(data[0], at("203.0.113.10", 50000), milliseconds(10)));
  EXPECT_TRUE(v_.on_response(data[4], at("203.0.113.14", 50000), milliseconds(10)));
  EXPECT_FALSE(v_.pending());  // the others are moot
}

}  // namespace
}  // namespace buckwild::session

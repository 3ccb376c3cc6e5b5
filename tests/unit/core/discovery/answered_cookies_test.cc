#include "core/discovery/answered_cookies.h"

#include <gtest/gtest.h>

#include <array>

namespace buckwild::discovery {
namespace {

const Endpoint kAlice = Endpoint::ipv4(0x0AC80001, 1025);

TEST(AnsweredCookiesTest, HoldsThePairForItsLifetimeOnly) {
  AnsweredCookies a(1024, seconds(60), 7);
  std::array<std::uint8_t, 32> cookie{};
  cookie[0] = 1;
  std::array<std::uint8_t, 32> other = cookie;
  other[31] = 9;
  EXPECT_FALSE(a.contains(kAlice, cookie, seconds(10)));
  a.remember(kAlice, cookie, seconds(10));
  EXPECT_TRUE(a.contains(kAlice, cookie, seconds(10)));
  EXPECT_TRUE(a.contains(kAlice, cookie, seconds(69)));
  EXPECT_FALSE(a.contains(kAlice, cookie, seconds(70)));          // its lifetime is over
  EXPECT_FALSE(a.contains(kAlice, other, seconds(11)));           // another cookie
  EXPECT_FALSE(a.contains(Endpoint::ipv4(0x0AC80001, 1026), cookie, seconds(11)));  // another port
  EXPECT_FALSE(a.contains(Endpoint::ipv4(0x0AC80002, 1025), cookie, seconds(11)));  // another address
}

TEST(AnsweredCookiesTest, MemoryIsFixedAndALaterPairMayTakeASlotOver) {
  AnsweredCookies a(1, seconds(60), 7);  // one slot
  std::array<std::uint8_t, 32> first{}, second{};
  second[0] = 1;
  a.remember(kAlice, first, seconds(1));
  a.remember(kAlice, second, seconds(2));
  EXPECT_FALSE(a.contains(kAlice, first, seconds(2)));
  EXPECT_TRUE(a.contains(kAlice, second, seconds(2)));
}

}  // namespace
}  // namespace buckwild::discovery

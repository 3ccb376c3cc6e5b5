#include "core/session/pmtu_search.h"

#include <gtest/gtest.h>

#include <functional>

namespace buckwild::session {
namespace {

constexpr Duration kTimeout = milliseconds(300);

// Drives a search against a path that carries datagrams up to `path_max`,
// answering every probe that fits at once, until it completes or `limit`
// passes. Returns the virtual time it took.
Duration run(PmtuSearch& s, std::size_t path_max, std::size_t peer_max, TimePoint& now,
             Duration limit = seconds(120)) {
  const TimePoint start = now;
  while (now - start < limit) {
    if (auto p = s.poll(now, kTimeout)) {
      if (p->size <= path_max) s.on_ack(p->id, p->size, peer_max, now + milliseconds(10));
    }
    if (s.state() == PmtuSearch::State::kComplete) break;
    now = std::max(now + milliseconds(10), std::min(s.next_expiry(kTimeout), now + seconds(1)));
  }
  return now - start;
}

TEST(PmtuSearchTest, StartsAtTheBaseAndProbesItFirst) {
  PmtuSearch s(1232, 8972, 0);
  EXPECT_EQ(s.current(), 1232u);
  EXPECT_EQ(s.state(), PmtuSearch::State::kBase);
  auto p = s.poll(0, kTimeout);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->size, 1232u);
  // Nothing more until it is answered or times out.
  EXPECT_FALSE(s.poll(milliseconds(100), kTimeout).has_value());
  EXPECT_EQ(s.next_expiry(kTimeout), kTimeout);
}

TEST(PmtuSearchTest, TheBoundIsTheSmallerOfBothMaxima) {
  PmtuSearch s(1232, 8972, 0);
  auto p = s.poll(0, kTimeout);
  s.on_ack(p->id, p->size, 1472, 0);
  EXPECT_EQ(s.bound(), 1472u);
  EXPECT_EQ(s.peer_max(), 1472u);
  auto next = s.poll(0, kTimeout);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->size, 1472u);  // optimistic: the bound first
  EXPECT_TRUE(s.on_ack(next->id, next->size, 1472, 0));
  EXPECT_EQ(s.current(), 1472u);
  EXPECT_EQ(s.state(), PmtuSearch::State::kComplete);
}

TEST(PmtuSearchTest, FindsANarrowLinkInTheMiddle) {
  // 9000-byte host, 1500-byte peer (1472 datagram), 1400-byte link between (1372 over IPv4).
  PmtuSearch s(1232, 8972, 0);
  TimePoint now = 0;
  const Duration took = run(s, 1372, 1472, now);
  EXPECT_EQ(s.state(), PmtuSearch::State::kComplete);
  EXPECT_LE(s.current(), 1372u);
  EXPECT_GT(s.current() + PmtuSearch::kGranularity, 1372u);
  EXPECT_LT(took, seconds(10));
}

TEST(PmtuSearchTest, ALargeBoundIsSearchedInFewSteps) {
  PmtuSearch s(1232, 8972, 0);
  TimePoint now = 0;
  run(s, 4000, 8972, now);
  EXPECT_EQ(s.state(), PmtuSearch::State::kComplete);
  EXPECT_LE(s.current(), 4000u);
  EXPECT_GT(s.current() + PmtuSearch::kGranularity, 4000u);
}

TEST(PmtuSearchTest, ASizeFailsOnlyAfterMaxProbesLosses) {
  PmtuSearch s(1232, 1472, 0);
  auto base = s.poll(0, kTimeout);
  s.on_ack(base->id, base->size, 1472, 0);
  auto p = s.poll(0, kTimeout);
  ASSERT_EQ(p->size, 1472u);
  TimePoint now = 0;
  for (int i = 1; i < PmtuSearch::kMaxProbes; ++i) {
    now += kTimeout;
    auto again = s.poll(now, kTimeout);
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->size, 1472u);
    EXPECT_EQ(again->id, p->id);
  }
  // A late ACK of an earlier copy still counts.
  EXPECT_TRUE(s.on_ack(p->id, 1472, 1472, now));
  EXPECT_EQ(s.current(), 1472u);
}

TEST(PmtuSearchTest, StaleAndMismatchedAcksAreIgnored) {
  PmtuSearch s(1232, 8972, 0);
  auto p = s.poll(0, kTimeout);
  EXPECT_FALSE(s.on_ack(p->id + 1, p->size, 8972, 0));
  EXPECT_FALSE(s.on_ack(p->id, p->size + 1, 8972, 0));
  EXPECT_EQ(s.state(), PmtuSearch::State::kBase);
}

TEST(PmtuSearchTest, ALocalSendFailureFailsTheSizeAtOnce) {
  PmtuSearch s(1232, 8972, 0);
  auto base = s.poll(0, kTimeout);
  s.on_ack(base->id, base->size, 8972, 0);
  auto p = s.poll(0, kTimeout);
  ASSERT_EQ(p->size, 8972u);
  s.on_send_failed(p->id, 0);
  auto next = s.poll(0, kTimeout);
  ASSERT_TRUE(next.has_value());
  EXPECT_LT(next->size, 8972u);
}

TEST(PmtuSearchTest, ABlackHoleFallsBackToTheBaseAndSearchesAgain) {
  PmtuSearch s(1232, 8972, 0);
  TimePoint now = 0;
  run(s, 8972, 8972, now);
  ASSERT_EQ(s.current(), 8972u);
  // The path shrinks to 1400 bytes: the next confirmation goes unanswered.
  now += PmtuSearch::kConfirmInterval;
  bool fell_back = false;
  for (int i = 0; i < 100 && !fell_back; ++i) {
    if (auto p = s.poll(now, kTimeout); p && p->size <= 1372) s.on_ack(p->id, p->size, 8972, now);
    fell_back = s.current() == 1232u || s.state() == PmtuSearch::State::kBase;
    now += milliseconds(100);
  }
  ASSERT_TRUE(fell_back);
  EXPECT_LT(now, PmtuSearch::kConfirmInterval + seconds(3));
  run(s, 1372, 8972, now);
  EXPECT_EQ(s.state(), PmtuSearch::State::kComplete);
  EXPECT_LE(s.current(), 1372u);
  EXPECT_GT(s.current() + PmtuSearch::kGranularity, 1372u);
}

TEST(PmtuSearchTest, ConfirmationsKeepAGoodSize) {
  PmtuSearch s(1232, 1472, 0);
  TimePoint now = 0;
  run(s, 1472, 1472, now);
  for (int i = 0; i < 5; ++i) {
    now = s.next_expiry(kTimeout);
    auto p = s.poll(now, kTimeout);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->size, 1472u);
    s.on_ack(p->id, p->size, 1472, now);
    EXPECT_EQ(s.current(), 1472u);
  }
}

TEST(PmtuSearchTest, TheRaiseTimerSearchesUpwardAgain) {
  PmtuSearch s(1232, 8972, 0);
  TimePoint now = 0;
  run(s, 1372, 8972, now);
  const std::size_t before = s.current();
  ASSERT_LT(before, 1400u);
  // The narrow link goes away; confirmations keep passing meanwhile.
  const TimePoint raise = now + PmtuSearch::kRaiseInterval;
  while (now < raise) {
    now = std::min(s.next_expiry(kTimeout), raise);
    if (auto p = s.poll(now, kTimeout)) s.on_ack(p->id, p->size, 8972, now);
  }
  run(s, 8972, 8972, now);
  EXPECT_EQ(s.current(), 8972u);
}

TEST(PmtuSearchTest, ABaseThatFailsIsKeptAndRetriedLater) {
  PmtuSearch s(1232, 8972, 0);
  TimePoint now = 0;
  for (int i = 0; i < PmtuSearch::kMaxProbes; ++i) {
    ASSERT_TRUE(s.poll(now, kTimeout).has_value());
    now += kTimeout;
  }
  EXPECT_FALSE(s.poll(now, kTimeout).has_value());
  EXPECT_EQ(s.current(), 1232u);
  EXPECT_EQ(s.next_expiry(kTimeout), now + PmtuSearch::kBaseRetryInterval);
}

TEST(PmtuSearchTest, APeerMaximumBelowTheBaseKeepsTheBase) {
  PmtuSearch s(1232, 8972, 0);
  auto p = s.poll(0, kTimeout);
  s.on_ack(p->id, p->size, 576, 0);
  EXPECT_EQ(s.bound(), 1232u);
  EXPECT_EQ(s.current(), 1232u);
  EXPECT_EQ(s.state(), PmtuSearch::State::kComplete);
}

}  // namespace
}  // namespace buckwild::session

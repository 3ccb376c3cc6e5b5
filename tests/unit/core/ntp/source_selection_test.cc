#include "core/ntp/source_selection.h"

#include <gtest/gtest.h>

#include <vector>

namespace buckwild::ntp {
namespace {

TEST(SourceSelectionTest, NoCandidatesNoTime) {
  const Selection s = select_sources({});
  EXPECT_FALSE(s.offset_us);
}

TEST(SourceSelectionTest, OneSourceIsItsOwnMajority) {
  std::vector<Candidate> c = {{3'000'000, 5'000}};
  const Selection s = select_sources(c);
  ASSERT_TRUE(s.offset_us);
  EXPECT_EQ(*s.offset_us, 3'000'000);
  EXPECT_TRUE(s.truechimer[0]);
}

TEST(SourceSelectionTest, AFalsetickerAmongThreeIsRejected) {
  // Two honest servers agree on −3 s; the third lies by +10 s.
  std::vector<Candidate> c = {{-3'000'200, 4'000}, {-2'999'900, 3'000}, {7'000'000, 3'000}};
  const Selection s = select_sources(c);
  ASSERT_TRUE(s.offset_us);
  EXPECT_TRUE(s.truechimer[0]);
  EXPECT_TRUE(s.truechimer[1]);
  EXPECT_FALSE(s.truechimer[2]);
  EXPECT_NEAR(static_cast<double>(*s.offset_us), -3'000'000.0, 300.0);
  EXPECT_EQ(s.distance_us, 3'000);
}

TEST(SourceSelectionTest, ALiarWithAWideIntervalCannotPullTheResult) {
  // The liar claims a huge root distance so that its interval covers both
  // honest ones; it is a truechimer only in name: the weights keep it out.
  std::vector<Candidate> c = {{0, 2'000}, {500, 2'000}, {1'000'000, 1'400'000}};
  const Selection s = select_sources(c);
  ASSERT_TRUE(s.offset_us);
  EXPECT_LT(*s.offset_us, 2'000);
}

TEST(SourceSelectionTest, SplitWithoutMajoritySelectsNothing) {
  std::vector<Candidate> two = {{0, 2'000}, {10'000'000, 2'000}};
  EXPECT_FALSE(select_sources(two).offset_us);
  std::vector<Candidate> four = {{0, 2'000}, {1'000, 2'000}, {9'000'000, 2'000}, {9'001'000, 2'000}};
  EXPECT_FALSE(select_sources(four).offset_us);
}

TEST(SourceSelectionTest, TinyDistancesStillOverlap) {
  // Two LAN servers a millisecond apart with microsecond distances agree.
  std::vector<Candidate> c = {{0, 10}, {1'000, 10}};
  const Selection s = select_sources(c);
  ASSERT_TRUE(s.offset_us);
  EXPECT_TRUE(s.truechimer[0] && s.truechimer[1]);
}

TEST(SourceSelectionTest, CorrectnessDistanceAddsHalfTheDelayAndTheJitter) {
  EXPECT_EQ(correctness_distance(10'000, 4'000, 500), 12'500);
  EXPECT_EQ(correctness_distance(0, 0, 0), kMinDistanceUs);
}

}  // namespace
}  // namespace buckwild::ntp

namespace buckwild::ntp {
namespace {

TEST(SourceSelectionTest, ServersNotYetAnsweredCountAsNotAgreeing) {
  // The first of three to answer (a liar, perhaps) is not a majority.
  std::vector<Candidate> first = {{10'000'000, 2'000}};
  EXPECT_FALSE(select_sources(first, 3).offset_us);
  std::vector<Candidate> two = {{10'000'000, 2'000}, {0, 2'000}};
  EXPECT_FALSE(select_sources(two, 3).offset_us);
  std::vector<Candidate> honest = {{100, 2'000}, {0, 2'000}};
  EXPECT_TRUE(select_sources(honest, 3).offset_us);
}

}  // namespace
}  // namespace buckwild::ntp

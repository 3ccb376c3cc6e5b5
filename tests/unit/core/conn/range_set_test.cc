#include "core/conn/range_set.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace buckwild::conn {
namespace {

using Pieces = std::vector<std::pair<Seq, Seq>>;

Pieces add(RangeSet& s, Seq a, Seq b, bool* ok = nullptr) {
  Pieces p;
  const bool r = s.add(a, b, [&](Seq x, Seq y) { p.emplace_back(x, y); });
  if (ok) *ok = r;
  return p;
}

TEST(RangeSetTest, MergesTouchingAndOverlappingRanges) {
  RangeSet s(8);
  EXPECT_EQ(add(s, 10, 20), (Pieces{{10, 20}}));
  EXPECT_EQ(add(s, 30, 40), (Pieces{{30, 40}}));
  EXPECT_EQ(s.size(), 2u);
  // Fills the gap and touches both: one range, only the gap is new.
  EXPECT_EQ(add(s, 15, 35), (Pieces{{20, 30}}));
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0], (SeqRange{10, 40}));
  EXPECT_EQ(add(s, 40, 41), (Pieces{{40, 41}}));
  EXPECT_EQ(s[0], (SeqRange{10, 41}));
  EXPECT_TRUE(add(s, 12, 30).empty());  // nothing new
}

TEST(RangeSetTest, ReportsEveryGapOfAWideAdd) {
  RangeSet s(8);
  add(s, 10, 12);
  add(s, 14, 16);
  add(s, 20, 21);
  EXPECT_EQ(add(s, 5, 25), (Pieces{{5, 10}, {12, 14}, {16, 20}, {21, 25}}));
  EXPECT_EQ(s.size(), 1u);
}

TEST(RangeSetTest, RefusesToExceedTheBound) {
  RangeSet s(2);
  add(s, 1, 2);
  add(s, 5, 6);
  bool ok = true;
  EXPECT_TRUE(add(s, 9, 10, &ok).empty());
  EXPECT_FALSE(ok);
  EXPECT_EQ(s.size(), 2u);
  add(s, 2, 5, &ok);  // merging is always possible
  EXPECT_TRUE(ok);
  EXPECT_EQ(s.size(), 1u);
}

TEST(RangeSetTest, WorksAcrossTheWrap) {
  RangeSet s(4);
  add(s, 0xFFFFFFF0u, 0xFFFFFFF8u);
  add(s, 0xFFFFFFFEu, 5);
  EXPECT_TRUE(s.contains(0xFFFFFFFFu));
  EXPECT_TRUE(s.contains(2));
  EXPECT_FALSE(s.contains(0xFFFFFFF9u));
  s.remove_below(1);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0], (SeqRange{1, 5}));
}

TEST(RangeSetTest, RemoveBelowTrims) {
  RangeSet s(4);
  add(s, 10, 20);
  add(s, 30, 40);
  s.remove_below(15);
  EXPECT_EQ(s[0], (SeqRange{15, 20}));
  s.remove_below(35);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0], (SeqRange{35, 40}));
  s.remove_below(50);
  EXPECT_TRUE(s.empty());
}

}  // namespace
}  // namespace buckwild::conn

#include "core/conn/range_set.h"

#include <gtest/gtest.h>

#include <bitset>
#include <random>
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

// Random adds near the wrap, checked against a bitset of the same span: the
// bisection finds the same neighbours a scan would, every reported piece was
// new, and the ranges stay sorted, disjoint and apart (hundreds at once, as a
// receiver under loss holds).
TEST(RangeSetTest, MatchesABitsetModelWithHundredsOfRanges) {
  constexpr std::size_t kSpan = 4096;
  constexpr Seq kBase = 0xFFFFF800u;  // the span crosses the wrap
  std::mt19937 rng(19);
  for (int trial = 0; trial < 20; ++trial) {
    RangeSet s(1024);
    std::bitset<kSpan> model;
    for (int i = 0; i < 600; ++i) {
      const auto a = static_cast<std::size_t>(rng() % (kSpan - 1));
      const auto b = a + 1 + static_cast<std::size_t>(rng() % std::min<std::size_t>(4, kSpan - a - 1));
      bool ok = false;
      const Pieces pieces = add(s, kBase + static_cast<Seq>(a), kBase + static_cast<Seq>(b), &ok);
      if (!ok) continue;  // over the bound: nothing changed
      std::size_t covered = 0;
      for (const auto& [x, y] : pieces) {
        for (Seq q = x; q != y; ++q) {
          EXPECT_FALSE(model[q - kBase]) << "piece reported twice at " << q - kBase;
          ++covered;
        }
      }
      std::size_t fresh = 0;
      for (std::size_t q = a; q < b; ++q) fresh += model[q] ? 0 : 1;
      EXPECT_EQ(covered, fresh);
      for (std::size_t q = a; q < b; ++q) model[q] = true;
    }
    EXPECT_GT(s.size(), 100u);
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (i > 0) {
        EXPECT_TRUE(seq_lt(s[i - 1].end, s[i].start)) << "ranges " << i - 1 << " and " << i << " touch";
      }
    }
    for (std::size_t q = 0; q < kSpan; ++q) {
      EXPECT_EQ(s.contains(kBase + static_cast<Seq>(q)), model[q]) << "at " << q;
    }
  }
}

}  // namespace
}  // namespace buckwild::conn

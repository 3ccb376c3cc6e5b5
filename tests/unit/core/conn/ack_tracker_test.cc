#include "core/conn/ack_tracker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>

namespace buckwild::conn {
namespace {

TEST(AckTrackerTest, BitmapDescribesTheNext32Segments) {
  AckTracker t(64);
  t.start(1000);
  EXPECT_EQ(t.bitmap(), 0u);
  t.add(1001);  // bit 0
  t.add(1003);  // bit 2
  t.add(1032);  // bit 31
  t.add(1033);  // beyond the bitmap
  EXPECT_EQ(t.bitmap(), (1u << 0) | (1u << 2) | (1u << 31));
  EXPECT_FALSE(t.bitmap_covers_all());
  EXPECT_TRUE(t.holds(1033));
  EXPECT_FALSE(t.holds(1002));
}

TEST(AckTrackerTest, BlocksPutTheMostRecentFirst) {
  AckTracker t(64);
  t.start(0);
  t.add(10);
  t.add(11);
  t.add(20);
  t.add(5);
  t.add(12);  // most recent: extends [10, 12)
  std::array<wire::SackBlock, 32> blocks{};
  ASSERT_EQ(t.blocks(blocks), 3u);
  EXPECT_EQ(blocks[0], (wire::SackBlock{10, 13}));
  EXPECT_EQ(blocks[1], (wire::SackBlock{5, 6}));
  EXPECT_EQ(blocks[2], (wire::SackBlock{20, 21}));
  std::array<wire::SackBlock, 2> two{};
  EXPECT_EQ(t.blocks(two), 2u);  // truncated to what fits
}

// Under loss at a large window there are more ranges than blocks. A batch of
// arrivals that extends one range and then starts the next, past a hole,
// must still report the first range's new end: it is not the newest any
// more, nor among the lowest. If it were left out, the sender would see
// those segments as missing behind delivered ones and resend them.
TEST(AckTrackerTest, EveryRangeABatchChangedIsReportedAmongHundreds) {
  AckTracker t(1024);
  t.start(0);
  // 200 ranges [10k + 1, 10k + 5), k = 0..199, with holes between them.
  for (Seq k = 0; k < 200; ++k) {
    for (Seq s = 10 * k + 1; s < 10 * k + 5; ++s) ASSERT_TRUE(t.add(s));
  }
  std::array<wire::SackBlock, 32> blocks{};
  ASSERT_EQ(t.blocks(blocks), 32u);
  // One batch: range 150 grows by two, then three ranges above it start.
  t.add(1505);
  t.add(1506);
  t.add(2001);
  t.add(2011);
  t.add(2021);
  ASSERT_EQ(t.blocks(blocks), 32u);
  auto has = [&](wire::SackBlock b) { return std::find(blocks.begin(), blocks.end(), b) != blocks.end(); };
  EXPECT_EQ(blocks[0], (wire::SackBlock{2021, 2022}));  // the newest first
  EXPECT_EQ(blocks[1], (wire::SackBlock{2011, 2012}));
  EXPECT_EQ(blocks[2], (wire::SackBlock{2001, 2002}));
  EXPECT_EQ(blocks[3], (wire::SackBlock{1501, 1507}));  // the grown one, whole
  // At most half the blocks go to recent changes: the lowest ranges, above
  // the holes a sender repairs first, fill the rest.
  EXPECT_TRUE(has(wire::SackBlock{1, 5}));
  EXPECT_TRUE(has(wire::SackBlock{151, 155}));
  EXPECT_FALSE(has(wire::SackBlock{161, 165}));
  // Segments whose ranges went below the ack point are skipped.
  while (t.ack() < 1600) t.advance();
  ASSERT_EQ(t.blocks(blocks), 32u);
  EXPECT_EQ(blocks[0], (wire::SackBlock{2021, 2022}));
  for (const auto& b : blocks) EXPECT_GE(b.start, 1600u);
}

TEST(AckTrackerTest, AdvancingDropsCoveredRangesAndWraps) {
  AckTracker t(8);
  t.start(0xFFFFFFFEu);
  t.add(0xFFFFFFFFu);
  t.add(0);
  EXPECT_EQ(t.bitmap(), 0b11u);
  t.advance();  // 0xFFFFFFFE arrived
  EXPECT_EQ(t.ack(), 0xFFFFFFFFu);
  EXPECT_EQ(t.bitmap(), 0b1u);  // 0 is ack + 1
  t.advance();
  t.advance();
  EXPECT_EQ(t.ack(), 1u);
  EXPECT_TRUE(t.empty());
}

TEST(AckTrackerTest, BoundedRanges) {
  AckTracker t(2);
  t.start(0);
  EXPECT_TRUE(t.add(5));
  EXPECT_TRUE(t.add(9));
  EXPECT_FALSE(t.add(20));  // a third disjoint range
  EXPECT_TRUE(t.add(6));    // merges
}

}  // namespace
}  // namespace buckwild::conn

#include "core/conn/ack_tracker.h"

#include <gtest/gtest.h>

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

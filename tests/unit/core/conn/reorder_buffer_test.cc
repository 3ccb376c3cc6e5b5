#include "core/conn/reorder_buffer.h"

#include <gtest/gtest.h>

#include <vector>

namespace buckwild::conn {
namespace {

std::vector<std::uint8_t> bytes(std::size_t n, std::uint8_t v) { return std::vector<std::uint8_t>(n, v); }

TEST(ReorderBufferTest, StoresByDistanceAndAdvances) {
  ReorderBuffer r(4, 100);
  EXPECT_EQ(r.allocated(), 0u);  // nothing until the first out-of-order segment
  EXPECT_EQ(r.store(2, bytes(10, 2)), ReorderBuffer::Store::kStored);
  EXPECT_EQ(r.store(1, bytes(20, 1)), ReorderBuffer::Store::kStored);
  EXPECT_GT(r.allocated(), 0u);
  EXPECT_EQ(r.count(), 2u);
  EXPECT_TRUE(r.front().empty());
  r.advance();  // the expected segment arrived elsewhere
  ASSERT_EQ(r.front().size(), 20u);
  EXPECT_EQ(r.front()[0], 1);
  r.advance();
  ASSERT_EQ(r.front().size(), 10u);
  r.advance();
  EXPECT_EQ(r.count(), 0u);
  EXPECT_TRUE(r.front().empty());
}

TEST(ReorderBufferTest, DuplicatesAndBounds) {
  ReorderBuffer r(4, 100);
  EXPECT_EQ(r.store(3, bytes(5, 0)), ReorderBuffer::Store::kStored);
  EXPECT_EQ(r.store(3, bytes(5, 0)), ReorderBuffer::Store::kDuplicate);
  EXPECT_EQ(r.store(4, bytes(5, 0)), ReorderBuffer::Store::kRejected);    // beyond the slots
  EXPECT_EQ(r.store(1, bytes(101, 0)), ReorderBuffer::Store::kRejected);  // larger than a slot
  EXPECT_EQ(r.store(1, {}), ReorderBuffer::Store::kRejected);
  EXPECT_LE(r.allocated(), 4u * 100u + 4u * sizeof(std::uint16_t));
}

TEST(ReorderBufferTest, SlotsAreReusedAfterTheRingTurns) {
  ReorderBuffer r(3, 8);
  for (int round = 0; round < 10; ++round) {
    EXPECT_EQ(r.store(2, bytes(8, static_cast<std::uint8_t>(round))), ReorderBuffer::Store::kStored);
    r.advance();
    r.advance();
    ASSERT_EQ(r.front().size(), 8u);
    EXPECT_EQ(r.front()[0], round);
    r.advance();
  }
}

}  // namespace
}  // namespace buckwild::conn

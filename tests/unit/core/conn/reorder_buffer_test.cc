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
  EXPECT_LE(r.allocated(), 4u * 100u + 4u * sizeof(std::uint16_t) + 64u);
}

// Storage follows what is held: a page of kSlotsPerPage slots is allocated
// when a segment first lands in it and freed when its last one leaves.
TEST(ReorderBufferTest, PagesComeAndGoWithTheSegmentsInThem) {
  const std::size_t page = ReorderBuffer::kSlotsPerPage * 100;
  ReorderBuffer r(1000, 100);
  ASSERT_EQ(r.store(1, bytes(100, 1)), ReorderBuffer::Store::kStored);
  const std::size_t one_page = r.allocated();
  EXPECT_GE(one_page, page);
  EXPECT_LT(one_page, 2 * page + 1000 * sizeof(std::uint16_t) + 1024) << "not the whole range";
  ASSERT_EQ(r.store(900, bytes(100, 9)), ReorderBuffer::Store::kStored);
  EXPECT_EQ(r.allocated(), one_page + page);
  r.erase(900);
  EXPECT_EQ(r.allocated(), one_page);
  r.advance();
  r.advance();  // the segment at distance 1 leaves: its page goes
  EXPECT_EQ(r.count(), 0u);
  EXPECT_EQ(r.allocated(), one_page - page);
  r.release_if_empty();
  EXPECT_EQ(r.allocated(), 0u);
}

// With a budget, each page is charged; one the budget cannot give refuses the
// segment, and the charge goes back as pages are freed.
TEST(ReorderBufferTest, PagesAreChargedToTheBudgetAndRefusedPastIt) {
  const std::size_t page = ReorderBuffer::kSlotsPerPage * 100;
  MemoryBudget budget(2 * page);
  {
    ReorderBuffer r(1000, 100, &budget);
    EXPECT_EQ(r.store(1, bytes(100, 1)), ReorderBuffer::Store::kStored);
    EXPECT_EQ(r.store(2, bytes(100, 2)), ReorderBuffer::Store::kStored);  // same page
    EXPECT_EQ(budget.used(), page);
    EXPECT_EQ(r.store(100, bytes(100, 3)), ReorderBuffer::Store::kStored);
    EXPECT_EQ(budget.used(), 2 * page);
    EXPECT_EQ(r.store(500, bytes(100, 4)), ReorderBuffer::Store::kRejected);
    EXPECT_EQ(budget.refusals(), 1u);
    EXPECT_FALSE(r.has(500));
    r.erase(100);
    EXPECT_EQ(budget.used(), page);
    EXPECT_EQ(r.store(500, bytes(100, 4)), ReorderBuffer::Store::kStored);
  }
  EXPECT_EQ(budget.used(), 0u) << "the destructor gives everything back";
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

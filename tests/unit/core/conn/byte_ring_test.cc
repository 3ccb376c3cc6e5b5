#include "core/conn/byte_ring.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace buckwild::conn {
namespace {

std::vector<std::uint8_t> iota(std::size_t n, std::uint8_t start) {
  std::vector<std::uint8_t> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

TEST(ByteRingTest, StartsWithoutStorageAndRespectsCapacity) {
  ByteRing r(10000);
  EXPECT_EQ(r.allocated(), 0u);
  auto data = iota(12000, 0);
  EXPECT_EQ(r.push(data), 10000u);
  EXPECT_EQ(r.size(), 10000u);
  EXPECT_EQ(r.free(), 0u);
  EXPECT_EQ(r.push(data), 0u);
  EXPECT_LE(r.allocated(), 10000u);
}

TEST(ByteRingTest, WrapsAroundAndCopiesOutAtAnyOffset) {
  ByteRing r(8192);
  auto a = iota(6000, 1);
  r.push(a);
  r.pop(5000);
  auto b = iota(6000, 7);  // crosses the end of the storage
  EXPECT_EQ(r.push(b), 6000u);
  std::vector<std::uint8_t> out(7000);
  r.copy_out(0, out);
  EXPECT_TRUE(std::equal(a.begin() + 5000, a.end(), out.begin()));
  EXPECT_TRUE(std::equal(b.begin(), b.end(), out.begin() + 1000));
  std::vector<std::uint8_t> mid(100);
  r.copy_out(2950, mid);
  EXPECT_TRUE(std::equal(b.begin() + 1950, b.begin() + 2050, mid.begin()));
}

TEST(ByteRingTest, GrowsKeepingOrderAndReleasesWhenEmpty) {
  ByteRing r(1 << 20);
  auto a = iota(3000, 3);
  r.push(a);
  r.pop(1000);
  auto b = iota(50000, 9);
  r.push(b);
  std::vector<std::uint8_t> out(52000);
  r.copy_out(0, out);
  EXPECT_TRUE(std::equal(a.begin() + 1000, a.end(), out.begin()));
  EXPECT_TRUE(std::equal(b.begin(), b.end(), out.begin() + 2000));
  r.release_if_empty();
  EXPECT_GT(r.allocated(), 0u);  // not empty: kept
  r.pop(r.size());
  r.release_if_empty();
  EXPECT_EQ(r.allocated(), 0u);
  EXPECT_EQ(r.push(a), 3000u);
}

// With a budget, the ring may always hold kGuaranteedRing bytes; past them it
// grows only as far as the budget allows, free() says so, and the storage is
// given back when the ring empties or goes.
TEST(ByteRingTest, GrowthPastTheGuaranteedBytesComesFromTheBudget) {
  constexpr std::size_t kG = MemoryBudget::kGuaranteedRing;
  MemoryBudget budget(10'000);
  {
    ByteRing other(1 << 20, &budget);
    ASSERT_EQ(other.push(std::vector<std::uint8_t>(kG + 10'000, 7)), kG + 10'000);
    EXPECT_EQ(budget.used(), 10'000u) << "only the bytes past the guaranteed ones";
    EXPECT_EQ(budget.available(), 0u) << "the other ring took the whole budget";

    ByteRing ring(1 << 20, &budget);
    EXPECT_EQ(ring.free(), kG) << "the guaranteed bytes, budget or not";
    EXPECT_EQ(ring.push(std::vector<std::uint8_t>(kG + 1, 1)), kG);
    EXPECT_EQ(ring.free(), 0u);
    EXPECT_EQ(budget.used(), 10'000u);

    other.pop(other.size());
    other.release_if_empty();
    EXPECT_EQ(ring.free(), 10'000u) << "what the other ring gave back";
    const std::vector<std::uint8_t> more(10'000, 2);
    EXPECT_EQ(ring.push(more), more.size());
    ByteRing moved(std::move(ring));
    EXPECT_EQ(moved.size(), kG + more.size());
  }
  EXPECT_EQ(budget.used(), 0u);
}

}  // namespace
}  // namespace buckwild::conn

#include "daemon/net/packet_pool.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <vector>

namespace buckwild::daemon {
namespace {

TEST(PacketPoolTest, HandsOutDistinctAlignedBuffersUntilExhausted) {
  PacketPool pool(4, 1500);
  EXPECT_EQ(pool.count(), 4u);
  EXPECT_EQ(pool.buffer_size(), 1500u);
  std::vector<PacketPool::Buffer> taken;
  std::set<std::uint8_t*> seen;
  for (int i = 0; i < 4; ++i) {
    PacketPool::Buffer b = pool.acquire();
    ASSERT_TRUE(b);
    EXPECT_EQ(b.capacity(), 1500u);
    EXPECT_EQ(b.length(), 0u);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.space().data()) % 64, 0u);
    seen.insert(b.space().data());
    taken.push_back(std::move(b));
  }
  EXPECT_EQ(seen.size(), 4u);
  EXPECT_EQ(pool.available(), 0u);
  PacketPool::Buffer none = pool.acquire();
  EXPECT_FALSE(none);
  EXPECT_TRUE(none.space().empty());
  EXPECT_EQ(none.capacity(), 0u);
  taken.pop_back();
  EXPECT_EQ(pool.available(), 1u);
  EXPECT_TRUE(pool.acquire());  // and straight back again
  taken.clear();
  EXPECT_EQ(pool.available(), 4u);
}

TEST(PacketPoolTest, BuffersDoNotOverlap) {
  PacketPool pool(3, 100);
  auto a = pool.acquire();
  auto b = pool.acquire();
  auto c = pool.acquire();
  std::fill(a.space().begin(), a.space().end(), 0xaa);
  std::fill(b.space().begin(), b.space().end(), 0xbb);
  std::fill(c.space().begin(), c.space().end(), 0xcc);
  for (auto x : a.space()) ASSERT_EQ(x, 0xaa);
  for (auto x : b.space()) ASSERT_EQ(x, 0xbb);
  for (auto x : c.space()) ASSERT_EQ(x, 0xcc);
}

TEST(PacketPoolTest, LengthAndPayload) {
  PacketPool pool(1, 64);
  auto b = pool.acquire();
  b.space()[0] = 7;
  b.set_length(10);
  EXPECT_EQ(b.length(), 10u);
  EXPECT_EQ(b.payload().size(), 10u);
  EXPECT_EQ(b.payload()[0], 7);
  EXPECT_EQ(b.payload().data(), b.space().data());
}

TEST(PacketPoolTest, MoveTransfersOwnership) {
  PacketPool pool(2, 32);
  auto a = pool.acquire();
  a.set_length(5);
  std::uint8_t* where = a.space().data();
  PacketPool::Buffer b(std::move(a));
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(a.length(), 0u);
  ASSERT_TRUE(b);
  EXPECT_EQ(b.space().data(), where);
  EXPECT_EQ(b.length(), 5u);
  EXPECT_EQ(pool.available(), 1u);
  PacketPool::Buffer c = pool.acquire();
  c = std::move(b);  // c's old buffer goes back
  EXPECT_EQ(pool.available(), 1u);
  EXPECT_EQ(c.space().data(), where);
  c.release();
  EXPECT_FALSE(c);
  EXPECT_EQ(pool.available(), 2u);
  c.release();  // idempotent
  EXPECT_EQ(pool.available(), 2u);
}

TEST(PacketPoolTest, ReusesRecentlyReturnedBuffersFirst) {
  PacketPool pool(8, 16);
  std::uint8_t* first;
  {
    auto a = pool.acquire();
    first = a.space().data();
  }
  auto again = pool.acquire();
  EXPECT_EQ(again.space().data(), first);
}

}  // namespace
}  // namespace buckwild::daemon

#include "core/conn/retransmission_queue.h"

#include <gtest/gtest.h>

#include <vector>

namespace buckwild::conn {
namespace {

Segment seg(std::uint64_t offset, std::uint16_t length) {
  Segment s;
  s.offset = offset;
  s.length = length;
  return s;
}

TEST(RetransmissionQueueTest, IndexesBySequenceAcrossGrowthAndWrap) {
  RetransmissionQueue q(1000);
  q.reset(0xFFFFFFF0u);
  for (std::uint32_t i = 0; i < 300; ++i) EXPECT_EQ(q.push(seg(std::uint64_t{i} * 10, 10)), 0xFFFFFFF0u + i);
  EXPECT_EQ(q.size(), 300u);
  EXPECT_EQ(q.at(0xFFFFFFF0u + 77).offset, 770u);
  EXPECT_EQ(q.at(5).offset, (16u + 5u) * 10u);  // past the wrap
  for (int i = 0; i < 100; ++i) q.pop_front();
  EXPECT_EQ(q.front_seq(), 0xFFFFFFF0u + 100);
  EXPECT_EQ(q.at(q.front_seq()).offset, 1000u);
  EXPECT_TRUE(q.contains(q.end_seq() - 1));
  EXPECT_FALSE(q.contains(q.end_seq()));
}

TEST(RetransmissionQueueTest, BoundedSize) {
  RetransmissionQueue q(3);
  q.reset(1);
  q.push(seg(0, 1));
  q.push(seg(1, 1));
  q.push(seg(2, 1));
  EXPECT_TRUE(q.full());
}

TEST(RetransmissionQueueTest, SendOrderListAppendsAndRemovesAnywhere) {
  RetransmissionQueue q(100);
  q.reset(10);
  for (int i = 0; i < 5; ++i) q.push(seg(static_cast<std::uint64_t>(i), 1));
  for (Seq s = 10; s < 15; ++s) q.list_append(s);
  q.list_remove(12);
  q.list_remove(10);
  q.list_append(10);  // retransmitted: moves to the tail
  std::vector<Seq> order;
  for (std::size_t n = q.list_size(); n > 0; --n) {
    const Seq s = q.list_front();
    order.push_back(s);
    q.list_remove(s);
  }
  EXPECT_EQ(order, (std::vector<Seq>{11, 13, 14, 10}));
  EXPECT_TRUE(q.list_empty());
}

}  // namespace
}  // namespace buckwild::conn

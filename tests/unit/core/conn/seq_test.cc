#include "core/conn/seq.h"

#include <gtest/gtest.h>

namespace buckwild::conn {
namespace {

TEST(SeqTest, SerialComparisonAcrossTheWrap) {
  EXPECT_TRUE(seq_lt(0xFFFFFFFFu, 0));
  EXPECT_TRUE(seq_gt(5, 0xFFFFFFF0u));
  EXPECT_EQ(seq_diff(3, 0xFFFFFFFEu), 5);
  EXPECT_EQ(seq_max(0xFFFFFFFFu, 2), 2u);
  EXPECT_EQ(seq_min(0xFFFFFFFFu, 2), 0xFFFFFFFFu);
  EXPECT_TRUE(seq_in(0, 0xFFFFFFF0u, 10));
  EXPECT_FALSE(seq_in(10, 0xFFFFFFF0u, 10));
  EXPECT_TRUE(seq_le(7, 7) && seq_ge(7, 7));
}

}  // namespace
}  // namespace buckwild::conn

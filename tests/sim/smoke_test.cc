// First contact: a handshake and a small exchange over a clean path.
#include <gtest/gtest.h>

#include "sim/scenario.h"

namespace buckwild::sim {
namespace {

TEST(SmokeTest, SmallTransferBothWays) {
  PathConfig p;
  p.a_to_b.delay = milliseconds(10);
  p.b_to_a.delay = milliseconds(10);
  p.conn.time_wait = seconds(1);
  const TransferResult r = run_transfer(p, 100'000, seconds(60), true);
  EXPECT_TRUE(r.completed) << r.describe();
  EXPECT_TRUE(r.a_exact) << r.describe();
  EXPECT_TRUE(r.b_exact) << r.describe();
  EXPECT_EQ(r.invariant_failures, 0u);
}

}  // namespace
}  // namespace buckwild::sim

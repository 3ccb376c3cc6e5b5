#include "core/conn/congestion_control.h"

#include <gtest/gtest.h>

namespace buckwild::conn {
namespace {

TEST(CongestionControlTest, FactoryMakesNewReno) {
  auto cc = make_congestion_controller(CongestionAlgorithm::kNewReno, 1200);
  ASSERT_NE(cc, nullptr);
  EXPECT_EQ(cc->name(), "newreno");
  EXPECT_EQ(cc->congestion_window(), 12'000u);
}

TEST(CongestionControlTest, RateSampleRate) {
  RateSample r;
  EXPECT_EQ(r.rate(), 0u);
  r.delivered = 125'000;
  r.interval = milliseconds(10);
  EXPECT_EQ(r.rate(), 12'500'000u);
}

}  // namespace
}  // namespace buckwild::conn

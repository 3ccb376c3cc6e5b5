#include "core/conn/rto.h"

#include <gtest/gtest.h>

namespace buckwild::conn {
namespace {

TEST(RtoTest, InitialValueBeforeAnySample) {
  RttEstimator e;
  EXPECT_FALSE(e.has_sample());
  EXPECT_EQ(e.rto(), seconds(1));
}

TEST(RtoTest, FirstSampleSetsSrttAndHalfVariance) {
  RttEstimator e;
  e.on_sample(milliseconds(100));
  EXPECT_EQ(e.smoothed(), milliseconds(100));
  EXPECT_EQ(e.variation(), milliseconds(50));
  // 100 + 4 * 50 = 300 ms.
  EXPECT_EQ(e.rto(), milliseconds(300));
}

TEST(RtoTest, Rfc6298Smoothing) {
  RttEstimator e;
  e.on_sample(milliseconds(100));
  e.on_sample(milliseconds(200));
  // RTTVAR = 3/4 * 50 + 1/4 * |100 - 200| = 62.5; SRTT = 7/8 * 100 + 1/8 * 200 = 112.5.
  EXPECT_EQ(e.variation(), 62'500);
  EXPECT_EQ(e.smoothed(), 112'500);
  EXPECT_EQ(e.rto(), 112'500 + 4 * 62'500);
  EXPECT_EQ(e.min_rtt(), milliseconds(100));
  EXPECT_EQ(e.latest(), milliseconds(200));
}

TEST(RtoTest, ClampedToMinimumAndMaximum) {
  RttEstimator e;
  for (int i = 0; i < 50; ++i) e.on_sample(milliseconds(5));
  EXPECT_EQ(e.rto(), milliseconds(200));  // reference MIN_RTO
  RttEstimator slow;
  slow.on_sample(seconds(50));
  EXPECT_EQ(slow.rto(), seconds(60));  // reference MAX_RTO
}

TEST(RtoTest, ExponentialBackoffCappedAndClearedBySample) {
  RttEstimator e;
  e.on_sample(milliseconds(100));
  const Duration base = e.rto();
  e.on_timeout();
  EXPECT_EQ(e.backed_off_rto(), 2 * base);
  e.on_timeout();
  EXPECT_EQ(e.backed_off_rto(), 4 * base);
  for (int i = 0; i < 20; ++i) e.on_timeout();
  EXPECT_EQ(e.backed_off_rto(), seconds(60));
  // Karn: only a valid sample (never from a retransmission) ends the backoff.
  e.on_sample(milliseconds(100));
  EXPECT_EQ(e.backoff(), 0u);
  EXPECT_EQ(e.backed_off_rto(), e.rto());
}

TEST(RtoTest, ConfigurableBounds) {
  RtoConfig c;
  c.initial = milliseconds(500);
  c.min = milliseconds(50);
  RttEstimator e(c);
  EXPECT_EQ(e.rto(), milliseconds(500));
  for (int i = 0; i < 50; ++i) e.on_sample(milliseconds(10));
  EXPECT_EQ(e.rto(), milliseconds(50));
}

}  // namespace
}  // namespace buckwild::conn

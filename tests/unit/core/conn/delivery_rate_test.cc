#include "core/conn/delivery_rate.h"

#include <gtest/gtest.h>

namespace buckwild::conn {
namespace {

TEST(DeliveryRateTest, SampleFromTheLatestSentSegment) {
  DeliveryRateEstimator e;
  // Ten 1000-byte segments sent 1 ms apart from t = 0, acked from t = 100 ms.
  DeliverySnapshot snaps[10];
  for (int i = 0; i < 10; ++i) snaps[i] = e.on_send(milliseconds(i), i == 0);
  for (int i = 0; i < 10; ++i) {
    e.on_delivered(snaps[i], milliseconds(i), 1000, milliseconds(100 + i));
    // Every segment left before any delivery: its sample spans all delivered so far.
    const RateSample r = e.take_sample();
    EXPECT_EQ(r.delivered, 1000u * static_cast<unsigned>(i + 1));
  }
  EXPECT_EQ(e.delivered(), 10'000u);
  // A segment sent now is measured against the delivery state at its send.
  const DeliverySnapshot s = e.on_send(milliseconds(110), false);
  e.on_delivered(s, milliseconds(110), 1000, milliseconds(210));
  const RateSample r = e.take_sample();
  EXPECT_EQ(r.delivered, 1000u);
  EXPECT_EQ(r.interval, milliseconds(101));
  EXPECT_FALSE(r.is_app_limited);
}

TEST(DeliveryRateTest, AppLimitedMarksUntilTheFlightIsDelivered) {
  DeliveryRateEstimator e;
  const DeliverySnapshot a = e.on_send(0, true);
  e.on_app_limited(1000);
  EXPECT_TRUE(e.app_limited());
  const DeliverySnapshot b = e.on_send(milliseconds(1), false);
  EXPECT_TRUE(b.app_limited);
  e.on_delivered(a, 0, 1000, milliseconds(50));
  EXPECT_TRUE(e.app_limited());
  e.on_delivered(b, milliseconds(1), 1000, milliseconds(51));
  EXPECT_FALSE(e.app_limited());
  EXPECT_TRUE(e.take_sample().is_app_limited);
}

}  // namespace
}  // namespace buckwild::conn

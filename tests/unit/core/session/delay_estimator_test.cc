#include "core/session/delay_estimator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <optional>
#include <random>
#include <vector>

namespace buckwild::session {
namespace {

// The estimator as it was first written: the last 64 samples, sorted again
// for every question. The kept-sorted one must answer as it does.
class Reference {
 public:
  void add(std::int32_t ms) {
    samples_.push_back(ms);
    if (samples_.size() > 64) samples_.pop_front();
  }
  void shift(std::int32_t delta) {
    for (std::int32_t& s : samples_) s += delta;
  }
  std::optional<std::int32_t> median() const {
    if (samples_.empty()) return std::nullopt;
    const std::vector<std::int32_t> m = magnitudes();
    return m[m.size() / 2];
  }
  int desired() const {
    if (samples_.empty()) return DelayEstimator::kMin + 1;
    const std::vector<std::int32_t> m = magnitudes();
    const std::size_t k = (m.size() * 95 + 99) / 100 - 1;
    const int d = static_cast<int>((std::int64_t{m[k]} + DelayEstimator::kSafetyMarginMs + 249) / 250);
    return std::clamp(d, DelayEstimator::kMin, DelayEstimator::kMax);
  }

 private:
  std::vector<std::int32_t> magnitudes() const {
    std::vector<std::int32_t> m;
    for (std::int32_t s : samples_) m.push_back(std::abs(s));
    std::sort(m.begin(), m.end());
    return m;
  }
  std::deque<std::int32_t> samples_;
};

TEST(DelayEstimatorTest, NoMedianBeforeTheFirstSample) {
  DelayEstimator d;
  EXPECT_FALSE(d.median_ms().has_value());
  EXPECT_EQ(d.desired(), DelayEstimator::kMin + 1);
  d.add_sample(-30);
  EXPECT_EQ(d.median_ms(), 30);  // a magnitude
}

TEST(DelayEstimatorTest, MedianFollowsTheLast64Samples) {
  DelayEstimator d;
  for (int i = 0; i < 64; ++i) d.add_sample(1000);
  EXPECT_EQ(d.median_ms(), 1000);
  EXPECT_EQ(d.desired(), 5);  // (1000 + 100) / 250, rounded up
  // New samples push the old ones out: with 32 of each, the median is the
  // upper middle one (1000); with 33 new ones, the new value.
  for (int i = 0; i < 32; ++i) d.add_sample(20);
  EXPECT_EQ(d.median_ms(), 1000);
  d.add_sample(20);
  EXPECT_EQ(d.median_ms(), 20);
  EXPECT_EQ(d.desired(), 5);  // the 95th percentile is still an old one
  for (int i = 0; i < 30; ++i) d.add_sample(20);
  EXPECT_EQ(d.desired(), 1);
}

TEST(DelayEstimatorTest, AShiftMovesTheMedian) {
  DelayEstimator d;
  for (int i = 0; i < 10; ++i) d.add_sample(100 + i);
  EXPECT_EQ(d.median_ms(), 105);
  d.shift(-300);  // every sample now -200 + i: magnitudes 191..200
  EXPECT_EQ(d.median_ms(), 196);
  d.add_sample(5);
  EXPECT_EQ(d.median_ms(), 195);
}

// Random sequences, with shifts among them and samples of either sign:
// the same median and allowance as sorting the window every time.
TEST(DelayEstimatorTest, AnswersAsSortingTheWindowWould) {
  std::mt19937 rng(20261206);
  for (int run = 0; run < 40; ++run) {
    DelayEstimator d;
    Reference ref;
    // Narrow ranges make many equal magnitudes; wide ones few.
    const std::int32_t range = run % 2 == 0 ? 8 : 5000;
    std::uniform_int_distribution<std::int32_t> sample(-range, 3 * range);
    std::uniform_int_distribution<int> action(0, 99);
    std::uniform_int_distribution<std::int32_t> delta(-range, range);
    for (int i = 0; i < 300; ++i) {
      if (action(rng) < 3) {
        const std::int32_t by = delta(rng);
        d.shift(by);
        ref.shift(by);
      } else {
        const std::int32_t s = sample(rng);
        d.add_sample(s);
        ref.add(s);
      }
      ASSERT_EQ(d.median_ms(), ref.median()) << "run " << run << " step " << i;
      ASSERT_EQ(d.desired(), ref.desired()) << "run " << run << " step " << i;
    }
  }
}

}  // namespace
}  // namespace buckwild::session

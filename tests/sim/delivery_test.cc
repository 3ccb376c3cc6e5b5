// Byte-exact delivery in both directions at once, under loss, burst loss,
// reordering and duplication, over a sweep of seeds, plus full 50 MB runs.
//
// Sweep: 7 conditions x 30 seeds = 210 seeded runs of 4 MiB each way (1 MiB at
// 20 % loss); sanitizer builds: the same 210 runs of 512 KiB (128 KiB at 20 %).
// Full size: 50 MB each way under every condition (sanitizer builds: 4 MB).
// The first three seeds of each condition also check every connection's
// invariants after every step.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "sim/scenario.h"

namespace buckwild::sim {
namespace {

struct Condition {
  const char* name;
  double loss;
  bool burst;
  double reorder;
  double duplicate;
};

constexpr Condition kConditions[] = {
    {"clean", 0.0, false, 0.0, 0.0},      {"loss1", 0.01, false, 0.0, 0.0},
    {"loss5", 0.05, false, 0.0, 0.0},     {"loss20", 0.20, false, 0.0, 0.0},
    {"burst", 0.0, true, 0.0, 0.0},       {"reorder", 0.0, false, 0.10, 0.0},
    {"duplicate", 0.0, false, 0.0, 0.10},
};

constexpr int kSeedsPerCondition = 30;

// 100 Mbit/s, 40 ms RTT, one-BDP queues, the condition applied to both links.
PathConfig path_for(const Condition& c, std::uint64_t seed) {
  PathConfig p;
  p.seed = seed;
  p.a_to_b = bottleneck(100, milliseconds(40), 1.0);
  p.a_to_b.loss = c.loss;
  if (c.burst) {
    // Gilbert-Elliott: mean burst 3.3 datagrams, ~2.5 % long-run loss.
    p.a_to_b.burst = true;
    p.a_to_b.burst_model = GilbertElliott{0.01, 0.3, 0.0, 0.8};
  }
  p.a_to_b.reorder = c.reorder;
  p.a_to_b.reorder_delay = milliseconds(6);
  p.a_to_b.duplicate = c.duplicate;
  p.a_to_b.duplicate_delay = milliseconds(1);
  p.b_to_a = p.a_to_b;
  p.conn.time_wait = seconds(2);
  return p;
}

class DeliveryTest : public ::testing::TestWithParam<Condition> {};

TEST_P(DeliveryTest, SeedSweep) {
  const Condition& c = GetParam();
  const std::uint64_t size = c.loss >= 0.2 ? scaled<std::uint64_t>(1 << 20, 128 << 10)
                                           : scaled<std::uint64_t>(4 << 20, 512 << 10);
  for (int seed = 1; seed <= kSeedsPerCondition; ++seed) {
    const TransferResult r =
        run_transfer(path_for(c, static_cast<std::uint64_t>(seed)), size, seconds(3600), seed <= 3);
    ASSERT_TRUE(r.completed && r.a_exact && r.b_exact)
        << c.name << " seed " << seed << ": " << r.describe();
    EXPECT_EQ(r.decode_errors, 0u);
    EXPECT_EQ(r.invariant_failures, 0u);
  }
}

TEST_P(DeliveryTest, FullSize) {
  const Condition& c = GetParam();
  const std::uint64_t size = scaled<std::uint64_t>(50'000'000, 4'000'000);
  const TransferResult r = run_transfer(path_for(c, 1000), size, seconds(36000));
  EXPECT_TRUE(r.completed && r.a_exact && r.b_exact) << c.name << ": " << r.describe();
  std::printf("[ %-9s ] 2 x %llu bytes: %s\n", c.name, static_cast<unsigned long long>(size),
              r.describe().c_str());
}

INSTANTIATE_TEST_SUITE_P(Conditions, DeliveryTest, ::testing::ValuesIn(kConditions),
                         [](const auto& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace buckwild::sim

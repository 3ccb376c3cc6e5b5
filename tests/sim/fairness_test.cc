// Ten connections of one session sharing a bottleneck (100 Mbit/s, 40 ms RTT,
// one-BDP drop-tail queue): each gets a fair share, by Jain's index.
#include <gtest/gtest.h>

#include <cstdio>
#include <vector>

#include "sim/scenario.h"

namespace buckwild::sim {
namespace {

double jain(const std::vector<double>& x) {
  double sum = 0;
  double squares = 0;
  for (double v : x) {
    sum += v;
    squares += v * v;
  }
  return squares > 0 ? sum * sum / (static_cast<double>(x.size()) * squares) : 0;
}

TEST(FairnessTest, TenConnectionsShareOneBottleneck) {
  constexpr int kConnections = 10;
  const Duration warmup = seconds(5);
  const Duration measured = scaled(seconds(60), seconds(20));
  PathConfig p;
  p.seed = 11;
  p.a_to_b = bottleneck(100, milliseconds(40), 1.0);
  p.b_to_a = bottleneck(100, milliseconds(40), 1.0);
  TwoHosts net(p);
  BulkAppConfig server;
  server.expect_bytes = ~std::uint64_t{0};
  net.b.set_accept([&](std::uint16_t) { return std::make_unique<BulkApp>(server); });
  std::vector<std::uint16_t> ids;
  for (int i = 0; i < kConnections; ++i) {
    BulkAppConfig client;
    client.send_bytes = ~std::uint64_t{0} / 2;
    client.send_seed = server.expect_seed;
    ids.push_back(net.a.open(std::make_unique<BulkApp>(client)));
  }
  const TimePoint start = net.sim.now();
  net.sim.run_for(warmup + measured);

  std::vector<double> goodput;
  double total = 0;
  for (std::uint16_t id : ids) {
    auto* app = net.b.app_as<BulkApp>(id);
    ASSERT_NE(app, nullptr);
    EXPECT_EQ(app->first_mismatch(), BulkApp::kNoMismatch);
    const double bytes = static_cast<double>(app->received_at_or_before(start + warmup + measured) -
                                             app->received_at_or_before(start + warmup));
    goodput.push_back(bytes / (static_cast<double>(measured) / 1e6));
    total += goodput.back();
  }
  const double index = jain(goodput);
  std::printf("[ fairness  ] %d connections: Jain %.4f, total %.2f Mbit/s; per connection (Mbit/s):",
              kConnections, index, total * 8 / 1e6);
  for (double g : goodput) std::printf(" %.2f", g * 8 / 1e6);
  std::printf("\n");
  EXPECT_GE(index, 0.95);
  EXPECT_GE(total, 0.85 * 100e6 / 8);
}

}  // namespace
}  // namespace buckwild::sim

// Windows that fit the path (receiver.h autotuning, sender.h send buffer
// growth): one connection over a long fat path, in simulated time.
//
// A fixed 2 MiB window caps a connection at 2 MiB per round trip, 168 Mbit/s
// at 100 ms; tuned windows must take one connection well past that, keep it
// there under random loss (BBR), and keep many connections under the memory
// budget.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "core/conn/memory_budget.h"
#include "sim/scenario.h"

namespace buckwild::sim {
namespace {

constexpr std::uint64_t kMbps = 1000;
constexpr Duration kRtt = milliseconds(100);
constexpr double kLinkBitsPerSecond = kMbps * 1e6;
// 2 MiB per round trip: the old fixed window's ceiling.
constexpr double kFixedWindowCeiling = 2.0 * 1024 * 1024 * 8 / 0.1;

struct WindowRun {
  double whole_bps = 0;   // bits/s from open until the last byte was read
  double steady_bps = 0;  // bits/s after the warm-up
  std::uint64_t retransmissions = 0;
  std::uint64_t timeouts = 0;
  std::size_t receive_space = 0;  // the receiver's tuned space at the end
  std::size_t send_limit = 0;     // the sender's stream limit at the end
  std::uint64_t growths = 0;
};

// One connection a -> b over `kMbps` / `kRtt` (drop-tail queue of one BDP),
// `loss` on the data direction, BBR.
WindowRun run_one_way(std::uint64_t bytes, double loss, std::uint64_t seed,
                const conn::ConnectionConfig& config, Duration warmup = seconds(2)) {
  PathConfig p;
  p.seed = seed;
  p.conn = config;
  p.conn.congestion = conn::CongestionAlgorithm::kBbr;
  p.conn.time_wait = seconds(1);
  p.a_to_b = bottleneck(kMbps, kRtt, 1.0);
  p.a_to_b.loss = loss;
  p.b_to_a = bottleneck(kMbps, kRtt, 1.0);
  TwoHosts net(p);
  BulkAppConfig server;
  server.expect_bytes = bytes;
  server.chunk = 256 * 1024;
  net.b.set_accept([&](std::uint16_t) { return std::make_unique<BulkApp>(server); });
  BulkAppConfig client;
  client.send_bytes = bytes;
  client.send_seed = server.expect_seed;
  client.chunk = 256 * 1024;
  const TimePoint start = net.sim.now();
  const std::uint16_t id = net.a.open(std::make_unique<BulkApp>(client));
  auto* sender = net.a.app_as<BulkApp>(id);
  BulkApp* receiver = nullptr;
  WindowRun run;
  net.sim.run_until(
      [&] {
        receiver = net.b.app_as<BulkApp>(id);
        if (conn::Connection* c = net.a.connection(id)) run.send_limit = c->sender().send_limit();
        if (conn::Connection* c = net.b.connection(id)) {
          run.receive_space = c->receiver().receive_space();
          run.growths = c->receiver().stats().window_growths;
        }
        return receiver && receiver->received() == bytes;
      },
      start + seconds(600));
  EXPECT_TRUE(receiver && receiver->received_all());
  if (!receiver || !receiver->received_all()) return run;
  // A steady rate needs the transfer to outlast the warm-up.
  EXPECT_GT(receiver->finished_at() - start, warmup) << "make the transfer longer";
  const double elapsed = static_cast<double>(receiver->finished_at() - start) / 1e6;
  run.whole_bps = static_cast<double>(bytes) * 8 / elapsed;
  const std::uint64_t at_warmup = receiver->received_at_or_before(start + warmup);
  run.steady_bps = static_cast<double>(bytes - at_warmup) * 8 /
                   (static_cast<double>(receiver->finished_at() - start - warmup) / 1e6);
  run.retransmissions = sender->last_stats().sender.retransmissions;
  run.timeouts = sender->last_stats().sender.timeouts;
  return run;
}

void print(const char* label, const WindowRun& r) {
  std::printf("[ %-10s ] %.1f Mbit/s whole, %.1f Mbit/s after warm-up (%.1f %% of link), receive "
              "space %zu KiB (%llu growths), send limit %zu KiB, retx %llu, rto %llu\n",
              label, r.whole_bps / 1e6, r.steady_bps / 1e6, 100 * r.steady_bps / kLinkBitsPerSecond,
              r.receive_space / 1024, static_cast<unsigned long long>(r.growths),
              r.send_limit / 1024, static_cast<unsigned long long>(r.retransmissions),
              static_cast<unsigned long long>(r.timeouts));
}

// The old behaviour, for contrast: a window fixed at 2 MiB holds one
// connection under 2 MiB per round trip however fast the path.
TEST(WindowTest, FixedTwoMebibyteWindowCapsTheConnection) {
  conn::ConnectionConfig c;
  c.send_buffer = c.initial_send_buffer = 2 * 1024 * 1024;
  c.receive_buffer = c.initial_receive_window = 2 * 1024 * 1024;
  const WindowRun r = run_one_way(scaled<std::uint64_t>(100'000'000, 30'000'000), 0.0, 3, c);
  print("fixed 2M", r);
  EXPECT_LE(r.steady_bps, kFixedWindowCeiling * 1.02);
  EXPECT_EQ(r.growths, 0u);
}

// Tuned windows: one connection over 100 ms and 1 Gbit/s (a BDP of 12.5 MB)
// runs far above the fixed window's 168 Mbit/s.
TEST(WindowTest, OneConnectionFillsAHundredMillisecondPath) {
  conn::ConnectionConfig c;  // the defaults: 256 KiB growing to 32 MiB
  const WindowRun r = run_one_way(scaled<std::uint64_t>(600'000'000, 150'000'000), 0.0, 3, c);
  print("tuned", r);
  EXPECT_GT(r.steady_bps, 400e6);
  EXPECT_GT(r.steady_bps, 2.4 * kFixedWindowCeiling);
  // The receive space grew to hold a round trip at the link rate, and no
  // further than the maximum.
  EXPECT_GE(r.receive_space, static_cast<std::size_t>(kLinkBitsPerSecond / 8 * 0.1));
  EXPECT_LE(r.receive_space, c.receive_buffer);
  EXPECT_LE(r.send_limit, c.send_buffer);
  EXPECT_EQ(r.timeouts, 0u);
}

// One per cent random loss on the data direction: BBR does not treat it as
// congestion, and the connection stays above what the old fixed window
// allowed on a clean path. It keeps only about a quarter of the link
// (252 and 263 Mbit/s for these seeds) against 94 % without loss: what
// bounds it is not found yet (issue 19 item 5 is open on this).
TEST(WindowTest, OnePercentLossAtHundredMilliseconds) {
  conn::ConnectionConfig c;
  for (std::uint64_t seed = 1; seed <= 2; ++seed) {
    const WindowRun r = run_one_way(scaled<std::uint64_t>(400'000'000, 100'000'000), 0.01, seed, c);
    print("loss 1 %", r);
    // A sanitizer build's quarter-size run ends before the connection has
    // climbed as far (105 and 123 Mbit/s measured): it is held to less.
    EXPECT_GT(r.steady_bps, scaled(0.2, 0.08) * kLinkBitsPerSecond) << "seed " << seed;
    if (!kSanitized) {
      EXPECT_GT(r.steady_bps, kFixedWindowCeiling) << "seed " << seed;
    }
  }
}

// The maximum is a cap: a connection allowed 4 MiB stays under 4 MiB per
// round trip even on a path that would take more.
TEST(WindowTest, MaximumWindowCapsTheConnection) {
  conn::ConnectionConfig c;
  c.send_buffer = c.receive_buffer = 4 * 1024 * 1024;
  // 150 MB even in a sanitizer build: with autotuning's growth bonus the
  // window reaches the cap within a second, and 40 MB ended inside the
  // 2 s warm-up, leaving no steady state to measure.
  const WindowRun r = run_one_way(150'000'000, 0.0, 3, c);
  print("max 4M", r);
  EXPECT_EQ(r.receive_space, c.receive_buffer);
  // 4 MiB per 100 ms is 335.5 Mbit/s; the steady rate is measured over
  // windows that a round trip's worth of ACKs can straddle (347.5 Mbit/s in
  // a sanitizer build's shorter run).
  EXPECT_LE(r.steady_bps, 2 * kFixedWindowCeiling * 1.05);
  EXPECT_GT(r.steady_bps, 1.5 * kFixedWindowCeiling);
}

// Many connections share one memory budget: 32 connections each way over
// the long path, with a budget far below 32 x 32 MiB. Every byte arrives,
// and what the buffers hold never passes the budget plus the 64 KiB each
// stream ring may always hold.
TEST(WindowTest, ManyConnectionsStayUnderTheBudget) {
  const std::size_t kFlows = 32;
  conn::MemoryBudget budget(scaled<std::size_t>(48, 16) * 1024 * 1024);
  PathConfig p;
  p.seed = 5;
  p.conn.congestion = conn::CongestionAlgorithm::kBbr;
  p.conn.memory = &budget;  // both hosts: one budget for both sides together
  p.conn.time_wait = seconds(1);
  p.a_to_b = bottleneck(kMbps, kRtt, 1.0);
  p.a_to_b.loss = 0.005;
  p.b_to_a = bottleneck(kMbps, kRtt, 1.0);
  TwoHosts net(p);
  const std::uint64_t bytes = scaled<std::uint64_t>(12'000'000, 3'000'000);
  BulkAppConfig server;
  server.expect_bytes = bytes;
  net.b.set_accept([&](std::uint16_t) { return std::make_unique<BulkApp>(server); });
  std::vector<std::uint16_t> ids;
  for (std::size_t i = 0; i < kFlows; ++i) {
    BulkAppConfig client;
    client.send_bytes = bytes;
    client.send_seed = server.expect_seed;
    ids.push_back(net.a.open(std::make_unique<BulkApp>(client)));
    ASSERT_NE(ids.back(), 0);
  }
  // Four stream rings per connection (send and receive, both hosts).
  const std::size_t guaranteed = kFlows * 4 * conn::MemoryBudget::kGuaranteedRing;
  std::size_t peak_charged = 0;
  std::size_t peak_buffers = 0;
  const bool done = net.sim.run_until(
      [&] {
        peak_charged = std::max(peak_charged, budget.used());
        std::size_t held = 0;
        for (std::uint16_t id : ids) {
          if (conn::Connection* c = net.a.connection(id)) held += c->memory().buffers;
          if (conn::Connection* c = net.b.connection(id)) held += c->memory().buffers;
        }
        peak_buffers = std::max(peak_buffers, held);
        for (std::uint16_t id : ids) {
          auto* r = net.b.app_as<BulkApp>(id);
          if (!r || r->received() != bytes) return false;
        }
        return true;
      },
      seconds(600));
  ASSERT_TRUE(done);
  for (std::uint16_t id : ids) EXPECT_TRUE(net.b.app_as<BulkApp>(id)->received_all()) << id;
  std::printf("[ budget     ] %zu connections: peak charged %zu KiB of %zu KiB, peak buffers %zu KiB "
              "(limit + guaranteed %zu KiB), refusals %llu, finished at %.2f s\n",
              kFlows, peak_charged / 1024, budget.limit() / 1024, peak_buffers / 1024,
              (budget.limit() + guaranteed) / 1024,
              static_cast<unsigned long long>(budget.refusals()),
              static_cast<double>(net.sim.now()) / 1e6);
  EXPECT_LE(peak_charged, budget.limit());
  // Buffers also count the segment rings and reorder tables (not charged):
  // a small allowance per connection.
  EXPECT_LE(peak_buffers, budget.limit() + guaranteed + kFlows * 2 * 256 * 1024);
}

// A connection that moved a lot and then went quiet gives its storage back
// after idle_release; traffic grows it again.
TEST(WindowTest, IdleConnectionReleasesItsStorage) {
  conn::MemoryBudget budget(64 * 1024 * 1024);
  PathConfig p;
  p.seed = 9;
  p.conn.congestion = conn::CongestionAlgorithm::kBbr;
  p.conn.memory = &budget;
  p.a_to_b = bottleneck(kMbps, kRtt, 1.0);
  p.b_to_a = bottleneck(kMbps, kRtt, 1.0);
  TwoHosts net(p);
  const std::uint64_t bytes = 20'000'000;
  BulkAppConfig server;
  server.expect_bytes = bytes;
  server.shutdown_after_send = false;
  net.b.set_accept([&](std::uint16_t) { return std::make_unique<BulkApp>(server); });
  BulkAppConfig client;
  client.send_bytes = bytes;
  client.send_seed = server.expect_seed;
  client.shutdown_after_send = false;  // the connection stays open, idle
  const std::uint16_t id = net.a.open(std::make_unique<BulkApp>(client));
  std::size_t peak = 0;
  ASSERT_TRUE(net.sim.run_until(
      [&] {
        peak = std::max(peak, budget.used());
        auto* r = net.b.app_as<BulkApp>(id);
        return r && r->received() == bytes;
      },
      seconds(60)));
  EXPECT_GT(peak, 1024u * 1024);  // the transfer needed more than the guaranteed rings
  conn::Connection* a = net.a.connection(id);
  conn::Connection* b = net.b.connection(id);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  // Half a second later (the last ACKs are in) storage is still held ...
  net.sim.run_for(milliseconds(500));
  const std::size_t held = a->memory().buffers + b->memory().buffers;
  // ... and after idle_release it is back: only the segment rings and
  // scoreboards stay, and nothing is charged to the budget.
  net.sim.run_for(seconds(2));
  const std::size_t idle = a->memory().buffers + b->memory().buffers;
  std::printf("[ idle       ] peak charged %zu KiB; buffers after 0.5 s %zu KiB, after 2.5 s %zu KiB; "
              "charged %zu\n",
              peak / 1024, held / 1024, idle / 1024, budget.used());
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_LT(idle, held);
  EXPECT_EQ(a->state(), conn::State::kEstablished);
  EXPECT_EQ(a->next_expiry(), kNever);  // nothing left to time once released
  EXPECT_TRUE(a->check_invariants() && b->check_invariants());
}

}  // namespace
}  // namespace buckwild::sim

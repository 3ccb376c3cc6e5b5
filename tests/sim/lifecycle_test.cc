// Connection lifecycles end to end: half-close, reset, simultaneous open, a
// vanishing peer, a peer that stops reading, a lost handshake-completing ACK,
// and the memory a connection holds.
#include <gtest/gtest.h>

#include <cstdio>
#include <vector>

#include "core/wire/codec.h"
#include "sim/scenario.h"

namespace buckwild::sim {
namespace {

using conn::EventKind;
using conn::State;

PathConfig clean_path(std::uint64_t seed = 3) {
  PathConfig p;
  p.seed = seed;
  p.a_to_b = bottleneck(100, milliseconds(40), 1.0);
  p.b_to_a = bottleneck(100, milliseconds(40), 1.0);
  p.conn.time_wait = seconds(5);
  return p;
}

wire::PacketType type_of(const std::vector<std::uint8_t>& d) {
  return static_cast<wire::PacketType>(d[1]);
}

// Half-close: a sends a little and closes its side; b keeps sending for a
// while after that FIN, then closes. a sits in FIN_WAIT_2 meanwhile, ends in
// TIME_WAIT; b goes CLOSE_WAIT -> LAST_ACK -> CLOSED.
TEST(LifecycleTest, HalfClose) {
  TwoHosts net(clean_path());
  BulkAppConfig server;
  server.expect_bytes = 100'000;
  server.send_bytes = 3'000'000;
  server.shutdown_after_send = false;  // b closes later, by hand
  net.b.set_accept([&](std::uint16_t) { return std::make_unique<BulkApp>(server); });
  BulkAppConfig client;
  client.send_bytes = 100'000;
  client.send_seed = server.expect_seed;
  client.expect_bytes = 3'000'000;
  client.expect_seed = server.send_seed;
  const std::uint16_t id = net.a.open(std::make_unique<BulkApp>(client));
  auto* ca = net.a.app_as<BulkApp>(id);

  // b has all of a's stream and the FIN; a's side is closed, b's still open.
  ASSERT_TRUE(net.sim.run_until(
      [&] {
        auto* cb = net.b.app_as<BulkApp>(id);
        return cb && cb->eof() && net.a.connection(id)->state() == State::kFinWait2;
      },
      seconds(30)));
  auto* cb = net.b.app_as<BulkApp>(id);
  EXPECT_TRUE(cb->received_all());
  EXPECT_TRUE(cb->saw(EventKind::kPeerFinished));
  EXPECT_EQ(net.b.connection(id)->state(), State::kCloseWait);
  EXPECT_LT(ca->received(), 3'000'000u);  // b is still sending after a's FIN

  ASSERT_TRUE(net.sim.run_until([&] { return ca->received_all(); }, net.sim.now() + seconds(30)));
  EXPECT_EQ(net.a.connection(id)->state(), State::kFinWait2);
  net.b.connection(id)->shutdown_write();
  EXPECT_EQ(net.b.connection(id)->state(), State::kLastAck);
  net.b.service();
  ASSERT_TRUE(net.sim.run_until([&] { return cb->closed(); }, net.sim.now() + seconds(10)));
  ASSERT_NE(net.a.connection(id), nullptr);
  EXPECT_EQ(net.a.connection(id)->state(), State::kTimeWait);
  EXPECT_TRUE(ca->eof());
  // The stream buffers that carried 3 MB are freed on entering TIME_WAIT: a
  // daemon that just finished 500 transfers must not hold their buffers for
  // another minute.
  EXPECT_LE(net.a.connection(id)->memory().buffers, 64u * 1024) << net.a.connection(id)->memory().buffers;
  // TIME_WAIT lasts its configured time, then the connection closes.
  const TimePoint entered = net.sim.now();
  ASSERT_TRUE(net.sim.run_until([&] { return ca->closed(); }, net.sim.now() + seconds(30)));
  EXPECT_GE(net.sim.now() - entered, seconds(5) - milliseconds(100));
  EXPECT_FALSE(ca->saw(EventKind::kReset));
  EXPECT_FALSE(cb->saw(EventKind::kFailed));
}

// Reset with a reason: the peer hears the reason, both sides close at once.
TEST(LifecycleTest, ResetCarriesItsReason) {
  TwoHosts net(clean_path());
  BulkAppConfig server;
  server.expect_bytes = 50'000'000;
  net.b.set_accept([&](std::uint16_t) { return std::make_unique<BulkApp>(server); });
  BulkAppConfig client;
  client.send_bytes = 50'000'000;
  client.send_seed = server.expect_seed;
  const std::uint16_t id = net.a.open(std::make_unique<BulkApp>(client));
  auto* ca = net.a.app_as<BulkApp>(id);
  net.sim.run_for(milliseconds(500));
  auto* cb = net.b.app_as<BulkApp>(id);
  ASSERT_NE(cb, nullptr);
  ASSERT_GT(cb->received(), 0u);
  net.a.connection(id)->reset(ErrorCode::kRecoveryFailed);
  net.a.service();
  ASSERT_TRUE(net.sim.run_until([&] { return ca->closed() && cb->closed(); }, net.sim.now() + seconds(5)));
  EXPECT_TRUE(cb->saw(EventKind::kReset));
  EXPECT_EQ(cb->reason(EventKind::kReset), ErrorCode::kRecoveryFailed);
  EXPECT_EQ(cb->events().back().kind, EventKind::kClosed);
  EXPECT_FALSE(ca->saw(EventKind::kReset));
  EXPECT_EQ(cb->first_mismatch(), BulkApp::kNoMismatch);
}

// Both sides open the same connection id at the same moment.
TEST(LifecycleTest, SimultaneousOpen) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    PathConfig p = clean_path(seed);
    // From seed 6 on, a lossy, reordering path exercises retransmitted SYNs,
    // SYN-ACKs and openings in every interleaving.
    if (seed > 5) {
      for (LinkConfig* l : {&p.a_to_b, &p.b_to_a}) {
        l->loss = 0.25;
        l->reorder = 0.3;
        l->reorder_delay = milliseconds(30);
      }
    }
    TwoHosts net(p);
    BulkAppConfig x;
    x.send_bytes = 200'000;
    x.send_seed = 1;
    x.expect_bytes = 200'000;
    x.expect_seed = 2;
    BulkAppConfig y = x;
    std::swap(y.send_seed, y.expect_seed);
    net.a.open_with_id(7, std::make_unique<BulkApp>(x));
    net.b.open_with_id(7, std::make_unique<BulkApp>(y));
    auto* ax = net.a.app_as<BulkApp>(7);
    auto* by = net.b.app_as<BulkApp>(7);
    ASSERT_TRUE(net.sim.run_until([&] { return ax->closed() && by->closed(); }, seconds(600)))
        << "seed " << seed;
    EXPECT_TRUE(ax->saw(EventKind::kEstablished)) << "seed " << seed;
    EXPECT_TRUE(by->saw(EventKind::kEstablished)) << "seed " << seed;
    EXPECT_TRUE(ax->received_all() && ax->eof()) << "seed " << seed;
    EXPECT_TRUE(by->received_all() && by->eof()) << "seed " << seed;
    EXPECT_FALSE(ax->saw(EventKind::kFailed) || by->saw(EventKind::kFailed)) << "seed " << seed;
  }
}

// The peer vanishes mid-transfer: after the retransmission limit (8 backed-off
// timeouts) the sender reports failure and closes.
TEST(LifecycleTest, VanishingPeerFailsAfterRetransmissionLimit) {
  TwoHosts net(clean_path());
  BulkAppConfig server;
  server.expect_bytes = 100'000'000;
  net.b.set_accept([&](std::uint16_t) { return std::make_unique<BulkApp>(server); });
  BulkAppConfig client;
  client.send_bytes = 100'000'000;
  client.send_seed = server.expect_seed;
  const std::uint16_t id = net.a.open(std::make_unique<BulkApp>(client));
  auto* ca = net.a.app_as<BulkApp>(id);
  net.sim.run_for(seconds(1));
  net.b.set_silent(true);
  net.ab.set_filter([](std::vector<std::uint8_t>&) { return false; });  // nothing reaches b
  const TimePoint vanished = net.sim.now();
  ASSERT_TRUE(net.sim.run_until([&] { return ca->closed(); }, net.sim.now() + seconds(1000)));
  EXPECT_TRUE(ca->saw(EventKind::kFailed));
  EXPECT_EQ(ca->reason(EventKind::kFailed), ErrorCode::kTimeout);
  EXPECT_EQ(ca->last_stats().sender.max_consecutive_timeouts, wire::kMaxRetransmissions);
  // At least 200 ms x (1 + 2 + ... + 256) of backoff passed.
  EXPECT_GE(net.sim.now() - vanished, milliseconds(200) * 511);
  std::printf("[ vanish    ] failure reported %.1f s after the peer vanished\n",
              static_cast<double>(net.sim.now() - vanished) / 1e6);
}

// Nobody answers the SYN: the opener gives up after the reference's 30 s
// connection timeout (SYNs at 0, 1, 3, 7 and 15 s with the initial 1 s RTO),
// or after the retransmission limit when that comes first.
TEST(LifecycleTest, UnansweredSynFails) {
  for (const Duration timeout : {seconds(30), seconds(10'000)}) {
    PathConfig p = clean_path();
    p.conn.connect_timeout = timeout;
    TwoHosts net(p);
    net.ab.set_filter([](std::vector<std::uint8_t>&) { return false; });
    const std::uint16_t id = net.a.open(std::make_unique<BulkApp>(BulkAppConfig{}));
    auto* ca = net.a.app_as<BulkApp>(id);
    ASSERT_TRUE(net.sim.run_until([&] { return ca->closed(); }, seconds(1000)));
    EXPECT_EQ(ca->reason(EventKind::kFailed), ErrorCode::kTimeout);
    if (timeout == seconds(30)) {
      EXPECT_EQ(net.sim.now(), seconds(30));
      EXPECT_EQ(net.ab.stats().filtered, 5u);
    } else {
      EXPECT_EQ(net.ab.stats().filtered, 1u + wire::kMaxRetransmissions);  // SYN + 8 retries
    }
  }
}

// The receiving application stops reading: the window closes, the sender
// stops and probes, its buffers stay bounded; reading again resumes the flow
// to the last byte.
TEST(LifecycleTest, StoppedReaderBoundsTheSender) {
  PathConfig p = clean_path();
  p.conn.send_buffer = 256 * 1024;
  p.conn.receive_buffer = 512 * 1024;
  TwoHosts net(p);
  const std::uint64_t total = 20'000'000;
  BulkAppConfig server;
  server.expect_bytes = total;
  server.reading = false;
  net.b.set_accept([&](std::uint16_t) { return std::make_unique<BulkApp>(server); });
  BulkAppConfig client;
  client.send_bytes = total;
  client.send_seed = server.expect_seed;
  const std::uint16_t id = net.a.open(std::make_unique<BulkApp>(client));
  auto* ca = net.a.app_as<BulkApp>(id);
  net.sim.run_for(seconds(60));

  conn::Connection* sender = net.a.connection(id);
  conn::Connection* receiver = net.b.connection(id);
  ASSERT_NE(sender, nullptr);
  ASSERT_NE(receiver, nullptr);
  // Everything the sender accepted is in its buffer or the peer's (no loss).
  EXPECT_EQ(ca->sent(), sender->sender().buffered() + receiver->readable());
  EXPECT_LE(sender->sender().buffered(), p.conn.send_buffer);
  EXPECT_LE(receiver->readable(), p.conn.receive_buffer);
  EXPECT_LE(ca->sent(), p.conn.send_buffer + p.conn.receive_buffer);
  EXPECT_EQ(sender->send_capacity(), 0u);
  // Closed to anything a segment could use (the right edge never moves left,
  // so a sliver below one MSS may stay advertised).
  EXPECT_LT(sender->sender().peer_window(), p.conn.mss);
  // A minute of zero window costs probes only, with backoff: a handful.
  const std::uint64_t sent_before = net.ab.stats().offered;
  net.sim.run_for(seconds(60));
  EXPECT_LE(net.ab.stats().offered - sent_before, 12u);
  const conn::MemoryUsage full = sender->memory();
  const conn::MemoryUsage full_receiver = receiver->memory();
  std::printf("[ memory    ] stalled sender %zu bytes, stalled receiver %zu bytes (send buffer %zu, "
              "receive buffer %zu)\n",
              full.total(), full_receiver.total(), p.conn.send_buffer, p.conn.receive_buffer);
  EXPECT_LE(full.total(), 2 * p.conn.send_buffer);
  EXPECT_LE(full_receiver.total(), 3 * p.conn.receive_buffer);

  net.b.app_as<BulkApp>(id)->set_reading(true);
  net.b.service();
  auto* cb = net.b.app_as<BulkApp>(id);
  ASSERT_TRUE(net.sim.run_until([&] { return cb->received_all() && cb->eof(); }, net.sim.now() + seconds(120)));
  EXPECT_FALSE(ca->saw(EventKind::kFailed));
}

// The handshake-completing ACK (the opening) is lost, twice: the responder
// drops the early data, repeats its SYN-ACK, and the opener repeats its
// opening; nothing is lost in the end.
TEST(LifecycleTest, LostOpeningIsRepeated) {
  TwoHosts net(clean_path());
  int openings_dropped = 0;
  net.ab.set_filter([&](std::vector<std::uint8_t>& d) {
    const bool opening = type_of(d) == wire::PacketType::kAck && (d[2] & wire::flags::kSyn) != 0;
    if (opening && openings_dropped < 2) {
      ++openings_dropped;
      return false;
    }
    return true;
  });
  const TransferResult r = [&] {
    BulkAppConfig server;
    server.expect_bytes = 1'000'000;
    server.send_bytes = 1'000'000;
    server.send_seed = 9;
    net.b.set_accept([&](std::uint16_t) { return std::make_unique<BulkApp>(server); });
    BulkAppConfig client;
    client.send_bytes = 1'000'000;
    client.send_seed = server.expect_seed;
    client.expect_bytes = 1'000'000;
    client.expect_seed = 9;
    const std::uint16_t id = net.a.open(std::make_unique<BulkApp>(client));
    TransferResult out;
    auto* ca = net.a.app_as<BulkApp>(id);
    out.completed = net.sim.run_until(
        [&] {
          auto* cb = net.b.app_as<BulkApp>(id);
          return cb && ca->closed() && cb->closed();
        },
        seconds(120));
    auto* cb = net.b.app_as<BulkApp>(id);
    out.a_exact = ca->received_all();
    out.b_exact = cb && cb->received_all();
    return out;
  }();
  EXPECT_EQ(openings_dropped, 2);
  EXPECT_TRUE(r.completed && r.a_exact && r.b_exact);
}

// Memory per connection: idle (established, nothing queued) and with full
// windows both ways. Applications that never read never earn a larger
// window: autotuning leaves it at its initial 256 KiB.
TEST(LifecycleTest, MemoryPerConnection) {
  PathConfig p = clean_path();
  TwoHosts net(p);
  BulkAppConfig idle;
  net.b.set_accept([&](std::uint16_t) { return std::make_unique<BulkApp>(idle); });
  BulkAppConfig none;
  none.shutdown_after_send = false;
  const std::uint16_t id = net.a.open(std::make_unique<BulkApp>(none));
  net.sim.run_for(seconds(1));
  const conn::MemoryUsage m = net.a.connection(id)->memory();
  std::printf("[ memory    ] sizeof(Connection) %zu bytes; idle established connection %zu bytes\n",
              sizeof(conn::Connection), m.total());
  EXPECT_EQ(m.buffers, 0u);
  EXPECT_LT(m.total(), 4096u);

  // Both applications write without reading: every buffer fills.
  PathConfig q = clean_path(4);
  TwoHosts full(q);
  BulkAppConfig writer;
  writer.send_bytes = 100'000'000;
  writer.reading = false;
  full.b.set_accept([&](std::uint16_t) { return std::make_unique<BulkApp>(writer); });
  const std::uint16_t fid = full.a.open(std::make_unique<BulkApp>(writer));
  full.sim.run_for(seconds(20));
  const conn::MemoryUsage f = full.a.connection(fid)->memory();
  std::printf("[ memory    ] connection with full send and receive windows: %zu bytes "
              "(send buffer %zu + receive buffer %zu + reorder slots + segment ring)\n",
              f.total(), q.conn.send_buffer, q.conn.receive_buffer);
  EXPECT_LE(f.total(), q.conn.send_buffer + 2 * q.conn.receive_buffer + 512 * 1024);
  EXPECT_EQ(full.a.connection(fid)->receiver().receive_space(), q.conn.initial_receive_window);
  std::printf("[ memory    ] connection table overhead per session: %zu bytes\n",
              full.a.table().overhead_bytes());
}

}  // namespace
}  // namespace buckwild::sim

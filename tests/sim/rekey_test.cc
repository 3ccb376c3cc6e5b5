// Rekeys of a live session in virtual time (docs/protocol.md §9.5): two real
// Sessions exchange sealed DATAGRAMs in both directions over lossy links
// while a rekey is forced every few seconds. Make-before-break means not one
// datagram is rejected across many switches, and lost REKEY messages are
// retried until the exchange completes.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "core/crypto/random.h"
#include "core/session/session.h"
#include "core/wire/codec.h"
#include "sim/link.h"
#include "sim/simulator.h"
#include "support/session_pair.h"

namespace buckwild::sim {
namespace {

constexpr std::int64_t kUnixAtZero = 1'764'080'000'000;  // the Unix ms at virtual time 0

struct Side {
  explicit Side(std::uint64_t seed) : rng(seed) {}
  session::Session* s = nullptr;
  Link* out = nullptr;
  crypto::DeterministicRandom rng;
  std::uint64_t data_received = 0;
  std::uint64_t rekey_messages_sent = 0;
  std::uint64_t generation = 0;
};

class RekeyNet {
 public:
  RekeyNet(const LinkConfig& link, const session::SessionConfig& config, Duration data_every)
      : pair_(testing::make_session_pair(kUnixAtZero, 0, 0, config)),
        ab_(sim_, link, 11),
        ba_(sim_, link, 12),
        data_every_(data_every) {
    a_.s = pair_.initiator.get();
    b_.s = pair_.responder.get();
    a_.out = &ab_;
    b_.out = &ba_;
    ab_.set_receiver([this](std::vector<std::uint8_t> d) { receive(b_, std::move(d)); });
    ba_.set_receiver([this](std::vector<std::uint8_t> d) { receive(a_, std::move(d)); });
    for (Side* side : {&a_, &b_}) {
      arm(*side);
      send_data_loop(*side);
    }
  }

  Simulator& sim() { return sim_; }
  Side& a() { return a_; }
  Side& b() { return b_; }
  const Link& ab() const { return ab_; }

 private:
  static std::int64_t unix_at(TimePoint t) { return kUnixAtZero + t / 1000; }

  void send(Side& side, std::vector<std::uint8_t> buf, Result<std::size_t> n) {
    ASSERT_TRUE(n.has_value()) << n.error().what;
    if (*n == 0) return;
    buf.resize(*n);
    side.out->send(std::move(buf));
  }

  void send_data_loop(Side& side) {
    std::vector<std::uint8_t> buf(wire::kMaxDatagramSize);
    const char payload[] = "an inner IP packet, more or less";
    std::memcpy(buf.data() + wire::kHeaderSize, payload, sizeof payload);
    auto n = side.s->seal_datagram(buf, sizeof payload, unix_at(sim_.now()), sim_.now());
    send(side, std::move(buf), n);
    arm(side);
    sim_.schedule_in(data_every_, [this, &side] { send_data_loop(side); });
  }

  void send_rekey(Side& side) {
    std::vector<std::uint8_t> buf(wire::kMaxDatagramSize);
    auto n = side.s->make_rekey(buf, side.rng, unix_at(sim_.now()), sim_.now());
    if (n && *n > 0) ++side.rekey_messages_sent;
    send(side, std::move(buf), n);
  }

  void receive(Side& side, std::vector<std::uint8_t> d) {
    auto r = side.s->open(d, unix_at(sim_.now()), sim_.now());
    if (!r) return;  // counted in the session's stats (the test asserts on them)
    if (r->header.type == wire::PacketType::kDatagram) ++side.data_received;
    if (r->send_rekey) send_rekey(side);
    if (r->answer_heartbeat) {
      std::vector<std::uint8_t> buf(wire::kMaxDatagramSize);
      auto n = side.s->make_heartbeat_answer(buf, unix_at(sim_.now()), sim_.now());
      send(side, std::move(buf), n);
    }
    arm(side);
  }

  // The daemon's session timer: on_expiry at next_expiry(), acting on it.
  void arm(Side& side) {
    const TimePoint at = std::max(side.s->next_expiry(), sim_.now());
    const std::uint64_t g = ++side.generation;
    sim_.schedule(at, [this, &side, g] {
      if (g != side.generation) return;
      const auto x = side.s->on_expiry(sim_.now());
      std::vector<std::uint8_t> buf(wire::kMaxDatagramSize);
      if (x.probe || x.send_heartbeat) {
        auto n = side.s->make_heartbeat(buf, x.probe, unix_at(sim_.now()), sim_.now());
        send(side, std::move(buf), n);
      }
      if (x.send_rekey) send_rekey(side);
      arm(side);
    });
  }

  Simulator sim_;
  testing::SessionPair pair_;
  Link ab_;
  Link ba_;
  Duration data_every_;
  Side a_{1};
  Side b_{2};
};

TEST(RekeySimTest, NoDatagramRejectedAcrossManyRekeysUnderLoss) {
  LinkConfig link;
  link.delay = milliseconds(30);
  link.jitter = milliseconds(10);
  link.loss = 0.10;
  link.reorder = 0.05;
  link.reorder_delay = milliseconds(40);
  session::SessionConfig config;
  config.rekey_interval = seconds(6);  // longer than the old key's grace (5 s)
  RekeyNet net(link, config, milliseconds(5));
  net.sim().run_for(seconds(180));

  const auto& ka = net.a().s->keys().stats();
  const auto& kb = net.b().s->keys().stats();
  // Both sides' interval fires; about one rekey per 6 s, a few seconds more
  // when the exchange's messages are lost.
  EXPECT_GE(ka.rekeys, 20u);
  EXPECT_EQ(ka.rekeys, kb.rekeys);
  EXPECT_EQ(net.a().s->keys().epoch(), ka.rekeys);
  // 10 % loss over 180 s: some REKEY message was lost and sent again.
  EXPECT_GT(ka.rekey_retries + kb.rekey_retries, 0u);
  EXPECT_EQ(ka.rekey_failures + kb.rekey_failures, 0u);
  // Make-before-break: not one datagram rejected in either direction, and
  // stragglers sealed under the old key were opened with it.
  EXPECT_EQ(net.a().s->stats().rejected, 0u);
  EXPECT_EQ(net.b().s->stats().rejected, 0u);
  EXPECT_GT(ka.old_key_opened + kb.old_key_opened, 0u);
  // Data kept flowing: 180 s at one datagram per 5 ms, 10 % lost.
  EXPECT_GT(net.b().data_received, 30'000u);
  EXPECT_GT(net.a().data_received, 30'000u);
}

TEST(RekeySimTest, HeavyLossRetriesUntilTheExchangeCompletes) {
  LinkConfig link;
  link.delay = milliseconds(20);
  link.loss = 0.40;
  session::SessionConfig config;
  config.rekey_interval = seconds(8);
  RekeyNet net(link, config, milliseconds(50));
  net.sim().run_for(seconds(120));
  const auto& ka = net.a().s->keys().stats();
  const auto& kb = net.b().s->keys().stats();
  EXPECT_GE(ka.rekeys, 8u);
  EXPECT_GT(ka.rekey_retries + kb.rekey_retries, 5u);
  EXPECT_EQ(net.a().s->stats().rejected, 0u);
  EXPECT_EQ(net.b().s->stats().rejected, 0u);
}

}  // namespace
}  // namespace buckwild::sim

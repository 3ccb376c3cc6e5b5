// Path MTU discovery between two real sessions (docs/protocol.md §11.10) over
// simulated links with a narrow MTU in the middle: a 9000-byte host and a
// 1500-byte host, a 1400-byte link between, some loss. Probes and ACKs are
// sealed and opened by the sessions themselves; the link drops what its MTU
// does not carry, as a router drops a don't-fragment packet.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/session/session.h"
#include "sim/link.h"
#include "sim/scenario.h"
#include "sim/simulator.h"
#include "support/session_pair.h"

namespace buckwild::sim {
namespace {

constexpr std::int64_t kUnixStart = 1'750'000'000'000;

// One end: its session, driven by its timer and the datagrams arriving.
class End {
 public:
  End(Simulator& sim, session::Session& s) : sim_(sim), s_(s) {}
  void set_output(Link* out) { out_ = out; }

  void receive(std::vector<std::uint8_t> d) {
    auto r = s_.open(d, unix_ms(), sim_.now());
    if (!r) return;
    std::vector<std::uint8_t> buf(wire::kMaxDatagramSize);
    if (r->answer_pmtu) send(buf, s_.make_pmtu_ack(buf, *r->answer_pmtu, unix_ms(), sim_.now()));
    if (r->answer_heartbeat) send(buf, s_.make_heartbeat_answer(buf, unix_ms(), sim_.now()));
    arm();
  }

  // `floor`: after a timer, never again at the same instant (no spinning).
  void arm(TimePoint floor = 0) {
    const TimePoint at = std::max({s_.next_expiry(), sim_.now(), floor});
    if (at == kNever || at == armed_at_) return;
    armed_at_ = at;
    sim_.schedule(at, [this, at] {
      if (armed_at_ != at) return;
      armed_at_ = kNever;
      on_timer();
    });
  }

  std::size_t largest_sent = 0;  // the largest datagram that is not a probe

 private:
  std::int64_t unix_ms() const { return kUnixStart + sim_.now() / 1000; }

  void on_timer() {
    const auto x = s_.on_expiry(sim_.now());
    std::vector<std::uint8_t> buf(wire::kMaxDatagramSize);
    if (x.probe || x.send_heartbeat) {
      send(buf, s_.make_heartbeat(buf, x.probe, unix_ms(), sim_.now()));
    }
    if (x.pmtu_probe) {
      send(buf, s_.make_pmtu_probe(buf, *x.pmtu_probe, unix_ms(), sim_.now()), true);
    }
    arm(sim_.now() + 1);
  }

  void send(std::vector<std::uint8_t>& buf, Result<std::size_t> n, bool probe = false) {
    if (!n) return;
    if (!probe) largest_sent = std::max(largest_sent, *n);
    out_->send(std::vector<std::uint8_t>(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n)));
  }

  Simulator& sim_;
  session::Session& s_;
  Link* out_ = nullptr;
  TimePoint armed_at_ = kNever;
};

struct Topology {
  explicit Topology(std::size_t path_mtu, double loss) {
    session::SessionConfig big, small;
    big.max_datagram = 9000 - 28;   // a 9000-byte interface
    small.max_datagram = 1500 - 28;  // a 1500-byte interface
    pair = testing::make_session_pair(kUnixStart, 0, 0, big, small);
    LinkConfig l;
    l.delay = milliseconds(20);
    l.loss = loss;
    l.mtu = path_mtu;
    ab = std::make_unique<Link>(sim, l, 7);
    ba = std::make_unique<Link>(sim, l, 8);
    a = std::make_unique<End>(sim, *pair.initiator);
    b = std::make_unique<End>(sim, *pair.responder);
    a->set_output(ab.get());
    b->set_output(ba.get());
    ab->set_receiver([this](std::vector<std::uint8_t> d) { b->receive(std::move(d)); });
    ba->set_receiver([this](std::vector<std::uint8_t> d) { a->receive(std::move(d)); });
    a->arm();
    b->arm();
  }
  bool complete() const {
    return pair.initiator->pmtu().state() == session::PmtuSearch::State::kComplete &&
           pair.responder->pmtu().state() == session::PmtuSearch::State::kComplete;
  }

  Simulator sim;
  testing::SessionPair pair;
  std::unique_ptr<Link> ab, ba;
  std::unique_ptr<End> a, b;
};

// The datagram a path MTU carries over IPv4.
constexpr std::size_t datagram_for(std::size_t mtu) { return mtu - 28; }

void expect_found(const session::Session& s, std::size_t mtu) {
  EXPECT_LE(s.max_datagram(), datagram_for(mtu));
  EXPECT_GT(s.max_datagram() + session::PmtuSearch::kGranularity, datagram_for(mtu));
}

TEST(PmtuSimTest, BothSidesFindANarrowLinkInTheMiddle) {
  Topology t(1400, 0.0);
  ASSERT_TRUE(t.sim.run_until([&] { return t.complete(); }, seconds(30)));
  // Negotiated: neither side searches above what the 1500-byte side receives.
  EXPECT_EQ(t.pair.initiator->pmtu().bound(), datagram_for(1500));
  EXPECT_EQ(t.pair.responder->pmtu().bound(), datagram_for(1500));
  expect_found(*t.pair.initiator, 1400);
  expect_found(*t.pair.responder, 1400);
  EXPECT_GT(t.ab->stats().mtu_drops, 0u);  // the probes above 1400 were lost, nothing else
  EXPECT_LE(t.a->largest_sent, datagram_for(1400));
  EXPECT_LE(t.b->largest_sent, datagram_for(1400));
  EXPECT_LT(t.sim.now(), seconds(10));
}

TEST(PmtuSimTest, LossDoesNotShrinkTheResult) {
  Topology t(1400, 0.05);
  ASSERT_TRUE(t.sim.run_until([&] { return t.complete(); }, seconds(60)));
  // A size fails only after three lost probes: 5 % loss may cost a step, rarely.
  EXPECT_LE(t.pair.initiator->max_datagram(), datagram_for(1400));
  EXPECT_GT(t.pair.initiator->max_datagram(), datagram_for(1400) - 64);
}

TEST(PmtuSimTest, AWidePathUsesTheNegotiatedMaximumAtOnce) {
  Topology t(9000, 0.0);
  ASSERT_TRUE(t.sim.run_until([&] { return t.complete(); }, seconds(30)));
  EXPECT_EQ(t.pair.initiator->max_datagram(), datagram_for(1500));
  EXPECT_EQ(t.pair.responder->max_datagram(), datagram_for(1500));
  EXPECT_EQ(t.ab->stats().mtu_drops, 0u);
  EXPECT_EQ(t.ba->stats().mtu_drops, 0u);
}

TEST(PmtuSimTest, APathThatShrinksIsFoundAgain) {
  Topology t(9000, 0.0);
  ASSERT_TRUE(t.sim.run_until([&] { return t.complete(); }, seconds(30)));
  t.ab->set_mtu(1300);
  t.ba->set_mtu(1300);
  const TimePoint changed = t.sim.now();
  t.sim.run_until(
      [&] {
        return t.complete() && t.pair.initiator->max_datagram() <= datagram_for(1300) &&
               t.pair.responder->max_datagram() <= datagram_for(1300);
      },
      changed + session::PmtuSearch::kConfirmInterval + seconds(30));
  // Black hole detected by a confirmation, then the search again.
  expect_found(*t.pair.initiator, 1300);
  expect_found(*t.pair.responder, 1300);
  EXPECT_LT(t.sim.now() - changed, session::PmtuSearch::kConfirmInterval + seconds(15));
}

// What the search is for: a connection whose segments are sized to the found
// path MTU gets its bytes through a 1400-byte link; one sized from the 9000-byte
// host's interface (as before: no negotiation, no search) never does.
TEST(PmtuSimTest, SegmentsSizedToThePathGetThrough) {
  PathConfig p;
  p.a_to_b.delay = milliseconds(20);
  p.b_to_a.delay = milliseconds(20);
  p.a_to_b.mtu = 1400;
  p.b_to_a.mtu = 1400;
  p.conn.mss = datagram_for(1400) - wire::kOverhead;
  const TransferResult ok = run_transfer(p, 1 << 20, seconds(600));
  EXPECT_TRUE(ok.completed) << ok.describe();
  EXPECT_TRUE(ok.a_exact && ok.b_exact);

  p.conn.mss = 9000 - 28 - wire::kOverhead;
  const TransferResult stalled = run_transfer(p, 1 << 20, seconds(600));
  // The connection gives up after its retransmissions; neither stream arrives.
  EXPECT_FALSE(stalled.a_exact || stalled.b_exact) << stalled.describe();
}

}  // namespace
}  // namespace buckwild::sim

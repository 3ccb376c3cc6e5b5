// A one-way network link of the simulator.
//
// A datagram handed to send() goes through, in order:
//   1. the queue: drop-tail when the bytes waiting for the transmitter plus this
//      datagram exceed queue_bytes (only with a bandwidth limit);
//   2. the transmitter: serialised at bandwidth_bps (datagram + overhead bytes,
//      the IPv4 and UDP headers), one after another;
//   3. the wire: random loss with probability `loss`, and burst loss from a
//      Gilbert-Elliott chain (state Good or Bad, stepped once per datagram);
//   4. the propagation delay plus a uniform jitter in [0, jitter] (jitter alone
//      reorders), plus reorder_delay with probability `reorder`;
//   5. duplication with probability `duplicate` (the copy arrives
//      duplicate_delay later).
// All randomness comes from the link's own seeded stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/common/time.h"
#include "sim/sim_random.h"
#include "sim/simulator.h"

namespace buckwild::sim {

struct GilbertElliott {
  double good_to_bad = 0.0;  // per datagram, in Good
  double bad_to_good = 1.0;  // per datagram, in Bad
  double loss_good = 0.0;
  double loss_bad = 1.0;
  // The long-run loss rate of the chain.
  double mean_loss() const {
    const double p_bad = good_to_bad / (good_to_bad + bad_to_good);
    return p_bad * loss_bad + (1 - p_bad) * loss_good;
  }
};

struct LinkConfig {
  Duration delay = milliseconds(10);
  Duration jitter = 0;
  double loss = 0.0;
  bool burst = false;
  GilbertElliott burst_model;
  double reorder = 0.0;
  Duration reorder_delay = 0;
  double duplicate = 0.0;
  Duration duplicate_delay = 0;
  std::uint64_t bandwidth_bps = 0;  // 0: unlimited
  std::size_t queue_bytes = 0;      // 0: unlimited
  std::size_t overhead = 28;        // IPv4 + UDP header bytes per datagram
  // The link's MTU: a datagram whose IP packet (datagram + overhead) is
  // larger is dropped, as a router drops a don't-fragment packet. 0: none.
  std::size_t mtu = 0;
};

struct LinkStats {
  std::uint64_t offered = 0;
  std::uint64_t filtered = 0;
  std::uint64_t mtu_drops = 0;
  std::uint64_t queue_drops = 0;
  std::uint64_t random_drops = 0;
  std::uint64_t burst_drops = 0;
  std::uint64_t duplicated = 0;
  std::uint64_t reordered = 0;
  std::uint64_t delivered = 0;
  std::uint64_t bytes_delivered = 0;  // including overhead
};

class Link {
 public:
  using Receiver = std::function<void(std::vector<std::uint8_t>)>;

  Link(Simulator& sim, const LinkConfig& config, std::uint64_t seed);

  void set_receiver(Receiver r) { receiver_ = std::move(r); }
  // A test hook run on every datagram before the queue: it may rewrite the
  // datagram, and returning false drops it.
  using Filter = std::function<bool(std::vector<std::uint8_t>&)>;
  void set_filter(Filter f) { filter_ = std::move(f); }
  void send(std::vector<std::uint8_t> datagram);

  const LinkStats& stats() const { return stats_; }
  const LinkConfig& config() const { return config_; }
  // The path changes: a new MTU from now on (LinkConfig::mtu).
  void set_mtu(std::size_t mtu) { config_.mtu = mtu; }
  // Bytes waiting for or in the transmitter now (including overhead).
  double backlog_bytes() const;

 private:
  bool lose();

  Simulator& sim_;
  LinkConfig config_;
  SimRandom rng_;
  Receiver receiver_;
  Filter filter_;
  double busy_until_ = 0;  // µs, fractional: when the transmitter is next free
  bool bad_ = false;       // Gilbert-Elliott state
  LinkStats stats_;
};

}  // namespace buckwild::sim

#include "sim/link.h"

#include <algorithm>
#include <cmath>

namespace buckwild::sim {

Link::Link(Simulator& sim, const LinkConfig& config, std::uint64_t seed)
    : sim_(sim), config_(config), rng_(seed) {}

double Link::backlog_bytes() const {
  if (config_.bandwidth_bps == 0) return 0;
  const double pending_us = std::max(0.0, busy_until_ - static_cast<double>(sim_.now()));
  return pending_us * static_cast<double>(config_.bandwidth_bps) / 8e6;
}

bool Link::lose() {
  bool lost = rng_.chance(config_.loss);
  if (lost) ++stats_.random_drops;
  if (config_.burst) {
    const GilbertElliott& ge = config_.burst_model;
    bad_ = bad_ ? !rng_.chance(ge.bad_to_good) : rng_.chance(ge.good_to_bad);
    if (!lost && rng_.chance(bad_ ? ge.loss_bad : ge.loss_good)) {
      lost = true;
      ++stats_.burst_drops;
    }
  }
  return lost;
}

void Link::send(std::vector<std::uint8_t> datagram) {
  ++stats_.offered;
  if (filter_ && !filter_(datagram)) {
    ++stats_.filtered;
    return;
  }
  if (config_.mtu != 0 && datagram.size() + config_.overhead > config_.mtu) {
    ++stats_.mtu_drops;
    return;
  }
  const double wire_bytes = static_cast<double>(datagram.size() + config_.overhead);
  double departure = static_cast<double>(sim_.now());
  if (config_.bandwidth_bps > 0) {
    if (config_.queue_bytes > 0 &&
        backlog_bytes() + wire_bytes > static_cast<double>(config_.queue_bytes)) {
      ++stats_.queue_drops;
      return;
    }
    const double start = std::max(busy_until_, departure);
    departure = start + wire_bytes * 8e6 / static_cast<double>(config_.bandwidth_bps);
    busy_until_ = departure;
  }
  if (lose()) return;

  Duration extra = 0;
  if (config_.jitter > 0) {
    extra += static_cast<Duration>(rng_.below(static_cast<std::uint64_t>(config_.jitter) + 1));
  }
  if (rng_.chance(config_.reorder)) {
    extra += config_.reorder_delay;
    ++stats_.reordered;
  }
  const auto arrival = static_cast<TimePoint>(std::ceil(departure)) + config_.delay + extra;
  const bool dup = rng_.chance(config_.duplicate);
  ++stats_.delivered;
  stats_.bytes_delivered += datagram.size() + config_.overhead;
  if (dup) {
    ++stats_.duplicated;
    sim_.schedule(arrival + config_.duplicate_delay, [this, copy = datagram] {
      if (receiver_) receiver_(copy);
    });
  }
  sim_.schedule(arrival, [this, d = std::move(datagram)]() mutable {
    if (receiver_) receiver_(std::move(d));
  });
}

}  // namespace buckwild::sim

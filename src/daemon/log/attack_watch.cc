#include "daemon/log/attack_watch.h"

namespace buckwild::daemon {

std::string_view AttackWatch::name(Kind kind) {
  return kind == Kind::kFilterDrops ? "filter_drops" : "discovery_refusals";
}

std::vector<AttackWatch::Change> AttackWatch::sample(TimePoint now, Totals totals) {
  std::vector<Change> changes;
  const bool backwards = totals.filter_drops < last_totals_.filter_drops ||
                         totals.discovery_refusals < last_totals_.discovery_refusals;
  if (!have_baseline_ || backwards || now <= last_) {
    have_baseline_ = true;
    last_ = now;
    last_totals_ = totals;
    return changes;
  }
  const double seconds = static_cast<double>(now - last_) / 1e6;
  auto check = [&](Kind kind, std::uint64_t before, std::uint64_t after, std::uint32_t threshold) {
    State& s = state_[static_cast<std::size_t>(kind) - 1];
    const auto rate = static_cast<std::uint64_t>(static_cast<double>(after - before) / seconds);
    if (threshold == 0) {
      if (s.under_attack) changes.push_back({kind, false, s.peak, threshold});
      s = State{};
      return;
    }
    if (rate > threshold) {
      s.quiet = 0;
      if (!s.under_attack) {
        s.under_attack = true;
        s.peak = rate;
        changes.push_back({kind, true, rate, threshold});
      } else if (rate > s.peak) {
        s.peak = rate;
      }
      return;
    }
    if (s.under_attack && ++s.quiet >= kQuietSamples) {
      changes.push_back({kind, false, s.peak, threshold});
      s = State{};
    }
  };
  check(Kind::kFilterDrops, last_totals_.filter_drops, totals.filter_drops,
        thresholds_.filter_drops_per_second);
  check(Kind::kDiscoveryRefusals, last_totals_.discovery_refusals, totals.discovery_refusals,
        thresholds_.discovery_refusals_per_second);
  last_ = now;
  last_totals_ = totals;
  return changes;
}

}  // namespace buckwild::daemon

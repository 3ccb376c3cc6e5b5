// Attack detection: the rate of datagrams the eBPF filter drops and the rate
// of discovery messages the responder refuses, each against a threshold
// ([security] attack_filter_drops_per_second,
// attack_discovery_refusals_per_second; 0 turns one off). Pure: the daemon
// samples its counters about once a second and acts on what comes back (a
// warning, an audit record, SNMP's bwAttackDetected).
//
// An attack starts when a rate goes over its threshold and ends once it has
// stayed at or under it for kQuietSamples samples in a row; each is reported
// once when it starts (with the rate) and once when it ends (with its peak).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/common/time.h"

namespace buckwild::daemon {

class AttackWatch {
 public:
  enum class Kind : std::uint8_t { kFilterDrops = 1, kDiscoveryRefusals = 2 };  // as in the MIB

  struct Totals {
    std::uint64_t filter_drops = 0;        // every eBPF drop verdict, all hooks
    std::uint64_t discovery_refusals = 0;  // every discovery message refused
  };
  struct Thresholds {
    std::uint32_t filter_drops_per_second = 0;        // 0 = not watched
    std::uint32_t discovery_refusals_per_second = 0;  // 0 = not watched
  };
  struct Change {
    Kind kind;
    bool started;             // false: it ended
    std::uint64_t rate;       // per second: now (started) or the peak (ended)
    std::uint32_t threshold;
  };

  static constexpr int kQuietSamples = 10;

  explicit AttackWatch(Thresholds t) : thresholds_(t) {}
  void set_thresholds(Thresholds t) { thresholds_ = t; }

  // Counters as of `now`. The first sample only sets the baseline; a counter
  // that went backwards (the eBPF path restarted) sets it again.
  std::vector<Change> sample(TimePoint now, Totals totals);

  static std::string_view name(Kind kind);

 private:
  struct State {
    bool under_attack = false;
    int quiet = 0;
    std::uint64_t peak = 0;
  };

  Thresholds thresholds_;
  bool have_baseline_ = false;
  TimePoint last_ = 0;
  Totals last_totals_;
  std::array<State, 2> state_{};
};

}  // namespace buckwild::daemon

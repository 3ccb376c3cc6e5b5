// A discrete-event simulator with a virtual clock.
//
// Events are callbacks scheduled at virtual times; run_until() executes them in
// time order (ties in scheduling order) and moves the clock to each event's
// time. Nothing here reads a real clock: a run of many simulated minutes takes
// as long as its events take to execute.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/common/time.h"

namespace buckwild::sim {

class Simulator {
 public:
  TimePoint now() const { return now_; }

  // Runs `fn` at time `at` (at least now()).
  void schedule(TimePoint at, std::function<void()> fn);
  void schedule_in(Duration d, std::function<void()> fn) { schedule(now_ + d, std::move(fn)); }

  // Executes events until `done()` holds (checked after each event), no event
  // is left, or the next event lies beyond `deadline`. Returns done().
  bool run_until(const std::function<bool()>& done, TimePoint deadline);
  // Executes every event up to now() + d and leaves the clock there.
  void run_for(Duration d);

  std::uint64_t events_processed() const { return processed_; }
  bool idle() const { return heap_.empty(); }

 private:
  struct Item {
    TimePoint at;
    std::uint64_t order;
    std::function<void()> fn;
  };
  static bool later(const Item& a, const Item& b) {
    return a.at != b.at ? a.at > b.at : a.order > b.order;
  }
  bool step(TimePoint deadline);

  std::vector<Item> heap_;
  TimePoint now_ = 0;
  std::uint64_t next_order_ = 0;
  std::uint64_t processed_ = 0;
};

}  // namespace buckwild::sim

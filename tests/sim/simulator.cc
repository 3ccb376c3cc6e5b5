#include "sim/simulator.h"

#include <algorithm>

namespace buckwild::sim {

void Simulator::schedule(TimePoint at, std::function<void()> fn) {
  heap_.push_back(Item{std::max(at, now_), next_order_++, std::move(fn)});
  std::push_heap(heap_.begin(), heap_.end(), later);
}

bool Simulator::step(TimePoint deadline) {
  if (heap_.empty() || heap_.front().at > deadline) return false;
  std::pop_heap(heap_.begin(), heap_.end(), later);
  Item item = std::move(heap_.back());
  heap_.pop_back();
  now_ = item.at;
  ++processed_;
  item.fn();
  return true;
}

bool Simulator::run_until(const std::function<bool()>& done, TimePoint deadline) {
  if (done()) return true;
  while (step(deadline)) {
    if (done()) return true;
  }
  return done();
}

void Simulator::run_for(Duration d) {
  const TimePoint end = now_ + d;
  while (step(end)) {
  }
  now_ = std::max(now_, end);
}

}  // namespace buckwild::sim

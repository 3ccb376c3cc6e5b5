#include "daemon/os/timer_queue.h"

#include <cassert>

namespace buckwild::daemon {

TimerId TimerQueue::add(TimePoint deadline, Duration period, TimerCallback callback) {
  assert(period >= 0);
  TimerId id = next_id_++;
  by_deadline_.emplace(Key{deadline, id}, Entry{period, std::move(callback)});
  by_id_.emplace(id, deadline);
  return id;
}

bool TimerQueue::cancel(TimerId id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  by_deadline_.erase(Key{it->second, id});
  by_id_.erase(it);
  return true;
}

TimePoint TimerQueue::next_deadline() const {
  return by_deadline_.empty() ? kNever : by_deadline_.begin()->first.first;
}

std::size_t TimerQueue::run_due(TimePoint now) {
  const TimerId first_new_id = next_id_;
  std::size_t ran = 0;
  for (;;) {
    // The earliest due timer that existed when this call began. Newer ones are
    // skipped over (they are few: only what callbacks just added).
    auto it = by_deadline_.begin();
    while (it != by_deadline_.end() && it->first.first <= now && it->first.second >= first_new_id) {
      ++it;
    }
    if (it == by_deadline_.end() || it->first.first > now) break;

    auto [deadline, id] = it->first;
    Entry entry = std::move(it->second);
    by_deadline_.erase(it);
    if (entry.period == 0) {
      by_id_.erase(id);
      ++ran;
      entry.callback();
      continue;
    }
    // Reschedule first, so the callback may cancel its own timer. The callback
    // itself is moved out while it runs (a callback that cancels its timer
    // would otherwise destroy the std::function that is executing).
    Duration missed = (now - deadline) / entry.period + 1;
    TimePoint next = deadline + missed * entry.period;
    by_id_[id] = next;
    by_deadline_.emplace(Key{next, id}, Entry{entry.period, nullptr});
    ++ran;
    entry.callback();
    // Put the callback back if the timer is still scheduled where we left it.
    auto again = by_id_.find(id);
    if (again != by_id_.end()) {
      auto e = by_deadline_.find(Key{again->second, id});
      if (e != by_deadline_.end() && !e->second.callback) {
        e->second.callback = std::move(entry.callback);
      }
    }
  }
  return ran;
}

}  // namespace buckwild::daemon

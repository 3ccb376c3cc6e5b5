// Timers ordered by deadline: the part of an event loop that decides which
// callbacks are due. Shared by the epoll loop and the manual (virtual-time) loop.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>
#include <utility>

#include "core/common/time.h"

namespace buckwild::daemon {

using TimerId = std::uint64_t;
using TimerCallback = std::function<void()>;

inline constexpr TimerId kNoTimer = 0;

class TimerQueue {
 public:
  // Adds a timer due at `deadline`. `period` 0 makes it one-shot; a positive
  // period makes it fire again at deadline + k * period. Returns its id (never
  // kNoTimer).
  TimerId add(TimePoint deadline, Duration period, TimerCallback callback);

  // Removes a timer. Returns false if it already fired (one-shot) or was
  // cancelled. Safe to call from inside any timer callback, including the
  // timer's own.
  bool cancel(TimerId id);

  // The earliest deadline, or kNever when no timer is pending.
  TimePoint next_deadline() const;

  // Runs every timer whose deadline is <= `now`, earliest first, timers with
  // equal deadlines in the order they were added. A periodic timer is
  // rescheduled before its callback runs, to the first deadline + k * period
  // after `now`: ticks missed while the loop was busy are coalesced into this
  // one call, and the phase is kept. Timers added by callbacks during this call
  // do not run in it, even when already due. Returns how many callbacks ran.
  std::size_t run_due(TimePoint now);

  std::size_t size() const { return by_id_.size(); }
  bool empty() const { return by_id_.empty(); }

 private:
  struct Entry {
    Duration period;
    TimerCallback callback;
  };
  using Key = std::pair<TimePoint, TimerId>;

  std::map<Key, Entry> by_deadline_;
  std::unordered_map<TimerId, TimePoint> by_id_;
  TimerId next_id_ = 1;
};

}  // namespace buckwild::daemon

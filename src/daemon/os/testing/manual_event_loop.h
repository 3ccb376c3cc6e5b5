// An EventLoop that runs in virtual time, for tests and simulations: timers
// fire when the test advances the clock, never by waiting. Descriptors are real
// (the in-memory fakes expose eventfds) and are polled without blocking, so the
// same daemon code runs unchanged against fakes, in milliseconds of wall time.
#pragma once

#include <functional>
#include <unordered_map>
#include <vector>

#include "daemon/os/event_loop.h"

namespace buckwild::daemon {

class ManualEventLoop final : public EventLoop {
 public:
  explicit ManualEventLoop(TimePoint start = 0) : now_(start) {}

  SysResult<void> watch_fd(int fd, std::uint32_t interest, FdCallback callback) override;
  SysResult<void> update_fd(int fd, std::uint32_t interest) override;
  void unwatch_fd(int fd) override;
  TimerId add_timer(Duration delay, TimerCallback callback) override;
  TimerId add_timer_at(TimePoint deadline, TimerCallback callback) override;
  TimerId add_periodic_timer(Duration period, TimerCallback callback) override;
  bool cancel_timer(TimerId id) override;
  // Records the callback; nothing is blocked. deliver_signal() invokes it.
  SysResult<void> watch_signal(int signo, SignalCallback callback) override;
  TimePoint now() const override { return now_; }

  // Runs until stop(), or until nothing can happen any more (no descriptor
  // ready and no timer pending), jumping virtual time from timer to timer.
  SysResult<void> run() override;
  void stop() override { stopping_ = true; }

  // Dispatches ready descriptors and every timer due up to `deadline`, then
  // leaves now() at `deadline` (unless stop() was called first).
  void run_until(TimePoint deadline);
  void run_for(Duration d) { run_until(now_ + d); }
  // Runs until `done()` holds or virtual time would pass `limit`. Returns done().
  bool run_until(const std::function<bool()>& done, TimePoint limit);

  // Calls the callback watching `signo`, if any.
  void deliver_signal(int signo);

  // One non-blocking poll of every watched descriptor, dispatching those that
  // are ready, then the turn-end callbacks if any ran (a turn). Returns how
  // many descriptor callbacks ran.
  std::size_t dispatch_ready();

  std::size_t pending_timers() const { return timers_.size(); }

 private:
  struct Watch {
    std::uint32_t interest;
    FdCallback callback;
  };
  // One step, a turn: ready descriptors first, else the timers due at the
  // next deadline at or before `limit`; then the turn-end callbacks. False
  // when neither exists.
  bool step(TimePoint limit);

  TimePoint now_;
  TimerQueue timers_;
  std::unordered_map<int, Watch> watches_;
  std::unordered_map<int, SignalCallback> signals_;
  std::vector<std::unordered_map<int, Watch>::node_type> retired_;
  bool stopping_ = false;
};

}  // namespace buckwild::daemon

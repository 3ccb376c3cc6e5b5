// The reactor the daemon runs on: file descriptor readiness, timers and
// signals, all delivered as callbacks on one thread.
//
// EventLoop is the interface the rest of the daemon programs against;
// EpollEventLoop is the real one (epoll_pwait2 + signalfd) and
// ManualEventLoop (manual_event_loop.h) runs the same callbacks in virtual time.
//
// Readiness is LEVEL-triggered: a callback is called again on the next turn for
// as long as the descriptor stays readable (or writable, when asked for). A
// callback may therefore stop after a batch (say 64 datagrams) and let other
// descriptors have a turn without losing a wake-up.
//
// Callbacks may add and remove descriptors, timers and signals, including their
// own, and may call stop(). A descriptor removed during a turn gets no further
// callbacks in that turn.
//
// A turn is one wake-up: the ready descriptors' callbacks, then the timers
// due. Turn-end callbacks run after it, every turn (a stopped one too): what
// the turn's callbacks queued (the tunnel's datagrams) leaves there, batched,
// before the loop waits again.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/common/time.h"
#include "daemon/os/sys_error.h"
#include "daemon/os/timer_queue.h"
#include "daemon/os/unique_fd.h"

namespace buckwild::daemon {

// Readiness bits, for interest and for what a callback is told.
inline constexpr std::uint32_t kReadable = 1u << 0;
inline constexpr std::uint32_t kWritable = 1u << 1;
// Only reported, never asked for: error or hang-up on the descriptor.
inline constexpr std::uint32_t kHangup = 1u << 2;

using FdCallback = std::function<void(std::uint32_t events)>;
using SignalCallback = std::function<void(int signo)>;
using TurnEndCallback = std::function<void()>;
using TurnEndId = std::uint64_t;

class EventLoop {
 public:
  virtual ~EventLoop() = default;

  // Watches `fd` (not owned) for `interest` (kReadable and/or kWritable).
  // Fails with EEXIST if it is already watched, or with the epoll errno.
  virtual SysResult<void> watch_fd(int fd, std::uint32_t interest, FdCallback callback) = 0;
  // Changes the interest of a watched descriptor (e.g. add kWritable while a
  // send queue is backed up). Fails with ENOENT if it is not watched.
  virtual SysResult<void> update_fd(int fd, std::uint32_t interest) = 0;
  // Stops watching `fd`. Call before closing it. No-op if not watched.
  virtual void unwatch_fd(int fd) = 0;

  // A one-shot timer `delay` microseconds from now() (delay <= 0: next turn).
  virtual TimerId add_timer(Duration delay, TimerCallback callback) = 0;
  // A one-shot timer at `deadline` on the now() clock: for the core's
  // next_expiry().
  virtual TimerId add_timer_at(TimePoint deadline, TimerCallback callback) = 0;
  // A periodic timer, first due `period` from now (period > 0). Missed ticks
  // are coalesced (TimerQueue::run_due).
  virtual TimerId add_periodic_timer(Duration period, TimerCallback callback) = 0;
  // Cancels a timer; false if it already fired or was cancelled.
  virtual bool cancel_timer(TimerId id) = 0;

  // Delivers `signo` to `callback` through the loop instead of a signal
  // handler. The real loop blocks the signal in the calling thread (so create
  // the loop before starting any threads) and restores the previous mask when
  // destroyed. One callback per signal; a second watch replaces the first.
  virtual SysResult<void> watch_signal(int signo, SignalCallback callback) = 0;

  // Monotonic time in microseconds (CLOCK_MONOTONIC for the real loop).
  virtual TimePoint now() const = 0;

  // Dispatches events until stop() is called. Returns an error only if the
  // loop itself fails (epoll_wait failing other than EINTR).
  virtual SysResult<void> run() = 0;
  // Makes run() return after the current callback. Callable from callbacks.
  virtual void stop() = 0;

  // Calls `callback` at the end of every turn from now on, in the order
  // added, until remove_turn_end(id). Turn-end callbacks must not add or
  // remove turn-end callbacks.
  TurnEndId add_turn_end(TurnEndCallback callback);
  void remove_turn_end(TurnEndId id);

 protected:
  // The implementations call this when a turn's callbacks are done.
  void end_turn();

 private:
  std::vector<std::pair<TurnEndId, TurnEndCallback>> turn_end_;
  TurnEndId next_turn_end_ = 1;
};

class EpollEventLoop final : public EventLoop {
 public:
  // Creates the epoll descriptor and sets the thread's timer slack to 1 ns, so
  // a timer's wait ends within 0.1 % of its length (the kernel's estimate)
  // rather than up to 50 µs late. Fails with their errno.
  static SysResult<std::unique_ptr<EpollEventLoop>> create();
  ~EpollEventLoop() override;

  SysResult<void> watch_fd(int fd, std::uint32_t interest, FdCallback callback) override;
  SysResult<void> update_fd(int fd, std::uint32_t interest) override;
  void unwatch_fd(int fd) override;
  TimerId add_timer(Duration delay, TimerCallback callback) override;
  TimerId add_timer_at(TimePoint deadline, TimerCallback callback) override;
  TimerId add_periodic_timer(Duration period, TimerCallback callback) override;
  bool cancel_timer(TimerId id) override;
  SysResult<void> watch_signal(int signo, SignalCallback callback) override;
  TimePoint now() const override;
  SysResult<void> run() override;
  void stop() override { stopping_ = true; }

  // One turn: waits at most `timeout` microseconds (-1: until something
  // happens) and dispatches what is ready. For tests and for embedding.
  SysResult<void> run_once(Duration timeout);

 private:
  struct Watch {
    std::uint64_t token;  // what epoll hands back; never reused, so an event
                          // for a descriptor removed earlier in a turn is ignored
    FdCallback callback;
  };

  explicit EpollEventLoop(UniqueFd epoll) : epoll_(std::move(epoll)) {}
  void dispatch_signals();

  UniqueFd epoll_;
  UniqueFd signal_fd_;
  TimerQueue timers_;
  std::unordered_map<int, Watch> watches_;
  std::unordered_map<std::uint64_t, int> tokens_;  // token -> fd
  std::uint64_t next_token_ = 3;                   // 2 is the signal descriptor
  std::unordered_map<int, SignalCallback> signals_;
  std::vector<int> blocked_;  // signals we blocked that were not blocked before
  // Entries removed or replaced are parked here (as extracted map nodes, which
  // keeps the callable at its address) and destroyed after the turn, so a
  // callback can unwatch or replace itself while it runs.
  std::vector<std::unordered_map<int, Watch>::node_type> retired_watches_;
  std::vector<std::unordered_map<int, SignalCallback>::node_type> retired_signals_;
  bool stopping_ = false;
};

}  // namespace buckwild::daemon

#include "daemon/os/testing/manual_event_loop.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <string>

namespace buckwild::daemon {

SysResult<void> ManualEventLoop::watch_fd(int fd, std::uint32_t interest, FdCallback callback) {
  if (watches_.contains(fd)) {
    return sys_fail(EEXIST, "descriptor " + std::to_string(fd) + " is already watched");
  }
  watches_.emplace(fd, Watch{interest, std::move(callback)});
  return {};
}

SysResult<void> ManualEventLoop::update_fd(int fd, std::uint32_t interest) {
  auto it = watches_.find(fd);
  if (it == watches_.end()) {
    return sys_fail(ENOENT, "descriptor " + std::to_string(fd) + " is not watched");
  }
  it->second.interest = interest;
  return {};
}

void ManualEventLoop::unwatch_fd(int fd) {
  auto it = watches_.find(fd);
  if (it != watches_.end()) retired_.push_back(watches_.extract(it));
}

TimerId ManualEventLoop::add_timer(Duration delay, TimerCallback callback) {
  return timers_.add(now_ + std::max<Duration>(delay, 0), 0, std::move(callback));
}

TimerId ManualEventLoop::add_timer_at(TimePoint deadline, TimerCallback callback) {
  return timers_.add(deadline, 0, std::move(callback));
}

TimerId ManualEventLoop::add_periodic_timer(Duration period, TimerCallback callback) {
  period = std::max<Duration>(period, 1);
  return timers_.add(now_ + period, period, std::move(callback));
}

bool ManualEventLoop::cancel_timer(TimerId id) {
  return timers_.cancel(id);
}

SysResult<void> ManualEventLoop::watch_signal(int signo, SignalCallback callback) {
  signals_[signo] = std::move(callback);
  return {};
}

void ManualEventLoop::deliver_signal(int signo) {
  auto it = signals_.find(signo);
  if (it == signals_.end()) return;
  SignalCallback cb = it->second;  // the callback may replace itself
  cb(signo);
}

std::size_t ManualEventLoop::dispatch_ready() {
  std::vector<pollfd> fds;
  fds.reserve(watches_.size());
  for (const auto& [fd, w] : watches_) {
    short events = 0;
    if (w.interest & kReadable) events |= POLLIN;
    if (w.interest & kWritable) events |= POLLOUT;
    fds.push_back(pollfd{fd, events, 0});
  }
  std::size_t ran = 0;
  if (!fds.empty() && ::poll(fds.data(), fds.size(), 0) > 0) {
    for (const pollfd& p : fds) {
      if (p.revents == 0 || stopping_) continue;
      auto it = watches_.find(p.fd);
      if (it == watches_.end()) continue;  // removed by an earlier callback
      std::uint32_t ready = 0;
      if (p.revents & POLLIN) ready |= kReadable;
      if (p.revents & POLLOUT) ready |= kWritable;
      if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) ready |= kHangup;
      ++ran;
      it->second.callback(ready);
    }
  }
  if (ran > 0) end_turn();
  retired_.clear();
  return ran;
}

bool ManualEventLoop::step(TimePoint limit) {
  if (dispatch_ready() > 0) return true;
  TimePoint next = timers_.next_deadline();
  if (next == kNever || next > limit) return false;
  now_ = std::max(now_, next);
  timers_.run_due(now_);
  end_turn();
  return true;
}

SysResult<void> ManualEventLoop::run() {
  stopping_ = false;
  while (!stopping_ && step(kNever)) {
  }
  return {};
}

void ManualEventLoop::run_until(TimePoint deadline) {
  stopping_ = false;
  while (!stopping_ && step(deadline)) {
  }
  if (!stopping_) now_ = std::max(now_, deadline);
}

bool ManualEventLoop::run_until(const std::function<bool()>& done, TimePoint limit) {
  stopping_ = false;
  while (!stopping_ && !done() && step(limit)) {
  }
  if (!done() && !stopping_) now_ = std::max(now_, limit);
  return done();
}

}  // namespace buckwild::daemon

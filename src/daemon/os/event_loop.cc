#include "daemon/os/event_loop.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <string>

namespace buckwild::daemon {
namespace {

constexpr std::uint64_t kSignalToken = 2;
constexpr int kMaxEventsPerTurn = 64;

std::uint32_t epoll_events_for(std::uint32_t interest) {
  std::uint32_t e = 0;
  if (interest & kReadable) e |= EPOLLIN;
  if (interest & kWritable) e |= EPOLLOUT;
  return e;
}

std::uint32_t readiness_of(std::uint32_t epoll_events) {
  std::uint32_t r = 0;
  if (epoll_events & (EPOLLIN | EPOLLPRI)) r |= kReadable;
  if (epoll_events & EPOLLOUT) r |= kWritable;
  if (epoll_events & (EPOLLERR | EPOLLHUP)) r |= kHangup;
  return r;
}

}  // namespace

TurnEndId EventLoop::add_turn_end(TurnEndCallback callback) {
  const TurnEndId id = next_turn_end_++;
  turn_end_.emplace_back(id, std::move(callback));
  return id;
}

void EventLoop::remove_turn_end(TurnEndId id) {
  std::erase_if(turn_end_, [id](const auto& entry) { return entry.first == id; });
}

void EventLoop::end_turn() {
  for (auto& [id, callback] : turn_end_) callback();
}

SysResult<std::unique_ptr<EpollEventLoop>> EpollEventLoop::create() {
  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll) return sys_fail(errno, "cannot create the epoll instance");
  // Timers are the wait's own timeout (epoll_pwait2, nanoseconds): nothing
  // to re-arm when the next deadline moves, which a paced connection makes it
  // do on most turns. The kernel lets a wait run late by its timer slack,
  // 50 µs unless set; 1 ns leaves its 0.1 % estimate of the wait.
  std::array<epoll_event, 1> probe;
  const timespec zero{};
  if (::epoll_pwait2(epoll.get(), probe.data(), 1, &zero, nullptr) < 0) {
    return sys_fail(errno, errno == ENOSYS ? "this kernel has no epoll_pwait2 (Linux 5.11 or later is needed)"
                                           : "epoll_pwait2 failed");
  }
  if (::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL) != 0) {
    return sys_fail(errno, "cannot set the timer slack");
  }
  return std::unique_ptr<EpollEventLoop>(new EpollEventLoop(std::move(epoll)));
}

EpollEventLoop::~EpollEventLoop() {
  if (signal_fd_) {
    // Consume what is still pending for us, so unblocking below cannot deliver
    // it with its default action (SIGINT and SIGTERM would kill the process).
    signalfd_siginfo info{};
    while (::read(signal_fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    }
  }
  if (!blocked_.empty()) {
    sigset_t set;
    sigemptyset(&set);
    for (int s : blocked_) sigaddset(&set, s);
    ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  }
}

SysResult<void> EpollEventLoop::watch_fd(int fd, std::uint32_t interest, FdCallback callback) {
  if (watches_.contains(fd))
    return sys_fail(EEXIST, "descriptor " + std::to_string(fd) + " is already watched");
  std::uint64_t token = next_token_++;
  epoll_event ev{};
  ev.events = epoll_events_for(interest);
  ev.data.u64 = token;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    return sys_fail(errno, "cannot watch descriptor " + std::to_string(fd));
  }
  watches_.emplace(fd, Watch{token, std::move(callback)});
  tokens_.emplace(token, fd);
  return {};
}

SysResult<void> EpollEventLoop::update_fd(int fd, std::uint32_t interest) {
  auto it = watches_.find(fd);
  if (it == watches_.end())
    return sys_fail(ENOENT, "descriptor " + std::to_string(fd) + " is not watched");
  epoll_event ev{};
  ev.events = epoll_events_for(interest);
  ev.data.u64 = it->second.token;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) {
    return sys_fail(errno, "cannot change interest for descriptor " + std::to_string(fd));
  }
  return {};
}

void EpollEventLoop::unwatch_fd(int fd) {
  auto it = watches_.find(fd);
  if (it == watches_.end()) return;
  // Fails harmlessly with EBADF if the caller closed the descriptor first
  // (closing already removed it from the epoll set).
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  tokens_.erase(it->second.token);
  retired_watches_.push_back(watches_.extract(it));
}

TimerId EpollEventLoop::add_timer(Duration delay, TimerCallback callback) {
  return timers_.add(now() + (delay > 0 ? delay : 0), 0, std::move(callback));
}

TimerId EpollEventLoop::add_timer_at(TimePoint deadline, TimerCallback callback) {
  return timers_.add(deadline, 0, std::move(callback));
}

TimerId EpollEventLoop::add_periodic_timer(Duration period, TimerCallback callback) {
  if (period <= 0) period = 1;
  return timers_.add(now() + period, period, std::move(callback));
}

bool EpollEventLoop::cancel_timer(TimerId id) {
  return timers_.cancel(id);
}

SysResult<void> EpollEventLoop::watch_signal(int signo, SignalCallback callback) {
  sigset_t one;
  sigemptyset(&one);
  if (sigaddset(&one, signo) != 0)
    return sys_fail(EINVAL, "invalid signal " + std::to_string(signo));
  sigset_t previous;
  if (int rc = ::pthread_sigmask(SIG_BLOCK, &one, &previous); rc != 0) {
    return sys_fail(rc, "cannot block signal " + std::to_string(signo));
  }
  if (!sigismember(&previous, signo)) blocked_.push_back(signo);

  sigset_t all;
  sigemptyset(&all);
  for (const auto& [s, cb] : signals_) sigaddset(&all, s);
  sigaddset(&all, signo);
  int fd = ::signalfd(signal_fd_ ? signal_fd_.get() : -1, &all, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return sys_fail(errno, "cannot create the signal descriptor");
  if (!signal_fd_) {
    signal_fd_.reset(fd);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kSignalToken;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
      return sys_fail(errno, "cannot watch the signal descriptor");
    }
  }
  if (auto old = signals_.find(signo); old != signals_.end()) {
    retired_signals_.push_back(signals_.extract(old));
  }
  signals_.emplace(signo, std::move(callback));
  return {};
}

TimePoint EpollEventLoop::now() const {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<TimePoint>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

void EpollEventLoop::dispatch_signals() {
  signalfd_siginfo info{};
  while (::read(signal_fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    auto it = signals_.find(static_cast<int>(info.ssi_signo));
    if (it != signals_.end() && it->second) it->second(static_cast<int>(info.ssi_signo));
  }
}

SysResult<void> EpollEventLoop::run_once(Duration timeout) {
  // Until the next timer's deadline, or the caller's timeout if sooner.
  Duration wait = timeout;
  if (const TimePoint next = timers_.next_deadline(); next != kNever) {
    const Duration until = std::max<Duration>(next - now(), 0);
    if (wait < 0 || until < wait) wait = until;
  }
  timespec ts{};
  if (wait >= 0) {
    ts.tv_sec = static_cast<time_t>(wait / 1'000'000);
    ts.tv_nsec = static_cast<long>(wait % 1'000'000) * 1000;
  }
  std::array<epoll_event, kMaxEventsPerTurn> events;
  int n = ::epoll_pwait2(epoll_.get(), events.data(), kMaxEventsPerTurn, wait >= 0 ? &ts : nullptr,
                         nullptr);
  if (n < 0) {
    if (errno == EINTR) return {};
    return sys_fail(errno, "epoll_pwait2 failed");
  }
  for (int i = 0; i < n && !stopping_; ++i) {
    std::uint64_t token = events[i].data.u64;
    if (token == kSignalToken) {
      dispatch_signals();
      continue;
    }
    auto t = tokens_.find(token);
    if (t == tokens_.end()) continue;  // removed earlier in this turn
    auto w = watches_.find(t->second);
    if (w == watches_.end() || !w->second.callback) continue;
    w->second.callback(readiness_of(events[i].events));
  }
  if (!stopping_) timers_.run_due(now());
  end_turn();
  retired_watches_.clear();
  retired_signals_.clear();
  return {};
}

SysResult<void> EpollEventLoop::run() {
  stopping_ = false;
  while (!stopping_) {
    if (auto turn = run_once(-1); !turn) return turn;
  }
  return {};
}

}  // namespace buckwild::daemon

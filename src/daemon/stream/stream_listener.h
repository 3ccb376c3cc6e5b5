// The bridge's listener on one virtual address, watched on the event loop:
// every connection it accepts goes to the bridge (client_side.cc).
//
// The loop is level-triggered, so a listener whose accept() fails while the
// connection stays queued (EMFILE, ENFILE, ENOBUFS, ENOMEM: the process or the
// host is out of descriptors or memory) would wake the loop again at once and
// spin it. Instead the listener counts the failure, logs it (rate-limited),
// stops watching and watches again after a pause; the queued connection is
// accepted then. Any other accept() error concerns that one connection: it is
// counted and the next is taken.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "core/common/time.h"
#include "daemon/log/rate_limited_log.h"
#include "daemon/os/event_loop.h"
#include "daemon/os/sys_error.h"
#include "daemon/net/tcp_endpoints.h"

namespace buckwild::daemon {

struct ListenerStats {
  std::uint64_t accept_pauses = 0;  // accept() out of descriptors or memory: paused
  std::uint64_t accept_errors = 0;  // accept() failed for one connection
};

class StreamListener {
 public:
  using OnAccepted = std::function<void(TcpListener::Accepted accepted)>;
  static constexpr Duration kPause = milliseconds(100);
  static constexpr int kAcceptBatch = 64;  // accepts per wake-up, so other descriptors get a turn

  // Watches `listener` on `loop` for readability. Fails with the loop's error.
  // `stats` and `log` must outlive it.
  static SysResult<std::unique_ptr<StreamListener>> create(EventLoop& loop, std::unique_ptr<TcpListener> listener,
                                                           OnAccepted on_accepted, ListenerStats& stats,
                                                           RateLimitedLog& log);
  ~StreamListener();
  StreamListener(const StreamListener&) = delete;
  StreamListener& operator=(const StreamListener&) = delete;

  std::uint16_t port() const { return listener_->port(); }
  // True while paused after running out of descriptors or memory.
  bool paused() const { return pause_timer_ != kNoTimer; }

 private:
  StreamListener(EventLoop& loop, std::unique_ptr<TcpListener> listener, OnAccepted on_accepted,
                 ListenerStats& stats, RateLimitedLog& log);
  SysResult<void> watch();
  void on_readable();
  void pause(const SysError& error);

  EventLoop& loop_;
  std::unique_ptr<TcpListener> listener_;
  OnAccepted on_accepted_;
  ListenerStats& stats_;
  RateLimitedLog& log_;
  bool watched_ = false;
  TimerId pause_timer_ = kNoTimer;
};

}  // namespace buckwild::daemon

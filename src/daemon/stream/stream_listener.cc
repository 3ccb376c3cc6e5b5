#include "daemon/stream/stream_listener.h"

#include <cerrno>

namespace buckwild::daemon {
namespace {

bool out_of_resources(int err) { return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM; }

}  // namespace

SysResult<std::unique_ptr<StreamListener>> StreamListener::create(EventLoop& loop,
                                                                  std::unique_ptr<TcpListener> listener,
                                                                  OnAccepted on_accepted, ListenerStats& stats,
                                                                  RateLimitedLog& log) {
  std::unique_ptr<StreamListener> l(
      new StreamListener(loop, std::move(listener), std::move(on_accepted), stats, log));
  if (auto w = l->watch(); !w) return std::unexpected(w.error());
  return l;
}

StreamListener::StreamListener(EventLoop& loop, std::unique_ptr<TcpListener> listener, OnAccepted on_accepted,
                               ListenerStats& stats, RateLimitedLog& log)
    : loop_(loop), listener_(std::move(listener)), on_accepted_(std::move(on_accepted)), stats_(stats), log_(log) {}

StreamListener::~StreamListener() {
  if (pause_timer_ != kNoTimer) loop_.cancel_timer(pause_timer_);
  if (watched_) loop_.unwatch_fd(listener_->fd());
}

SysResult<void> StreamListener::watch() {
  auto w = loop_.watch_fd(listener_->fd(), kReadable, [this](std::uint32_t) { on_readable(); });
  if (w) watched_ = true;
  return w;
}

void StreamListener::on_readable() {
  for (int i = 0; i < kAcceptBatch && watched_; ++i) {
    auto accepted = listener_->accept();
    if (accepted) {
      on_accepted_(std::move(*accepted));
      continue;
    }
    const int err = accepted.error().sys_errno;
    if (err == EAGAIN || err == EWOULDBLOCK) return;
    if (out_of_resources(err)) {
      pause(accepted.error());
      return;
    }
    ++stats_.accept_errors;  // that connection is gone; the next may be fine
    log_.log(loop_.now(), "stream.accept_failed", spdlog::level::warn, "transparent TCP: {}",
             accepted.error().message);
  }
}

void StreamListener::pause(const SysError& error) {
  ++stats_.accept_pauses;
  log_.log(loop_.now(), "stream.accept_paused", spdlog::level::warn,
           "transparent TCP: {}; not accepting for {} ms", error.message, kPause / 1000);
  loop_.unwatch_fd(listener_->fd());
  watched_ = false;
  pause_timer_ = loop_.add_timer(kPause, [this] {
    pause_timer_ = kNoTimer;
    if (auto w = watch(); !w) {
      // Cannot happen for a descriptor we just unwatched; try again later
      // rather than never accept again.
      pause(w.error());
    }
  });
}

}  // namespace buckwild::daemon

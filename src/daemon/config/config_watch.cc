#include "daemon/config/config_watch.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace buckwild::daemon {

SysResult<std::unique_ptr<ConfigWatch>> ConfigWatch::start(EventLoop& loop, const std::string& path,
                                                           std::function<void()> on_change,
                                                           Duration settle) {
  const std::filesystem::path p = std::filesystem::absolute(path);
  UniqueFd fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fd) return sys_fail(errno, "inotify_init1()");
  const std::string dir = p.parent_path().string();
  if (::inotify_add_watch(fd.get(), dir.c_str(),
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB) < 0) {
    return sys_fail(errno, "cannot watch " + dir + " for changes to " + p.filename().string());
  }
  std::unique_ptr<ConfigWatch> w(
      new ConfigWatch(loop, std::move(fd), p.filename().string(), std::move(on_change), settle));
  auto watched = loop.watch_fd(w->fd_.get(), kReadable, [raw = w.get()](std::uint32_t) { raw->on_readable(); });
  if (!watched) return std::unexpected(watched.error());
  return w;
}

ConfigWatch::ConfigWatch(EventLoop& loop, UniqueFd fd, std::string name,
                         std::function<void()> on_change, Duration settle)
    : loop_(loop), fd_(std::move(fd)), name_(std::move(name)), on_change_(std::move(on_change)), settle_(settle) {}

ConfigWatch::~ConfigWatch() {
  if (timer_ != kNoTimer) loop_.cancel_timer(timer_);
  loop_.unwatch_fd(fd_.get());
}

void ConfigWatch::on_readable() {
  // Events for every file of the directory arrive; only ours count. A bounded
  // number of reads per wake-up: the loop calls again while more are queued.
  alignas(inotify_event) std::array<char, 4096> buf;
  bool ours = false;
  for (int reads = 0; reads < 16; ++reads) {
    const ssize_t n = ::read(fd_.get(), buf.data(), buf.size());
    if (n <= 0) break;
    for (std::size_t off = 0; off + sizeof(inotify_event) <= static_cast<std::size_t>(n);) {
      inotify_event ev;
      std::memcpy(&ev, buf.data() + off, sizeof ev);
      const char* name = buf.data() + off + sizeof(inotify_event);
      if (ev.len > 0 && off + sizeof(inotify_event) + ev.len <= static_cast<std::size_t>(n) &&
          name_ == std::string_view(name, ::strnlen(name, ev.len))) {
        ours = true;
      }
      off += sizeof(inotify_event) + ev.len;
    }
  }
  if (!ours) return;
  if (timer_ != kNoTimer) loop_.cancel_timer(timer_);
  timer_ = loop_.add_timer(settle_, [this] {
    timer_ = kNoTimer;
    on_change_();
  });
}

}  // namespace buckwild::daemon

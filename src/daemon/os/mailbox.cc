#include "daemon/os/mailbox.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace buckwild::daemon {

SysResult<std::unique_ptr<Mailbox>> Mailbox::create(EventLoop& loop) {
  UniqueFd fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!fd) return sys_fail(errno, "cannot create a mailbox's eventfd");
  std::unique_ptr<Mailbox> m(new Mailbox(loop, std::move(fd)));
  Mailbox* self = m.get();
  if (auto r = loop.watch_fd(self->fd_.get(), kReadable, [self](std::uint32_t) { self->drain(); }); !r) {
    return std::unexpected(r.error());
  }
  return m;
}

Mailbox::~Mailbox() {
  loop_.unwatch_fd(fd_.get());
  close();
}

void Mailbox::post(std::function<void()> work) {
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    queued_.push_back(std::move(work));
  }
  const std::uint64_t one = 1;
  // EAGAIN only when the counter is at its maximum: the loop is woken anyway.
  (void)!::write(fd_.get(), &one, sizeof one);
}

void Mailbox::drain() {
  std::uint64_t count = 0;
  (void)!::read(fd_.get(), &count, sizeof count);
  std::vector<std::function<void()>> work;
  {
    std::lock_guard lock(mutex_);
    work.swap(queued_);
  }
  for (auto& w : work) w();
}

void Mailbox::close() {
  drain();
  std::lock_guard lock(mutex_);
  closed_ = true;
  queued_.clear();
}

}  // namespace buckwild::daemon

#include "daemon/os/testing/readiness_flag.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace buckwild::daemon {

ReadinessFlag::ReadinessFlag() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (!fd_) {
    std::perror("buckwild: eventfd");
    std::abort();
  }
}

void ReadinessFlag::set() {
  if (set_) return;
  std::uint64_t one = 1;
  if (::write(fd_.get(), &one, sizeof one) == static_cast<ssize_t>(sizeof one)) set_ = true;
}

void ReadinessFlag::clear() {
  if (!set_) return;
  std::uint64_t value = 0;
  if (::read(fd_.get(), &value, sizeof value) == static_cast<ssize_t>(sizeof value)) set_ = false;
}

}  // namespace buckwild::daemon

#include "daemon/os/random_seeded.h"

#include <sys/random.h>

#include <cerrno>

namespace buckwild::daemon {

// A daemon started early in boot on a machine without a hardware generator
// would otherwise draw its ephemeral keys from a predictable pool.
SysResult<void> check_random_seeded() {
  unsigned char byte = 0;
  if (::getrandom(&byte, 1, GRND_NONBLOCK) == 1) return {};
  if (errno == EAGAIN) {
    return sys_fail_plain(EAGAIN,
                          "the kernel's random source is not seeded yet (getrandom would block); "
                          "start buckwild once the system has gathered entropy");
  }
  return sys_fail(errno, "getrandom()");
}

}  // namespace buckwild::daemon

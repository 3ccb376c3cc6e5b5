#include "daemon/os/sys_error.h"

#include <cstring>
#include <utility>

namespace buckwild::daemon {

std::string errno_text(int err) {
  char buf[128];
  // GNU strerror_r returns a pointer that may or may not be `buf`.
  const char* text = ::strerror_r(err, buf, sizeof buf);
  return text;
}

std::unexpected<SysError> sys_fail(int err, std::string message) {
  if (err != 0) {
    message += ": ";
    message += errno_text(err);
  }
  return std::unexpected(SysError{err, std::move(message)});
}

std::unexpected<SysError> sys_fail_plain(int err, std::string message) {
  return std::unexpected(SysError{err, std::move(message)});
}

}  // namespace buckwild::daemon

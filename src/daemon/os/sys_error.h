// Errors from the operating system, as values with a sentence for the operator.
//
// The core's `Error` carries a static string so that it never allocates on the
// packet path. The daemon's set-up paths need more than that: "port 1025 is
// already in use", "interface bw0 already exists". SysError keeps the errno for
// code that decides on it, and a complete message for the log and the exit
// path. Nothing on the per-packet path builds one except for a real failure.
#pragma once

#include <expected>
#include <string>

namespace buckwild::daemon {

struct SysError {
  int sys_errno = 0;    // errno that caused this, 0 when the failure is not an OS error
  std::string message;  // complete, human-readable; includes strerror(sys_errno) when set
};

template <typename T>
using SysResult = std::expected<T, SysError>;

// An error with `message` + ": " + strerror(err). `err` 0 gives `message` alone.
std::unexpected<SysError> sys_fail(int err, std::string message);

// An error with exactly `message` and `err` (no strerror appended): for
// messages that already explain the errno in words.
std::unexpected<SysError> sys_fail_plain(int err, std::string message);

// strerror_r in a std::string ("Address already in use").
std::string errno_text(int err);

}  // namespace buckwild::daemon

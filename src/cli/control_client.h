// The CLI's side of the control socket (docs/control.md): finding the running
// tunnels' sockets, and one request and its reply line, bounded in time and size.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/common/time.h"
#include "daemon/os/sys_error.h"

namespace buckwild::cli {

// The longest reply read; a status of thousands of peers fits many times.
inline constexpr std::size_t kMaxReplyBytes = std::size_t{16} << 20;
inline constexpr Duration kReplyTimeout = seconds(5);

// CLOCK_MONOTONIC in microseconds, for the CLI's deadlines.
TimePoint monotonic_now();
// A timeout for a message: "5 s", "250 ms".
std::string duration_text(Duration d);

// The control sockets in `dir` (files named *.sock that are sockets), as full
// paths, sorted. A missing or unreadable directory has none.
std::vector<std::string> list_control_sockets(const std::string& dir);

// The device a socket is named for: "/run/buckwild/bw0.sock" -> "bw0".
std::string device_of_socket(std::string_view path);

// Connects to the socket at `path`, sends `request` and a newline, and returns
// the first reply line (without its newline). Gives up after `timeout` in
// all. Errors are sentences for the operator:
//   "cannot connect to PATH: No such file or directory (is buckwild running for bw0?)",
//   "cannot connect to PATH: Permission denied (run as root or as a member of the socket's group)",
//   "PATH: no reply within 5 s", "PATH: the daemon closed the connection without a reply",
//   "PATH: the reply is longer than 16 MiB".
daemon::SysResult<std::string> control_request(const std::string& path, std::string_view request,
                                               Duration timeout = kReplyTimeout);

// What to add after "cannot connect to PATH: <strerror>" for `err`: the likely
// cause, in parentheses, or "" (for the messages above; `device` as named).
std::string connect_hint(int err, std::string_view device);

}  // namespace buckwild::cli

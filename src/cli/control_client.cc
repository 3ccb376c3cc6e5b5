#include "cli/control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "daemon/os/unique_fd.h"

namespace buckwild::cli {
namespace {

using daemon::sys_fail_plain;
using daemon::UniqueFd;

// Milliseconds left until `deadline` for poll(), at least 1 while any is left.
int poll_ms(TimePoint deadline) {
  Duration left = deadline - monotonic_now();
  if (left <= 0) return 0;
  return static_cast<int>(std::min<Duration>((left + 999) / 1000, 60'000));
}

// Waits until `fd` is ready for `events` or `deadline` passes; false on timeout.
bool wait_for(int fd, short events, TimePoint deadline) {
  for (;;) {
    int ms = poll_ms(deadline);
    if (ms == 0) return false;
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, ms);
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return true;  // let the next call report the error
  }
}

}  // namespace

TimePoint monotonic_now() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<TimePoint>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

std::string duration_text(Duration d) {
  if (d % seconds(1) == 0) return std::to_string(d / seconds(1)) + " s";
  return std::to_string(d / 1000) + " ms";
}

std::vector<std::string> list_control_sockets(const std::string& dir) {
  std::vector<std::string> sockets;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return sockets;
  // increment(ec), not ++: an error while listing must not throw.
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::filesystem::directory_entry& entry = *it;
    const std::filesystem::path& p = entry.path();
    if (p.extension() != ".sock") continue;
    std::error_code type_ec;
    if (!entry.is_socket(type_ec)) continue;
    sockets.push_back(p.string());
  }
  std::sort(sockets.begin(), sockets.end());
  return sockets;
}

std::string device_of_socket(std::string_view path) {
  std::size_t slash = path.find_last_of('/');
  std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  if (name.ends_with(".sock")) name.remove_suffix(5);
  return std::string(name);
}

std::string connect_hint(int err, std::string_view device) {
  switch (err) {
    case ENOENT:
    case ECONNREFUSED:
      return " (is buckwild running for " + std::string(device) + "?)";
    case EACCES:
    case EPERM:
      return " (run as root or as a member of the socket's group)";
    default:
      return "";
  }
}

daemon::SysResult<std::string> control_request(const std::string& path, std::string_view request,
                                               Duration timeout) {
  const TimePoint deadline = monotonic_now() + timeout;
  const std::string device = device_of_socket(path);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return sys_fail_plain(ENAMETOOLONG, "cannot connect to " + path + ": not a usable socket path");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return daemon::sys_fail(errno, "cannot create a socket");
  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) break;
    int err = errno;
    if (err == EINTR) continue;
    // A full backlog: the daemon is there but busy; try again shortly.
    if (err == EAGAIN && poll_ms(deadline) > 0) {
      ::poll(nullptr, 0, 10);
      continue;
    }
    if (err == EAGAIN)
      return sys_fail_plain(
          err, path + ": the daemon accepts no connection within " + duration_text(timeout));
    return sys_fail_plain(err, "cannot connect to " + path + ": " + daemon::errno_text(err) +
                                   connect_hint(err, device));
  }

  std::string line(request);
  line += '\n';
  std::size_t sent = 0;
  while (sent < line.size()) {
    ssize_t n = ::send(fd.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_for(fd.get(), POLLOUT, deadline)) {
        return sys_fail_plain(
            ETIMEDOUT, path + ": the daemon takes no request within " + duration_text(timeout));
      }
      continue;
    }
    return sys_fail_plain(errno, path + ": cannot send the request: " + daemon::errno_text(errno));
  }

  std::string reply;
  char buffer[65536];
  for (;;) {
    ssize_t n = ::recv(fd.get(), buffer, sizeof buffer, 0);
    if (n > 0) {
      std::size_t old = reply.size();
      reply.append(buffer, static_cast<std::size_t>(n));
      std::size_t nl = reply.find('\n', old);
      if (nl != std::string::npos) {
        reply.resize(nl);
        if (!reply.empty() && reply.back() == '\r') reply.pop_back();
        return reply;
      }
      if (reply.size() > kMaxReplyBytes) {
        return sys_fail_plain(EMSGSIZE, path + ": the reply is longer than " +
                                            std::to_string(kMaxReplyBytes >> 20) + " MiB");
      }
      continue;
    }
    if (n == 0)
      return sys_fail_plain(ECONNRESET,
                            path + ": the daemon closed the connection without a reply");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!wait_for(fd.get(), POLLIN, deadline)) {
        return sys_fail_plain(ETIMEDOUT, path + ": no reply within " + duration_text(timeout));
      }
      continue;
    }
    return sys_fail_plain(errno, path + ": cannot read the reply: " + daemon::errno_text(errno));
  }
}

}  // namespace buckwild::cli

// Who owns a local TCP socket: the kernel's sock_diag (NETLINK_SOCK_DIAG), one
// exact lookup by 4-tuple. The stream bridge asks it for the user an
// application's connection belongs to, so flow limits are per local user and
// not per address (every local application shares the virtual address).
#pragma once

#include <cstdint>
#include <optional>

#include "core/common/socket_address.h"
#include "daemon/os/unique_fd.h"

namespace buckwild::daemon {

class SockDiag {
 public:
  // The uid owning the TCP socket bound to `local` and connected (or
  // connecting) to `remote`, in this network namespace; nullopt when there is
  // none or the kernel cannot say (the socket opens lazily; a failure to open
  // it is retried at the next lookup).
  std::optional<std::uint32_t> tcp_owner(const SocketAddress& local, const SocketAddress& remote);

 private:
  UniqueFd fd_;
  std::uint32_t sequence_ = 0;
};

}  // namespace buckwild::daemon

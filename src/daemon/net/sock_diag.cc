#include "daemon/net/sock_diag.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace buckwild::daemon {
namespace {

void put_address(const IpAddress& ip, __be32 (&out)[4]) {
  std::memset(out, 0, sizeof(out));
  std::memcpy(out, ip.bytes().data(), ip.size());
}

}  // namespace

std::optional<std::uint32_t> SockDiag::tcp_owner(const SocketAddress& local, const SocketAddress& remote) {
  if (local.ip.family() != remote.ip.family()) return std::nullopt;
  if (!fd_) {
    fd_ = UniqueFd(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
    if (!fd_) return std::nullopt;
    // The kernel answers within the sendmsg; the timeout only bounds a
    // surprise, on the event loop's thread.
    const timeval timeout{0, 100'000};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  }
  struct Request {
    nlmsghdr header;
    inet_diag_req_v2 body;
  } request{};
  request.header.nlmsg_len = sizeof(request);
  request.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  request.header.nlmsg_flags = NLM_F_REQUEST;  // one exact socket, not a dump
  request.header.nlmsg_seq = ++sequence_;
  request.body.sdiag_family = local.ip.is_v4() ? AF_INET : AF_INET6;
  request.body.sdiag_protocol = IPPROTO_TCP;
  request.body.idiag_states = ~0u;
  request.body.id.idiag_sport = htons(local.port);
  request.body.id.idiag_dport = htons(remote.port);
  put_address(local.ip, request.body.id.idiag_src);
  put_address(remote.ip, request.body.id.idiag_dst);
  request.body.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  request.body.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd_.get(), &request, sizeof(request), 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof(kernel)) != static_cast<ssize_t>(sizeof(request))) {
    fd_.reset();
    return std::nullopt;
  }
  // The answer: one inet_diag_msg, or an NLMSG_ERROR (ENOENT: no such socket).
  alignas(nlmsghdr) std::array<std::uint8_t, 1024> buffer;
  for (int attempt = 0; attempt < 4; ++attempt) {
    const ssize_t n = ::recv(fd_.get(), buffer.data(), buffer.size(), 0);
    if (n < 0) {
      fd_.reset();  // a timeout or worse: start afresh next time
      return std::nullopt;
    }
    auto* h = reinterpret_cast<nlmsghdr*>(buffer.data());
    auto left = static_cast<int>(n);
    for (; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != sequence_) continue;  // a late answer to an earlier lookup
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
          h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) {
        return std::nullopt;
      }
      const auto* msg = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
      return msg->idiag_uid;
    }
  }
  return std::nullopt;
}

}  // namespace buckwild::daemon

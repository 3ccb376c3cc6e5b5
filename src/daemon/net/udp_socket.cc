#include "daemon/net/udp_socket.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "daemon/net/udp_control.h"

namespace buckwild::daemon {
namespace {

// Enough for IP(V6)_ORIGDSTADDR, IP(V6)_PKTINFO (both families' on a
// dual-stack socket) and a receive stamp, or one PKTINFO on send.
constexpr std::size_t kControlBytes = 256;

void set_buffer(int fd, int force_opt, int opt, int bytes) {
  if (bytes <= 0) return;
  // FORCE ignores net.core.[rw]mem_max but needs CAP_NET_ADMIN; without it the
  // plain option silently caps at the sysctl, which is still the best we get.
  if (::setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) != 0) {
    ::setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
  }
}

int get_int_opt(int fd, int level, int opt) {
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd, level, opt, &value, &len) != 0) return -1;
  return value;
}

bool transient_send_errno(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS;
}
bool fatal_send_errno(int err) {
  return err == EBADF || err == ENOTSOCK || err == EFAULT;
}

}  // namespace

struct UdpSocket::Scratch {
  std::array<mmsghdr, kMaxBatch> msgs;
  std::array<iovec, kMaxBatch> iovs;
  std::array<sockaddr_storage, kMaxBatch> names;
  struct alignas(cmsghdr) Control {
    std::uint8_t bytes[kControlBytes];
  };
  std::array<Control, kMaxBatch> control;
};

UdpSocket::UdpSocket(UniqueFd fd, SocketAddress local, IpFamily family)
    : fd_(std::move(fd)), local_(local), family_(family), scratch_(std::make_unique<Scratch>()) {}

UdpSocket::~UdpSocket() = default;

SysResult<std::unique_ptr<UdpSocket>> UdpSocket::bind(const UdpSocketOptions& options) {
  const SocketAddress& at = options.bind_address;
  const IpFamily family = at.ip.family();
  const int domain = family == IpFamily::kV4 ? AF_INET : AF_INET6;
  UniqueFd fd(::socket(domain, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP));
  if (!fd) return sys_fail(errno, "cannot create a UDP socket");

  int one = 1;
  int zero = 0;
  if (family == IpFamily::kV6) {
    // "::" serves both families; a specific IPv6 address only IPv6.
    const int* v6only = at.ip.is_unspecified() ? &zero : &one;
    if (::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, v6only, sizeof(int)) != 0) {
      return sys_fail(errno, "cannot set IPV6_V6ONLY");
    }
    if (::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_RECVORIGDSTADDR, &one, sizeof one) != 0 ||
        ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) != 0) {
      return sys_fail(errno, "cannot ask for IPv6 destination addresses");
    }
    if (at.ip.is_unspecified()) {
      // IPv4 datagrams on the dual-stack socket carry IPv4 control messages.
      ::setsockopt(fd.get(), IPPROTO_IP, IP_RECVORIGDSTADDR, &one, sizeof one);
      ::setsockopt(fd.get(), IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
    }
  } else {
    if (::setsockopt(fd.get(), IPPROTO_IP, IP_RECVORIGDSTADDR, &one, sizeof one) != 0 ||
        ::setsockopt(fd.get(), IPPROTO_IP, IP_PKTINFO, &one, sizeof one) != 0) {
      return sys_fail(errno, "cannot ask for IPv4 destination addresses");
    }
  }
  // Receive stamps (software, CLOCK_REALTIME) on every datagram: the time it
  // arrived, not the time we read it (ReceivedDatagram::queued_for).
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0) {
    return sys_fail(errno, "cannot ask for receive timestamps (SO_TIMESTAMPNS)");
  }
  set_buffer(fd.get(), SO_RCVBUFFORCE, SO_RCVBUF, options.receive_buffer_bytes);
  set_buffer(fd.get(), SO_SNDBUFFORCE, SO_SNDBUF, options.send_buffer_bytes);
  // Path MTU (docs/protocol.md §11.10): the don't-fragment bit on every
  // datagram, and the kernel's own path MTU (learnt from ICMP, which a path
  // may never send) ignored: the session's probes find what the path carries,
  // and a datagram larger than that is never fragmented on the way.
  const int probe = IP_PMTUDISC_PROBE;
  const int probe6 = IPV6_PMTUDISC_PROBE;
  if (family == IpFamily::kV4 || at.ip.is_unspecified()) {
    if (::setsockopt(fd.get(), IPPROTO_IP, IP_MTU_DISCOVER, &probe, sizeof probe) != 0 &&
        family == IpFamily::kV4) {
      return sys_fail(errno, "cannot set IP_MTU_DISCOVER");
    }
  }
  if (family == IpFamily::kV6 &&
      ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_MTU_DISCOVER, &probe6, sizeof probe6) != 0) {
    return sys_fail(errno, "cannot set IPV6_MTU_DISCOVER");
  }

  sockaddr_storage ss;
  socklen_t len = at.to_sockaddr(ss);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
    int err = errno;
    std::string where = "cannot bind UDP " + at.to_string();
    switch (err) {
      case EADDRINUSE:
        return sys_fail_plain(err, where + ": port " + std::to_string(at.port) +
                                       " is already in use (another buckwild running? see "
                                       "`ss -ulpn sport = :" +
                                       std::to_string(at.port) + "`)");
      case EACCES:
        return sys_fail_plain(err, where +
                                       ": permission denied (ports below 1024 need root "
                                       "or CAP_NET_BIND_SERVICE)");
      case EADDRNOTAVAIL:
        return sys_fail_plain(err,
                              where + ": " + at.ip.to_string() + " is not an address of this host");
      default:
        return sys_fail(err, where);
    }
  }
  sockaddr_storage bound;
  socklen_t bound_len = sizeof bound;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &bound_len) != 0) {
    return sys_fail(errno, "getsockname failed");
  }
  auto local = SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&bound), bound_len);
  if (!local) return sys_fail_plain(EAFNOSUPPORT, "bound UDP socket has an unexpected address");
  // Keep the family we bound with: "::" must not read back as "0.0.0.0".
  SocketAddress shown{at.ip, local->port};
  if (!at.ip.is_unspecified()) shown.ip = local->ip;
  return std::unique_ptr<UdpSocket>(new UdpSocket(std::move(fd), shown, family));
}

SysResult<std::size_t> UdpSocket::receive_batch(std::span<ReceivedDatagram> batch) {
  const std::size_t n = std::min(batch.size(), kMaxBatch);
  if (n == 0) return std::size_t{0};
  Scratch& s = *scratch_;
  for (std::size_t i = 0; i < n; ++i) {
    s.iovs[i] = iovec{batch[i].buffer.data(), batch[i].buffer.size()};
    msghdr& h = s.msgs[i].msg_hdr;
    h = msghdr{};
    h.msg_name = &s.names[i];
    h.msg_namelen = sizeof(sockaddr_storage);
    h.msg_iov = &s.iovs[i];
    h.msg_iovlen = 1;
    h.msg_control = s.control[i].bytes;
    h.msg_controllen = kControlBytes;
    s.msgs[i].msg_len = 0;
  }
  int got;
  do {
    got = ::recvmmsg(fd_.get(), s.msgs.data(), static_cast<unsigned>(n), MSG_DONTWAIT, nullptr);
  } while (got < 0 && errno == EINTR);
  if (got < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::size_t{0};
    return sys_fail(errno, "recvmmsg on UDP " + local_.to_string() + " failed");
  }

  // Read once for the batch: the stamps are on the same clock.
  timespec read_at{};
  ::clock_gettime(CLOCK_REALTIME, &read_at);
  const std::int64_t read_ns =
      static_cast<std::int64_t>(read_at.tv_sec) * 1'000'000'000 + read_at.tv_nsec;
  for (std::size_t i = 0; i < static_cast<std::size_t>(got); ++i) {
    const msghdr& h = s.msgs[i].msg_hdr;
    ReceivedDatagram& d = batch[i];
    d.length = std::min<std::size_t>(s.msgs[i].msg_len, d.buffer.size());
    d.truncated = (h.msg_flags & MSG_TRUNC) != 0;
    auto from =
        SocketAddress::from_sockaddr(static_cast<const sockaddr*>(h.msg_name), h.msg_namelen);
    d.source = from.value_or(SocketAddress{});
    const Bytes control(static_cast<const std::uint8_t*>(h.msg_control), h.msg_controllen);
    d.destination = destination_from_control(control, local_);
    d.queued_for = 0;
    if (const auto stamp = receive_stamp_from_control(control)) {
      d.queued_for = std::clamp<Duration>((read_ns - *stamp) / 1000, 0, kMaxQueued);
    }
  }
  return static_cast<std::size_t>(got);
}

bool UdpSocket::prepare_send(std::size_t slot, const OutgoingDatagram& d) {
  Scratch& s = *scratch_;
  socklen_t name_len = d.destination.to_sockaddr(s.names[slot], family_);
  if (name_len == 0) return false;
  s.iovs[slot] = iovec{const_cast<std::uint8_t*>(d.payload.data()), d.payload.size()};
  msghdr& h = s.msgs[slot].msg_hdr;
  h = msghdr{};
  h.msg_name = &s.names[slot];
  h.msg_namelen = name_len;
  h.msg_iov = &s.iovs[slot];
  h.msg_iovlen = 1;
  s.msgs[slot].msg_len = 0;
  if (d.source) {
    h.msg_control = s.control[slot].bytes;
    if (family_ == IpFamily::kV4) {
      if (!d.source->unmapped().is_v4()) return false;
      h.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo));
      cmsghdr* c = CMSG_FIRSTHDR(&h);
      c->cmsg_level = IPPROTO_IP;
      c->cmsg_type = IP_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
      in_pktinfo pi{};
      std::memcpy(&pi.ipi_spec_dst, d.source->unmapped().bytes().data(), 4);
      std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
    } else {
      // On an IPv6 socket the IPv6 form serves both: an IPv4 source is given
      // v4-mapped and the kernel converts it.
      h.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
      cmsghdr* c = CMSG_FIRSTHDR(&h);
      c->cmsg_level = IPPROTO_IPV6;
      c->cmsg_type = IPV6_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
      in6_pktinfo pi{};
      std::memcpy(&pi.ipi6_addr, d.source->mapped_v6().bytes().data(), 16);
      std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
    }
  }
  return true;
}

SysResult<std::size_t> UdpSocket::send_batch(std::span<const OutgoingDatagram> batch) {
  std::size_t done = 0;
  while (done < batch.size()) {
    // Prepare a run of datagrams that can be expressed for this socket.
    std::size_t k = 0;
    while (done + k < batch.size() && k < kMaxBatch && prepare_send(k, batch[done + k])) ++k;
    if (k == 0) {
      ++send_errors_;
      last_send_errno_ = EAFNOSUPPORT;
      ++done;
      continue;
    }
    int sent = ::sendmmsg(fd_.get(), scratch_->msgs.data(), static_cast<unsigned>(k), MSG_DONTWAIT);
    if (sent > 0) {
      done += static_cast<std::size_t>(sent);
      continue;
    }
    int err = errno;
    if (err == EINTR) continue;
    if (transient_send_errno(err)) break;
    if (fatal_send_errno(err))
      return sys_fail(err, "sendmmsg on UDP " + local_.to_string() + " failed");
    // The first datagram of the run was refused on its own merits: drop it.
    ++send_errors_;
    last_send_errno_ = err;
    ++done;
  }
  return done;
}

int UdpSocket::receive_buffer_bytes() const {
  return get_int_opt(fd_.get(), SOL_SOCKET, SO_RCVBUF);
}
int UdpSocket::send_buffer_bytes() const {
  return get_int_opt(fd_.get(), SOL_SOCKET, SO_SNDBUF);
}

}  // namespace buckwild::daemon

#include "daemon/net/udp_socket.h"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <spdlog/spdlog.h>
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
// dual-stack socket), a receive stamp and UDP_GRO, or one PKTINFO and
// UDP_SEGMENT on send.
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

// The kernel knows the option (getsockopt answers), Linux 4.18+ / 5.0+.
bool knows_udp_option(int fd, int opt) { return get_int_opt(fd, SOL_UDP, opt) >= 0; }

}  // namespace

UdpOffloadStats& udp_offload_stats() {
  thread_local UdpOffloadStats stats;
  return stats;
}

std::size_t gso_run_length(std::span<const OutgoingDatagram> batch) {
  if (batch.empty()) return 0;
  const OutgoingDatagram& first = batch[0];
  const std::size_t size = first.payload.size();
  if (size == 0 || size > kMaxGsoBytes) return 1;
  std::size_t n = 1;
  std::size_t bytes = size;
  while (n < batch.size() && n < kMaxGsoSegments) {
    const OutgoingDatagram& d = batch[n];
    const std::size_t len = d.payload.size();
    if (len == 0 || len > size || bytes + len > kMaxGsoBytes || d.destination != first.destination ||
        d.source != first.source) {
      break;
    }
    ++n;
    bytes += len;
    if (len < size) break;  // a shorter one is the run's last
  }
  return n;
}

struct UdpSocket::Scratch {
  std::array<mmsghdr, kMaxBatch> msgs;
  std::array<std::size_t, kMaxBatch> datagrams;  // how many each message carries
  std::array<iovec, kMaxBatch> iovs;
  std::array<sockaddr_storage, kMaxBatch> names;
  struct alignas(cmsghdr) Control {
    std::uint8_t bytes[kControlBytes];
  };
  std::array<Control, kMaxBatch> control;
};

UdpSocket::UdpSocket(UniqueFd fd, SocketAddress local, IpFamily family, bool offload)
    : fd_(std::move(fd)),
      local_(local),
      family_(family),
      scratch_(std::make_unique<Scratch>()),
      offload_(offload) {
  UdpOffloadStats& o = udp_offload_stats();
  if (!offload_) {
    o.gso = o.gro = "off (network.udp_offload = false)";
  } else {
    // Whether the device under a route takes it is only known on the first
    // send (EIO): send_batch falls back then.
    gso_ = knows_udp_option(fd_.get(), UDP_SEGMENT);
    if (o.gso == "off") o.gso = gso_ ? "on" : "off (the kernel has no UDP_SEGMENT)";
    if (o.gro == "off") {
      o.gro = knows_udp_option(fd_.get(), UDP_GRO) ? "on" : "off (the kernel has no UDP_GRO)";
    }
  }
}

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

  if (options.reuse_port &&
      ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    return sys_fail(errno, "cannot set SO_REUSEPORT");
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
  return std::unique_ptr<UdpSocket>(new UdpSocket(std::move(fd), shown, family, options.offload));
}

bool UdpSocket::enable_coalesced_reads() {
  if (gro_ || !offload_) return gro_;
  int one = 1;
  gro_ = ::setsockopt(fd_.get(), SOL_UDP, UDP_GRO, &one, sizeof one) == 0;
  return gro_;
}

void UdpSocket::gso_refused(int err) {
  gso_ = false;
  UdpOffloadStats& o = udp_offload_stats();
  const std::string why = "refused by the kernel (" + std::string(std::strerror(err)) + ")";
  if (o.gso != why) {
    spdlog::warn("UDP {}: GSO {}: sending one datagram per message", local_.to_string(), why);
  }
  o.gso = why;
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
    d.segment_size = gro_ ? gro_segment_size_from_control(control) : 0;
    d.queued_for = 0;
    if (const auto stamp = receive_stamp_from_control(control)) {
      d.queued_for = std::clamp<Duration>((read_ns - *stamp) / 1000, 0, kMaxQueued);
    }
  }
  return static_cast<std::size_t>(got);
}

bool UdpSocket::prepare_send(std::size_t slot, std::size_t iov_at,
                             std::span<const OutgoingDatagram> run) {
  Scratch& s = *scratch_;
  const OutgoingDatagram& d = run.front();
  socklen_t name_len = d.destination.to_sockaddr(s.names[slot], family_);
  if (name_len == 0) return false;
  for (std::size_t i = 0; i < run.size(); ++i) {
    s.iovs[iov_at + i] =
        iovec{const_cast<std::uint8_t*>(run[i].payload.data()), run[i].payload.size()};
  }
  msghdr& h = s.msgs[slot].msg_hdr;
  h = msghdr{};
  h.msg_name = &s.names[slot];
  h.msg_namelen = name_len;
  h.msg_iov = &s.iovs[iov_at];
  h.msg_iovlen = run.size();
  s.msgs[slot].msg_len = 0;
  s.datagrams[slot] = run.size();
  std::size_t control = 0;  // bytes of control messages so far
  auto add = [&](int level, int type, const void* value, std::size_t len) {
    auto* c = reinterpret_cast<cmsghdr*>(s.control[slot].bytes + control);
    c->cmsg_level = level;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(len);
    std::memcpy(CMSG_DATA(c), value, len);
    control += CMSG_SPACE(len);
  };
  if (d.source) {
    if (family_ == IpFamily::kV4) {
      if (!d.source->unmapped().is_v4()) return false;
      in_pktinfo pi{};
      std::memcpy(&pi.ipi_spec_dst, d.source->unmapped().bytes().data(), 4);
      add(IPPROTO_IP, IP_PKTINFO, &pi, sizeof pi);
    } else {
      // On an IPv6 socket the IPv6 form serves both: an IPv4 source is given
      // v4-mapped and the kernel converts it.
      in6_pktinfo pi{};
      std::memcpy(&pi.ipi6_addr, d.source->mapped_v6().bytes().data(), 16);
      add(IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof pi);
    }
  }
  if (run.size() > 1) {
    // GSO: the kernel cuts the message into datagrams of this size.
    const auto segment = static_cast<std::uint16_t>(d.payload.size());
    add(SOL_UDP, UDP_SEGMENT, &segment, sizeof segment);
  }
  if (control > 0) {
    h.msg_control = s.control[slot].bytes;
    h.msg_controllen = control;
  }
  return true;
}

SysResult<std::size_t> UdpSocket::send_batch(std::span<const OutgoingDatagram> batch) {
  Scratch& s = *scratch_;
  UdpOffloadStats& offload = udp_offload_stats();
  std::size_t done = 0;
  // Datagrams before this index go one per message: their GSO send was
  // refused, and each must be judged on its own.
  std::size_t singly_until = 0;
  while (done < batch.size()) {
    // Messages (a datagram each, or a GSO run) that can be expressed for this
    // socket, up to kMaxBatch datagrams in all.
    std::size_t k = 0;
    std::size_t at = done;
    while (at < batch.size() && at - done < kMaxBatch) {
      std::size_t run = 1;
      if (gso_ && at >= singly_until) {
        run = std::min(gso_run_length(batch.subspan(at)), kMaxBatch - (at - done));
      }
      if (!prepare_send(k, at - done, batch.subspan(at, run))) break;
      ++k;
      at += run;
    }
    if (k == 0) {
      ++send_errors_;
      last_send_errno_ = EAFNOSUPPORT;
      ++done;
      continue;
    }
    int sent = ::sendmmsg(fd_.get(), s.msgs.data(), static_cast<unsigned>(k), MSG_DONTWAIT);
    if (sent > 0) {
      for (std::size_t i = 0; i < static_cast<std::size_t>(sent); ++i) {
        done += s.datagrams[i];
        if (s.datagrams[i] > 1) {
          gso_worked_ = true;
          ++offload.gso_sends;
          offload.gso_datagrams += s.datagrams[i];
        }
      }
      continue;
    }
    int err = errno;
    if (err == EINTR) continue;
    if (transient_send_errno(err)) break;
    if (fatal_send_errno(err))
      return sys_fail(err, "sendmmsg on UDP " + local_.to_string() + " failed");
    if (s.datagrams[0] > 1) {
      // A GSO send refused. EIO: the route's device cannot checksum for us;
      // EINVAL before any GSO send worked: the kernel does not take it. Either
      // way GSO is off for this socket. Other refusals may be one datagram's
      // (EMSGSIZE...): the run goes again one by one.
      ++offload.gso_refused;
      if (err == EIO || (err == EINVAL && !gso_worked_)) gso_refused(err);
      singly_until = done + s.datagrams[0];
      continue;
    }
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

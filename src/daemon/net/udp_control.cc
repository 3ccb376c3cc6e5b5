#include "daemon/net/udp_control.h"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace buckwild::daemon {
namespace {

// SO_TIMESTAMPNS and SO_TIMESTAMPING come in two forms: the _OLD options
// carry the C library's struct timespec, the _NEW ones (y2038-safe) two
// 64-bit fields; on a 64-bit system both are 16 bytes with the same layout.

// Calls fn(level, type, data, data_len) for each control message that lies
// wholly inside `control`. Walked by hand rather than with CMSG_FIRSTHDR /
// CMSG_NXTHDR, which trust cmsg_len: every length is checked against the
// buffer, and nothing is read in place (the buffer need not be aligned).
template <typename Fn>
void for_each_message(Bytes control, Fn&& fn) {
  std::size_t offset = 0;
  while (control.size() - offset >= sizeof(cmsghdr)) {
    cmsghdr c;
    std::memcpy(&c, control.data() + offset, sizeof c);
    if (c.cmsg_len < CMSG_LEN(0) || c.cmsg_len > control.size() - offset) break;
    fn(c.cmsg_level, c.cmsg_type, control.data() + offset + CMSG_LEN(0), c.cmsg_len - CMSG_LEN(0));
    const std::size_t step = CMSG_ALIGN(c.cmsg_len);
    if (step > control.size() - offset) break;
    offset += step;
  }
}

// A timespec's nanoseconds, or nullopt for one that is no time (zero, or
// fields out of range).
std::optional<std::int64_t> stamp_ns(std::int64_t sec, std::int64_t nsec) {
  if (sec <= 0 || sec > std::int64_t{1} << 33 || nsec < 0 || nsec >= 1'000'000'000) {
    return std::nullopt;
  }
  return sec * 1'000'000'000 + nsec;
}

std::optional<std::int64_t> read_timespec(const std::uint8_t* data, std::size_t len, bool wide) {
  if (wide) {
    std::int64_t f[2];
    if (len < sizeof f) return std::nullopt;
    std::memcpy(f, data, sizeof f);
    return stamp_ns(f[0], f[1]);
  }
  timespec ts;
  if (len < sizeof ts) return std::nullopt;
  std::memcpy(&ts, data, sizeof ts);
  return stamp_ns(ts.tv_sec, ts.tv_nsec);
}

}  // namespace

SocketAddress destination_from_control(Bytes control, const SocketAddress& local) {
  SocketAddress destination = local;
  bool have_port = false;
  for_each_message(control, [&](int level, int type, const std::uint8_t* data,
                                std::size_t data_len) {
    if ((level == IPPROTO_IP && type == IP_ORIGDSTADDR) ||
        (level == IPPROTO_IPV6 && type == IPV6_ORIGDSTADDR)) {
      sockaddr_storage ss{};
      const std::size_t n = std::min(data_len, sizeof ss);
      std::memcpy(&ss, data, n);
      auto to = SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss),
                                             static_cast<socklen_t>(n));
      if (to) {
        destination = *to;
        have_port = true;
      }
    } else if (!have_port && level == IPPROTO_IP && type == IP_PKTINFO &&
               data_len >= sizeof(in_pktinfo)) {
      in_pktinfo pi;
      std::memcpy(&pi, data, sizeof pi);
      std::array<std::uint8_t, 4> b;
      std::memcpy(b.data(), &pi.ipi_addr, 4);
      destination.ip = IpAddress::v4(b);
    } else if (!have_port && level == IPPROTO_IPV6 && type == IPV6_PKTINFO &&
               data_len >= sizeof(in6_pktinfo)) {
      in6_pktinfo pi;
      std::memcpy(&pi, data, sizeof pi);
      std::array<std::uint8_t, 16> b;
      std::memcpy(b.data(), &pi.ipi6_addr, 16);
      destination.ip = IpAddress::v6(b).unmapped();
    }
  });
  return destination;
}

std::optional<std::int64_t> receive_stamp_from_control(Bytes control) {
  std::optional<std::int64_t> stamp;
  for_each_message(control, [&](int level, int type, const std::uint8_t* data,
                                std::size_t data_len) {
    if (level != SOL_SOCKET) return;
    std::optional<std::int64_t> t;
    if (type == SO_TIMESTAMPNS_OLD || type == SO_TIMESTAMPNS_NEW) {
      t = read_timespec(data, data_len, type == SO_TIMESTAMPNS_NEW);
    } else if (type == SO_TIMESTAMPING_OLD || type == SO_TIMESTAMPING_NEW) {
      // Three stamps; the first is the software one (hardware ones, ts[2],
      // would be on the NIC's clock, not CLOCK_REALTIME).
      t = read_timespec(data, data_len, type == SO_TIMESTAMPING_NEW);
    }
    if (t) stamp = t;
  });
  return stamp;
}

std::int64_t gro_segment_size_from_control(Bytes control) {
  std::int64_t size = 0;
  for_each_message(control, [&](int level, int type, const std::uint8_t* data,
                                std::size_t data_len) {
    // The kernel writes an int (udp_cmsg_recv).
    if (level != SOL_UDP || type != UDP_GRO || data_len < sizeof(int)) return;
    int value;
    std::memcpy(&value, data, sizeof value);
    size = value;
  });
  return size;
}

GroSplit split_coalesced(std::size_t length, std::int64_t segment_size) {
  if (segment_size == 0) return GroSplit{1, length};
  if (segment_size < 1 || segment_size > 65535) return GroSplit{};
  const auto size = static_cast<std::size_t>(segment_size);
  // An empty read of a coalesced skb cannot happen; one datagram if it did.
  const std::size_t count = length == 0 ? 1 : (length + size - 1) / size;
  if (count > kMaxGroSegments) return GroSplit{};
  return GroSplit{count, size};
}

}  // namespace buckwild::daemon

#include "daemon/net/udp_control.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace buckwild::daemon {

SocketAddress destination_from_control(Bytes control, const SocketAddress& local) {
  SocketAddress destination = local;
  bool have_port = false;
  // Walked by hand rather than with CMSG_FIRSTHDR/CMSG_NXTHDR, which trust
  // cmsg_len: every length is checked against the buffer, and nothing is read
  // in place (the buffer need not be aligned).
  std::size_t offset = 0;
  while (control.size() - offset >= sizeof(cmsghdr)) {
    cmsghdr c;
    std::memcpy(&c, control.data() + offset, sizeof c);
    if (c.cmsg_len < CMSG_LEN(0) || c.cmsg_len > control.size() - offset) break;
    const std::uint8_t* data = control.data() + offset + CMSG_LEN(0);
    const std::size_t data_len = c.cmsg_len - CMSG_LEN(0);
    if ((c.cmsg_level == IPPROTO_IP && c.cmsg_type == IP_ORIGDSTADDR) ||
        (c.cmsg_level == IPPROTO_IPV6 && c.cmsg_type == IPV6_ORIGDSTADDR)) {
      sockaddr_storage ss{};
      const std::size_t n = std::min(data_len, sizeof ss);
      std::memcpy(&ss, data, n);
      auto to = SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss),
                                             static_cast<socklen_t>(n));
      if (to) {
        destination = *to;
        have_port = true;
      }
    } else if (!have_port && c.cmsg_level == IPPROTO_IP && c.cmsg_type == IP_PKTINFO &&
               data_len >= sizeof(in_pktinfo)) {
      in_pktinfo pi;
      std::memcpy(&pi, data, sizeof pi);
      std::array<std::uint8_t, 4> b;
      std::memcpy(b.data(), &pi.ipi_addr, 4);
      destination.ip = IpAddress::v4(b);
    } else if (!have_port && c.cmsg_level == IPPROTO_IPV6 && c.cmsg_type == IPV6_PKTINFO &&
               data_len >= sizeof(in6_pktinfo)) {
      in6_pktinfo pi;
      std::memcpy(&pi, data, sizeof pi);
      std::array<std::uint8_t, 16> b;
      std::memcpy(b.data(), &pi.ipi6_addr, 16);
      destination.ip = IpAddress::v6(b).unmapped();
    }
    const std::size_t step = CMSG_ALIGN(c.cmsg_len);
    if (step > control.size() - offset) break;
    offset += step;
  }
  return destination;
}

}  // namespace buckwild::daemon

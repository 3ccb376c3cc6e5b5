// The ancillary data of a received datagram (daemon/net/udp_control): arbitrary
// control-message bytes, as recvmsg could have written them, plus what the
// same bytes mean when they are a list of well-formed messages.
//
// Raw mode (byte 0 even): the rest is the control buffer. Nothing may crash
// or read outside it (ASan), and the answer is `local` or an address taken
// from the bytes.
// Built mode (byte 0 odd): the rest is a list of (kind, 28 bytes) items,
// serialized here as proper cmsgs (IP_ORIGDSTADDR, IPV6_ORIGDSTADDR,
// IP_PKTINFO, IPV6_PKTINFO, SO_TIMESTAMPNS_NEW, UDP_GRO, other); the answers
// must be what the reference rules give: the last valid ORIGDSTADDR, else the
// last PKTINFO's address with the local port, else `local`; the last receive
// stamp whose seconds are in (0, 2^33] and nanoseconds under 10^9; and the
// last UDP_GRO segment size.
// Both modes then split a read of a length from the input by the segment size
// found: a refused size gives no datagrams; otherwise the datagrams lie
// end to end inside the read, cover it, and are all full but the last.
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "daemon/net/udp_control.h"

using namespace buckwild;

namespace {

const SocketAddress kLocal{IpAddress::v4({192, 0, 2, 1}), 1025};

template <typename T>
void append(std::vector<std::uint8_t>& out, int level, int type, const T& value) {
  const std::size_t at = out.size();
  out.resize(at + CMSG_SPACE(sizeof(T)));
  cmsghdr c{};
  c.cmsg_len = CMSG_LEN(sizeof(T));
  c.cmsg_level = level;
  c.cmsg_type = type;
  std::memcpy(out.data() + at, &c, sizeof c);
  std::memcpy(out.data() + at + CMSG_LEN(0), &value, sizeof value);
}

// Splits a read of `length` bytes as the receive path does; aborts on a
// split that is not one.
void check_split(std::size_t length, std::int64_t segment_size) {
  std::vector<std::uint8_t> read(length);
  const daemon::GroSplit split = daemon::split_coalesced(length, segment_size);
  if (split.count == 0) {
    if (segment_size == 0) std::abort();
    return;
  }
  if (split.count > daemon::kMaxGroSegments) std::abort();
  std::size_t covered = 0;
  for (std::size_t k = 0; k < split.count; ++k) {
    const MutableBytes d = split.datagram(read, k);
    if (d.data() != read.data() + covered) std::abort();
    if (k + 1 < split.count && d.size() != split.segment_size) std::abort();
    if (length > 0 && d.empty()) std::abort();
    covered += d.size();
  }
  if (covered != length) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  if ((data[0] & 1) == 0) {
    // A copy of exactly the given length, so that ASan sees any read past it.
    std::vector<std::uint8_t> control(data + 1, data + size);
    (void)daemon::destination_from_control(control, kLocal);
    (void)daemon::receive_stamp_from_control(control);
    const std::size_t length = size > 2 ? (data[1] | data[2] << 8) : 0;
    check_split(length, daemon::gro_segment_size_from_control(control));
    return 0;
  }
  std::vector<std::uint8_t> control;
  std::optional<SocketAddress> orig;
  std::optional<IpAddress> pktinfo;
  std::optional<std::int64_t> stamp;
  std::int64_t segment_size = 0;
  for (std::size_t i = 1; i + 29 <= size && control.size() < 4096; i += 29) {
    const std::uint8_t kind = data[i];
    const std::uint8_t* v = data + i + 1;
    std::array<std::uint8_t, 4> a4;
    std::array<std::uint8_t, 16> a16;
    std::memcpy(a4.data(), v, 4);
    std::memcpy(a16.data(), v, 16);
    const std::uint16_t port = static_cast<std::uint16_t>(v[16] << 8 | v[17]);
    switch (kind % 7) {
      case 0: {
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port);
        std::memcpy(&sin.sin_addr, a4.data(), 4);
        append(control, IPPROTO_IP, IP_ORIGDSTADDR, sin);
        orig = SocketAddress{IpAddress::v4(a4), port};
        break;
      }
      case 1: {
        sockaddr_in6 sin6{};
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(port);
        std::memcpy(&sin6.sin6_addr, a16.data(), 16);
        append(control, IPPROTO_IPV6, IPV6_ORIGDSTADDR, sin6);
        orig = SocketAddress{IpAddress::v6(a16).unmapped(), port};
        break;
      }
      case 2: {
        in_pktinfo pi{};
        std::memcpy(&pi.ipi_addr, a4.data(), 4);
        append(control, IPPROTO_IP, IP_PKTINFO, pi);
        if (!orig) pktinfo = IpAddress::v4(a4);
        break;
      }
      case 3: {
        in6_pktinfo pi{};
        std::memcpy(&pi.ipi6_addr, a16.data(), 16);
        append(control, IPPROTO_IPV6, IPV6_PKTINFO, pi);
        if (!orig) pktinfo = IpAddress::v6(a16).unmapped();
        break;
      }
      case 4: {
        std::int64_t ts[2];
        std::memcpy(ts, v, sizeof ts);
        append(control, SOL_SOCKET, SO_TIMESTAMPNS_NEW, ts);
        if (ts[0] > 0 && ts[0] <= std::int64_t{1} << 33 && ts[1] >= 0 && ts[1] < 1'000'000'000) {
          stamp = ts[0] * 1'000'000'000 + ts[1];
        }
        break;
      }
      case 5: {
        int gso_size;
        std::memcpy(&gso_size, v, sizeof gso_size);
        append(control, SOL_UDP, UDP_GRO, gso_size);
        segment_size = gso_size;
        break;
      }
      default: {
        std::array<std::uint8_t, 28> other;
        std::memcpy(other.data(), v, 28);
        append(control, SOL_SOCKET, SO_TIMESTAMP, other);
        break;
      }
    }
  }
  const SocketAddress got = daemon::destination_from_control(control, kLocal);
  const SocketAddress want = orig ? *orig : (pktinfo ? SocketAddress{*pktinfo, kLocal.port} : kLocal);
  if (got != want) std::abort();
  if (daemon::receive_stamp_from_control(control) != stamp) std::abort();
  if (daemon::gro_segment_size_from_control(control) != segment_size) std::abort();
  check_split(size, segment_size);
  return 0;
}

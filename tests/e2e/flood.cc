// A bounded UDP flood for the end-to-end flood test: COUNT datagrams, as fast
// as one process can send them (sendmmsg, 64 at a time), each carrying a
// well-formed Buckwild header with a random session id, so that only the port
// (or, when following, the source) is wrong. Stops after COUNT datagrams or
// SECONDS, whichever comes first, and prints one line:
//   sent=N seconds=S rate=R cpu=C [ports=P]
// where C is the CPU time (user + system) the sender itself used, in seconds,
// including the kernel's work done in its system calls.
//
//   buckwild_flood FROM_IPV4 TO_IPV4 COUNT SECONDS [--skip-port N] [--follow IFACE]
//
// Without --follow, each datagram goes to a random port of the hopping range
// (never N). With --follow, it plays an on-path attacker who watches IFACE and
// aims at the port TO_IPV4 last received a UDP datagram on from anyone but
// FROM_IPV4: the tunnel's current port, followed as it hops; P is how many
// different ports it aimed at.
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <random>
#include <set>
#include <string>

#include "core/wire/messages.h"
#include "flood_report.h"

namespace {

constexpr std::size_t kBatch = 64;
constexpr std::size_t kPayload = 100;  // header 44 + body 40 + tag 16

int usage(const char* self) {
  std::fprintf(
      stderr, "usage: %s FROM_IPV4 TO_IPV4 COUNT SECONDS [--skip-port N] [--follow IFACE]\n", self);
  return 2;
}

// A packet socket on `iface` that sees the IPv4 UDP datagrams to `to` from
// any address but `from` (a classic BPF filter keeps our own flood out).
int watch(const char* iface, in_addr from, in_addr to) {
  const unsigned index = ::if_nametoindex(iface);
  if (index == 0) {
    std::fprintf(stderr, "no interface %s\n", iface);
    return -1;
  }
  // ETH_P_ALL: a socket bound to one protocol sees only what arrives, and the
  // tunnel's datagrams leave through this interface.
  const int fd = ::socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd < 0) {
    std::perror("socket(AF_PACKET)");
    return -1;
  }
  // Offsets from the IP header (SOCK_DGRAM packet sockets start there).
  sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_H | BPF_ABS, static_cast<__u32>(SKF_AD_OFF + SKF_AD_PROTOCOL)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, 7),
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9),  // protocol
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, 5),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 12),  // source
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ntohl(from.s_addr), 3, 0),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 16),  // destination
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ntohl(to.s_addr), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 64),
      BPF_STMT(BPF_RET | BPF_K, 0),
  };
  sock_fprog program{static_cast<unsigned short>(std::size(code)), code};
  sockaddr_ll at{};
  at.sll_family = AF_PACKET;
  at.sll_protocol = htons(ETH_P_ALL);
  at.sll_ifindex = static_cast<int>(index);
  if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) != 0 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0) {
    std::perror("packet socket");
    ::close(fd);
    return -1;
  }
  return fd;
}

// The destination port of the newest datagram waiting on `fd`, or `port`
// when none is.
std::uint16_t newest_port(int fd, std::uint16_t port) {
  std::array<std::uint8_t, 64> packet{};
  for (int i = 0; i < 256; ++i) {
    const ssize_t n = ::recv(fd, packet.data(), packet.size(), 0);
    if (n < 0) break;
    const std::size_t ihl = static_cast<std::size_t>(packet[0] & 0x0f) * 4;
    if (ihl < 20 || static_cast<std::size_t>(n) < ihl + 4) continue;
    port = static_cast<std::uint16_t>((packet[ihl + 2] << 8) | packet[ihl + 3]);
  }
  return port;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace buckwild;
  if (argc < 5 || (argc - 5) % 2 != 0) return usage(argv[0]);
  in_addr from{};
  in_addr to{};
  if (::inet_pton(AF_INET, argv[1], &from) != 1 || ::inet_pton(AF_INET, argv[2], &to) != 1) {
    return usage(argv[0]);
  }
  const unsigned long long count = std::strtoull(argv[3], nullptr, 10);
  const double seconds = std::strtod(argv[4], nullptr);
  if (count == 0 || count > 100'000'000ULL || seconds <= 0 || seconds > 600) return usage(argv[0]);
  unsigned long skip = 0;
  const char* follow = nullptr;
  for (int i = 5; i < argc; i += 2) {
    const std::string option = argv[i];
    if (option == "--skip-port") {
      skip = std::strtoul(argv[i + 1], nullptr, 10);
    } else if (option == "--follow") {
      follow = argv[i + 1];
    } else {
      return usage(argv[0]);
    }
  }

  int watcher = -1;
  std::uint16_t followed = 0;
  std::set<std::uint16_t> aimed_at;
  if (follow != nullptr) {
    watcher = watch(follow, from, to);
    if (watcher < 0) return 1;
    // Up to two seconds for the tunnel's next datagram (a heartbeat at least).
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (followed == 0 && std::chrono::steady_clock::now() < until) {
      followed = newest_port(watcher, 0);
      if (followed == 0) ::usleep(1000);
    }
    if (followed == 0) {
      std::fprintf(stderr, "no UDP datagram to %s seen on %s\n", argv[2], follow);
      return 1;
    }
  }

  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    std::perror("socket");
    return 1;
  }
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_addr = from;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
    std::perror("bind");
    return 1;
  }

  std::mt19937_64 rng(std::random_device{}());
  std::uniform_int_distribution<unsigned> port_of(wire::kMinPort, wire::kMaxPort);
  std::array<std::array<std::uint8_t, kPayload>, kBatch> payloads{};
  std::array<sockaddr_in, kBatch> targets{};
  std::array<iovec, kBatch> iov{};
  std::array<mmsghdr, kBatch> msgs{};
  for (std::size_t i = 0; i < kBatch; ++i) {
    std::uint8_t* p = payloads[i].data();
    p[0] = wire::kVersion;
    p[1] = static_cast<std::uint8_t>(wire::PacketType::kDatagram);
    const std::uint64_t session = rng() | 1;
    for (int b = 0; b < 8; ++b) p[4 + b] = static_cast<std::uint8_t>(session >> (56 - 8 * b));
    const std::uint16_t body = kPayload - wire::kOverhead;
    p[38] = static_cast<std::uint8_t>(body >> 8);
    p[39] = static_cast<std::uint8_t>(body);
    iov[i] = iovec{p, kPayload};
    targets[i].sin_family = AF_INET;
    targets[i].sin_addr = to;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &targets[i];
    msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
  }

  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  unsigned long long sent = 0;
  while (sent < count && std::chrono::steady_clock::now() < deadline) {
    const std::size_t n =
        static_cast<std::size_t>(std::min<unsigned long long>(kBatch, count - sent));
    if (watcher >= 0) {
      followed = newest_port(watcher, followed);
      aimed_at.insert(followed);
    }
    for (std::size_t i = 0; i < n; ++i) {
      unsigned port = followed;
      if (watcher < 0) {
        port = port_of(rng);
        while (port == skip) port = port_of(rng);
      }
      targets[i].sin_port = htons(static_cast<std::uint16_t>(port));
    }
    const int r = ::sendmmsg(fd, msgs.data(), static_cast<unsigned>(n), 0);
    if (r > 0) sent += static_cast<unsigned>(r);
  }
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::close(fd);
  e2e::print_flood_report(sent, took);
  if (watcher >= 0) {
    std::printf(" ports=%zu", aimed_at.size());
    ::close(watcher);
  }
  std::printf("\n");
  return sent == count ? 0 : 3;
}

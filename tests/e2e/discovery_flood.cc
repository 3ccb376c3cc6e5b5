// A bounded flood of junk discovery messages from spoofed sources, for the
// end-to-end test of discovery under attack (issue: "discovery can be denied
// cheaply"). Every datagram is a well-formed DISCOVERY or CONFIRM (right
// size, framing and a fresh timestamp, random everything else) from a random
// address of SPOOF_PREFIX/16 and a random port, sent through a raw socket as
// fast as one process can (sendmmsg, 64 at a time). It stops after COUNT
// datagrams or SECONDS, whichever comes first, and prints one line:
//   sent=N seconds=S rate=R cpu=C
//
//   buckwild_discovery_flood TO_IPV4 PORT COUNT SECONDS SPOOF_PREFIX [CONFIRM_PERCENT]
//
// SPOOF_PREFIX is an IPv4 address whose first two octets are kept (10.99.0.0
// sends from 10.99.0.0/16). CONFIRM_PERCENT (default 50) is the share of
// CONFIRMs. The timestamp is this host's clock: run it where the daemon
// under test reads the same time.
#include <arpa/inet.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "core/wire/codec.h"
#include "core/wire/messages.h"
#include "flood_report.h"

namespace {

constexpr std::size_t kBatch = 64;
constexpr std::size_t kIpUdp = sizeof(iphdr) + sizeof(udphdr);

int usage(const char* self) {
  std::fprintf(stderr,
               "usage: %s TO_IPV4 PORT COUNT SECONDS SPOOF_PREFIX [CONFIRM_PERCENT]\n", self);
  return 2;
}

std::uint32_t ms_since_utc_midnight() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now).count();
  return static_cast<std::uint32_t>(ms % 86'400'000);
}

void put16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}

// Writes a discovery message of `type` with random contents at `p` (its
// datagram size bytes) and returns that size.
std::size_t junk_message(std::uint8_t* p, buckwild::wire::PacketType type, std::mt19937_64& rng) {
  using namespace buckwild;
  const bool confirm = type == wire::PacketType::kDiscoveryConfirm;
  const std::size_t body = confirm ? 260 : 1116;
  const std::size_t size = wire::kHeaderSize + body + wire::kTagSize;
  for (std::size_t i = 0; i < size; i += 8) {
    const std::uint64_t r = rng();
    std::memcpy(p + i, &r, std::min<std::size_t>(8, size - i));
  }
  wire::Header h{};
  h.type = type;
  h.flags = confirm ? wire::flags::kAck : wire::flags::kSyn;
  h.session_id = confirm ? (rng() | 1) : 0;
  h.timestamp_ms = ms_since_utc_midnight();
  h.payload_length = static_cast<std::uint16_t>(body);
  wire::write_header(h, buckwild::MutableBytes(p, wire::kHeaderSize));
  std::uint8_t* b = p + wire::kHeaderSize;
  if (!confirm) {
    put16(b + 90, 64);  // slot count
  } else {
    // The echoed timestamps within the day, the reserved field zero: what
    // gets a CONFIRM past the parser to the responder's cookie check.
    for (std::size_t at : {std::size_t{248}, std::size_t{252}}) {
      const std::uint32_t ts = h.timestamp_ms;
      b[at] = static_cast<std::uint8_t>(ts >> 24);
      b[at + 1] = static_cast<std::uint8_t>(ts >> 16);
      b[at + 2] = static_cast<std::uint8_t>(ts >> 8);
      b[at + 3] = static_cast<std::uint8_t>(ts);
    }
    std::memset(b + 258, 0, 2);
  }
  std::memset(p + wire::kHeaderSize + body, 0, wire::kTagSize);  // the trailer is zero
  return size;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace buckwild;
  if (argc != 6 && argc != 7) return usage(argv[0]);
  in_addr to{};
  in_addr prefix{};
  if (::inet_pton(AF_INET, argv[1], &to) != 1 || ::inet_pton(AF_INET, argv[5], &prefix) != 1) {
    return usage(argv[0]);
  }
  const unsigned long port = std::strtoul(argv[2], nullptr, 10);
  const unsigned long long count = std::strtoull(argv[3], nullptr, 10);
  const double seconds = std::strtod(argv[4], nullptr);
  const unsigned long confirm_percent = argc == 7 ? std::strtoul(argv[6], nullptr, 10) : 50;
  if (port == 0 || port > 65535 || count == 0 || count > 100'000'000ULL || seconds <= 0 ||
      seconds > 600 || confirm_percent > 100) {
    return usage(argv[0]);
  }

  const int fd = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
  if (fd < 0) {
    std::perror("socket(SOCK_RAW)");
    return 1;
  }

  std::mt19937_64 rng(std::random_device{}());
  std::vector<std::array<std::uint8_t, 1280>> packets(kBatch);
  static_assert(kIpUdp + wire::kHeaderSize + 1116 + wire::kTagSize <= 1280);
  std::array<sockaddr_in, kBatch> targets{};
  std::array<iovec, kBatch> iov{};
  std::array<mmsghdr, kBatch> msgs{};
  for (std::size_t i = 0; i < kBatch; ++i) {
    targets[i].sin_family = AF_INET;
    targets[i].sin_addr = to;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &targets[i];
    msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
  }
  const std::uint32_t net = ntohl(prefix.s_addr) & 0xFFFF0000u;

  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  unsigned long long sent = 0;
  while (sent < count && std::chrono::steady_clock::now() < deadline) {
    const std::size_t n =
        static_cast<std::size_t>(std::min<unsigned long long>(kBatch, count - sent));
    for (std::size_t i = 0; i < n; ++i) {
      std::uint8_t* p = packets[i].data();
      const auto type = rng() % 100 < confirm_percent ? wire::PacketType::kDiscoveryConfirm
                                                        : wire::PacketType::kDiscovery;
      const std::size_t message = junk_message(p + kIpUdp, type, rng);
      const std::uint64_t r = rng();
      iphdr ip{};
      ip.version = 4;
      ip.ihl = 5;
      ip.ttl = 64;
      ip.protocol = IPPROTO_UDP;
      ip.tot_len = htons(static_cast<std::uint16_t>(kIpUdp + message));
      ip.saddr = htonl(net | static_cast<std::uint32_t>((r & 0xFFFF) | 1));
      ip.daddr = to.s_addr;  // the kernel fills in id and checksum
      udphdr udp{};
      udp.source = htons(static_cast<std::uint16_t>(1024 + (r >> 16) % 64512));
      udp.dest = htons(static_cast<std::uint16_t>(port));
      udp.len = htons(static_cast<std::uint16_t>(sizeof(udphdr) + message));
      udp.check = 0;  // none, as IPv4 allows
      std::memcpy(p, &ip, sizeof ip);
      std::memcpy(p + sizeof ip, &udp, sizeof udp);
      iov[i] = iovec{p, kIpUdp + message};
    }
    const int sent_now = ::sendmmsg(fd, msgs.data(), static_cast<unsigned>(n), 0);
    if (sent_now > 0) sent += static_cast<unsigned>(sent_now);
  }
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::close(fd);
  e2e::print_flood_report(sent, took);
  std::printf("\n");
  return sent == count ? 0 : 3;
}

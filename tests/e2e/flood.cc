// A bounded UDP flood for the end-to-end flood test: COUNT datagrams, as fast
// as one process can send them (sendmmsg, 64 at a time), to random ports of
// the hopping range, each carrying a well-formed Buckwild header with a random
// session id, so that only the port is wrong. Stops after COUNT datagrams or
// SECONDS, whichever comes first, and prints one line:
//   sent=N seconds=S rate=R cpu=C
// where C is the CPU time (user + system) the sender itself used, in seconds,
// including the kernel's work done in its system calls.
//
//   buckwild_flood FROM_IPV4 TO_IPV4 COUNT SECONDS [SKIP_PORT]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "core/wire/messages.h"

namespace {

constexpr std::size_t kBatch = 64;
constexpr std::size_t kPayload = 100;  // header 44 + body 40 + tag 16

int usage(const char* self) {
  std::fprintf(stderr, "usage: %s FROM_IPV4 TO_IPV4 COUNT SECONDS [SKIP_PORT]\n", self);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace buckwild;
  if (argc != 5 && argc != 6) return usage(argv[0]);
  in_addr from{};
  in_addr to{};
  if (::inet_pton(AF_INET, argv[1], &from) != 1 || ::inet_pton(AF_INET, argv[2], &to) != 1) {
    return usage(argv[0]);
  }
  const unsigned long long count = std::strtoull(argv[3], nullptr, 10);
  const double seconds = std::strtod(argv[4], nullptr);
  const unsigned long skip = argc == 6 ? std::strtoul(argv[5], nullptr, 10) : 0;
  if (count == 0 || count > 100'000'000ULL || seconds <= 0 || seconds > 600) return usage(argv[0]);

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
    const std::size_t n = static_cast<std::size_t>(std::min<unsigned long long>(kBatch, count - sent));
    for (std::size_t i = 0; i < n; ++i) {
      unsigned port = port_of(rng);
      while (port == skip) port = port_of(rng);
      targets[i].sin_port = htons(static_cast<std::uint16_t>(port));
    }
    const int r = ::sendmmsg(fd, msgs.data(), static_cast<unsigned>(n), 0);
    if (r > 0) sent += static_cast<unsigned>(r);
  }
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::close(fd);
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const double cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                     static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  std::printf("sent=%llu seconds=%.3f rate=%.0f cpu=%.3f\n", sent, took,
              took > 0 ? static_cast<double>(sent) / took : 0.0, cpu);
  return sent == count ? 0 : 3;
}

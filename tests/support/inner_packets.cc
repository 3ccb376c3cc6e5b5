#include "support/inner_packets.h"

#include <cstring>

namespace buckwild::testing {
namespace {

std::uint16_t fold_sum(const std::uint8_t* p, std::size_t n, std::uint32_t acc) {
  for (; n >= 2; p += 2, n -= 2) acc += static_cast<std::uint32_t>((p[0] << 8) | p[1]);
  if (n == 1) acc += static_cast<std::uint32_t>(p[0] << 8);
  while (acc >> 16) acc = (acc & 0xFFFF) + (acc >> 16);
  return static_cast<std::uint16_t>(acc);
}

}  // namespace

std::vector<std::uint8_t> tcp_segment(const SocketAddress& src, const SocketAddress& dst,
                                      std::uint8_t flags) {
  const bool v6 = src.ip.is_v6();
  const std::size_t ip_len = v6 ? 40 : 20;
  const std::size_t addr_len = v6 ? 16 : 4;
  std::vector<std::uint8_t> p(ip_len + 20, 0);  // IP + TCP, no options
  if (v6) {
    p[0] = 0x60;
    p[5] = 20;  // payload length
    p[6] = 6;
    p[7] = 64;
    std::memcpy(&p[8], src.ip.bytes().data(), 16);
    std::memcpy(&p[24], dst.ip.bytes().data(), 16);
  } else {
    p[0] = 0x45;
    p[3] = 40;
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 6;
    std::memcpy(&p[12], src.ip.bytes().data(), 4);
    std::memcpy(&p[16], dst.ip.bytes().data(), 4);
    const std::uint16_t ic = static_cast<std::uint16_t>(~fold_sum(p.data(), 20, 0));
    p[10] = static_cast<std::uint8_t>(ic >> 8);
    p[11] = static_cast<std::uint8_t>(ic);
  }
  std::uint8_t* t = &p[ip_len];
  t[0] = static_cast<std::uint8_t>(src.port >> 8);
  t[1] = static_cast<std::uint8_t>(src.port);
  t[2] = static_cast<std::uint8_t>(dst.port >> 8);
  t[3] = static_cast<std::uint8_t>(dst.port);
  t[4] = 0x12;
  t[7] = 0x34;
  t[12] = 5 << 4;
  t[13] = flags;
  t[14] = 0xFF;
  t[15] = 0xFF;
  std::uint32_t acc = fold_sum(src.ip.bytes().data(), addr_len, 0) +
                      fold_sum(dst.ip.bytes().data(), addr_len, 0) + 6 + 20;
  const std::uint16_t c = static_cast<std::uint16_t>(~fold_sum(t, 20, acc));
  t[16] = static_cast<std::uint8_t>(c >> 8);
  t[17] = static_cast<std::uint8_t>(c);
  return p;
}

}  // namespace buckwild::testing

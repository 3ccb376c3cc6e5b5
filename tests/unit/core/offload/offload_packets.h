// Packets for the TUN offload tests, built here byte by byte with checksums
// computed independently of the code under test.
#pragma once

#include <cstdint>
#include <vector>

#include "core/offload/gso_split.h"

namespace buckwild::offload {

// Checksums computed here byte by byte, independently of the code under test.
inline std::uint32_t sum_bytes(const std::vector<std::uint8_t>& p, std::size_t from, std::size_t to) {
  std::uint32_t acc = 0;
  for (std::size_t i = from; i < to; ++i) acc += (i - from) % 2 == 0 ? p[i] * 256u : p[i];
  return acc;
}
inline std::uint16_t fold(std::uint32_t acc) {
  while (acc > 0xFFFF) acc = (acc & 0xFFFF) + (acc >> 16);
  return static_cast<std::uint16_t>(acc);
}
inline std::uint16_t be16(const std::vector<std::uint8_t>& p, std::size_t at) {
  return static_cast<std::uint16_t>(p[at] * 256 + p[at + 1]);
}
inline std::uint32_t be32(const std::vector<std::uint8_t>& p, std::size_t at) {
  return (std::uint32_t{p[at]} << 24) | (std::uint32_t{p[at + 1]} << 16) |
         (std::uint32_t{p[at + 2]} << 8) | p[at + 3];
}
inline void put16(std::vector<std::uint8_t>& p, std::size_t at, std::uint32_t v) {
  p[at] = static_cast<std::uint8_t>(v >> 8);
  p[at + 1] = static_cast<std::uint8_t>(v);
}

// The pseudo-header sum of a packet whose transport header starts at `t`.
inline std::uint32_t pseudo(const std::vector<std::uint8_t>& p, std::size_t t, std::uint8_t proto) {
  const bool v6 = (p[0] >> 4) == 6;
  std::uint32_t acc = v6 ? sum_bytes(p, 8, 40) : sum_bytes(p, 12, 20);
  return acc + proto + static_cast<std::uint32_t>(p.size() - t);
}

// True when the IPv4 header checksum (if IPv4) and the transport checksum verify.
inline bool checksums_verify(const std::vector<std::uint8_t>& p, std::size_t t, std::uint8_t proto) {
  if ((p[0] >> 4) == 4 && fold(sum_bytes(p, 0, t)) != 0xFFFF) return false;
  if (proto == 17 && be16(p, t + 6) == 0) return false;  // we always send UDP checksums
  return fold(pseudo(p, t, proto) + sum_bytes(p, t, p.size())) == 0xFFFF;
}

struct Shape {
  bool v6 = false;
  std::uint8_t proto = 6;
  std::size_t ip_options = 0;   // IPv4 only, multiple of 4
  std::size_t tcp_options = 0;  // multiple of 4
  std::size_t payload = 0;
  std::uint8_t tcp_flags = 0x18;  // PSH|ACK
  std::uint8_t net = 0;           // IPv4: 10.<net>.0.1 -> 10.<net>.0.2
};

// One IP packet as the kernel would hand it to a TUN with offloads: lengths
// for the whole thing, the transport checksum left as the pseudo-header seed.
inline std::vector<std::uint8_t> super_packet(const Shape& s) {
  const std::size_t ip = s.v6 ? 40 : 20 + s.ip_options;
  const std::size_t th = s.proto == 6 ? 20 + s.tcp_options : 8;
  std::vector<std::uint8_t> p(ip + th + s.payload, 0);
  if (s.v6) {
    p[0] = 0x60;
    put16(p, 4, static_cast<std::uint32_t>(p.size() - 40));
    p[6] = s.proto;
    p[7] = 64;
    for (int i = 0; i < 16; ++i) p[8 + i] = static_cast<std::uint8_t>(0xfd + i);
    for (int i = 0; i < 16; ++i) p[24 + i] = static_cast<std::uint8_t>(0x20 + i);
  } else {
    p[0] = static_cast<std::uint8_t>(0x40 | (ip / 4));
    put16(p, 2, static_cast<std::uint32_t>(p.size()));
    put16(p, 4, 0xFFFE);  // the id wraps while splitting
    p[6] = 0x40;          // DF
    p[8] = 64;
    p[9] = s.proto;
    p[12] = 10, p[13] = s.net, p[14] = 0, p[15] = 1;
    p[16] = 10, p[17] = s.net, p[18] = 0, p[19] = 2;
    for (std::size_t i = 20; i < ip; ++i) p[i] = 1;  // NOP options
    put16(p, 10, static_cast<std::uint16_t>(~fold(sum_bytes(p, 0, ip))));
  }
  put16(p, ip, 40000);
  put16(p, ip + 2, 5201);
  if (s.proto == 6) {
    p[ip + 4] = 0xFF, p[ip + 5] = 0xFF, p[ip + 6] = 0xF0, p[ip + 7] = 0x00;  // seq wraps
    p[ip + 12] = static_cast<std::uint8_t>((th / 4) << 4);
    p[ip + 13] = s.tcp_flags;
    put16(p, ip + 14, 512);
    for (std::size_t i = ip + 20; i < ip + th; ++i) p[i] = 1;
  } else {
    put16(p, ip + 4, static_cast<std::uint32_t>(p.size() - ip));
  }
  for (std::size_t i = 0; i < s.payload; ++i) p[ip + th + i] = static_cast<std::uint8_t>(i * 7 + 3);
  // The kernel's seed: the folded pseudo-header sum, not complemented.
  put16(p, ip + (s.proto == 6 ? 16 : 6), fold(pseudo(p, ip, s.proto)));
  return p;
}

// Gives a TCP packet from super_packet() (no IPv4 options) other endpoints:
// addresses `src` and `dst` (4 or 16 bytes, the packet's family) and ports,
// with its IPv4 header checksum and its pseudo-header seed made anew.
inline void set_endpoints(std::vector<std::uint8_t>& p, const std::uint8_t* src,
                          const std::uint8_t* dst, std::uint16_t source_port,
                          std::uint16_t destination_port) {
  const bool v6 = (p[0] >> 4) == 6;
  const std::size_t n = v6 ? 16 : 4;
  const std::size_t t = v6 ? 40 : 20;
  for (std::size_t i = 0; i < n; ++i) {
    p[(v6 ? 8 : 12) + i] = src[i];
    p[(v6 ? 24 : 16) + i] = dst[i];
  }
  if (!v6) {
    put16(p, 10, 0);
    put16(p, 10, static_cast<std::uint16_t>(~fold(sum_bytes(p, 0, 20))));
  }
  put16(p, t, source_port);
  put16(p, t + 2, destination_port);
  put16(p, t + 16, fold(pseudo(p, t, 6)));
}

inline VnetHeader gso_header(const Shape& s, std::uint16_t gso_size) {
  VnetHeader h;
  h.flags = vnet_flag::kNeedsCsum;
  h.gso_type = s.proto == 17 ? gso_type::kUdpL4 : (s.v6 ? gso_type::kTcpV6 : gso_type::kTcpV4);
  h.gso_size = gso_size;
  h.csum_start = static_cast<std::uint16_t>(s.v6 ? 40 : 20 + s.ip_options);
  h.csum_offset = s.proto == 6 ? 16 : 6;
  h.hdr_len = static_cast<std::uint16_t>(h.csum_start + (s.proto == 6 ? 20 + s.tcp_options : 8));
  return h;
}

}  // namespace buckwild::offload

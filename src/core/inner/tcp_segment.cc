#include "core/inner/tcp_segment.h"

#include <array>
#include <cstring>

#include "core/common/byte_order.h"
#include "core/inner/ip_packet.h"

namespace buckwild::inner {
namespace {

constexpr std::size_t kTcpHeader = 20;

// One's-complement sum of big-endian 16-bit words (an odd tail is padded).
std::uint32_t sum16(const std::uint8_t* p, std::size_t n, std::uint32_t acc = 0) {
  for (; n >= 2; p += 2, n -= 2) acc += load16(p);
  if (n == 1) acc += std::uint32_t{p[0]} << 8;
  return acc;
}
std::uint16_t fold(std::uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xFFFF) + (acc >> 16);
  return static_cast<std::uint16_t>(acc);
}

// RFC 1624 eqn. 3 over a run of words: HC' = ~(~HC + Σ~m + Σm').
class ChecksumDelta {
 public:
  void replace(const std::uint8_t* old_bytes, const std::uint8_t* new_bytes, std::size_t n) {
    for (std::size_t i = 0; i + 1 < n; i += 2) {
      acc_ += static_cast<std::uint16_t>(~load16(old_bytes + i));
      acc_ += load16(new_bytes + i);
    }
  }
  void apply(std::uint8_t* checksum_field) const {
    const std::uint32_t acc = acc_ + static_cast<std::uint16_t>(~load16(checksum_field));
    store16(checksum_field, static_cast<std::uint16_t>(~fold(acc)));
  }
  // For a field that holds a sum rather than its complement (a pseudo-header
  // seed): S' = S + Σ~m + Σm', no complement on either side.
  void apply_to_sum(std::uint8_t* sum_field) const {
    store16(sum_field, fold(acc_ + load16(sum_field)));
  }

 private:
  std::uint32_t acc_ = 0;
};

// Writes the address `to` over the packet's field, feeding both deltas.
void replace_address(std::uint8_t* field, const IpAddress& to, ChecksumDelta& ip,
                     ChecksumDelta& tcp) {
  const auto b = to.bytes();
  ip.replace(field, b.data(), b.size());
  tcp.replace(field, b.data(), b.size());
  std::memcpy(field, b.data(), b.size());
}

std::uint16_t pseudo_checksum(const SocketAddress& src, const SocketAddress& dst,
                              const std::uint8_t* tcp, std::size_t tcp_len) {
  std::uint32_t acc = 0;
  acc = sum16(src.ip.bytes().data(), src.ip.size(), acc);
  acc = sum16(dst.ip.bytes().data(), dst.ip.size(), acc);
  acc += kProtoTcp;
  acc += static_cast<std::uint32_t>(tcp_len);
  acc = sum16(tcp, tcp_len, acc);
  return static_cast<std::uint16_t>(~fold(acc));
}

}  // namespace

std::optional<TcpSegment> parse_tcp(Bytes p) {
  auto ip = parse_ip(p);
  if (!ip || ip->protocol != kProtoTcp) return std::nullopt;
  TcpSegment s;
  s.source.ip = ip->addresses.source;
  s.destination.ip = ip->addresses.destination;
  s.tcp_offset = ip->transport_offset;
  const std::size_t end = ip->end;
  if (end < s.tcp_offset + kTcpHeader) return std::nullopt;
  const std::uint8_t* t = &p[s.tcp_offset];
  const std::size_t data_offset = static_cast<std::size_t>(t[12] >> 4) * 4;
  if (data_offset < kTcpHeader || s.tcp_offset + data_offset > end) return std::nullopt;
  s.source.port = load16(t);
  s.destination.port = load16(t + 2);
  s.sequence = load32(t + 4);
  s.acknowledgment = load32(t + 8);
  s.flags = t[13];
  s.payload_size = end - s.tcp_offset - data_offset;
  return s;
}

void rewrite_tcp(MutableBytes p, TcpSegment& s, const SocketAddress& source,
                 const SocketAddress& destination, TcpChecksumField field) {
  const bool v4 = s.source.ip.is_v4();
  ChecksumDelta ip;
  ChecksumDelta tcp;
  std::uint8_t* t = &p[s.tcp_offset];
  replace_address(&p[v4 ? 12 : 8], source.ip, ip, tcp);
  replace_address(&p[v4 ? 16 : 24], destination.ip, ip, tcp);
  std::array<std::uint8_t, 4> ports;
  store16(ports.data(), source.port);
  store16(ports.data() + 2, destination.port);
  if (v4) ip.apply(&p[10]);
  if (field == TcpChecksumField::kPseudoHeaderSum) {
    // The seed covers the pseudo-header; the ports are in the part the
    // device sums when it completes the checksum.
    tcp.apply_to_sum(t + 16);
  } else {
    tcp.replace(t, ports.data(), 4);
    tcp.apply(t + 16);
  }
  std::memcpy(t, ports.data(), 4);
  s.source = source;
  s.destination = destination;
}

std::size_t make_rst(const TcpSegment& s, MutableBytes out) {
  if (s.has(tcp_flag::kRst)) return 0;
  const bool v4 = s.source.ip.is_v4();
  const std::size_t ip_len = v4 ? kIpv4HeaderSize : kIpv6HeaderSize;
  const std::size_t total = ip_len + kTcpHeader;
  if (out.size() < total) return 0;
  std::memset(out.data(), 0, total);
  std::uint8_t* q = out.data();
  const SocketAddress& src = s.destination;
  const SocketAddress& dst = s.source;
  if (v4) {
    q[0] = 0x45;
    store16(q + 2, static_cast<std::uint16_t>(total));
    store16(q + 6, 0x4000);  // don't fragment
    q[8] = 64;
    q[9] = kProtoTcp;
    std::memcpy(q + 12, src.ip.bytes().data(), 4);
    std::memcpy(q + 16, dst.ip.bytes().data(), 4);
    store16(q + 10, static_cast<std::uint16_t>(~fold(sum16(q, kIpv4HeaderSize))));
  } else {
    q[0] = 0x60;
    store16(q + 4, kTcpHeader);
    q[6] = kProtoTcp;
    q[7] = 64;
    std::memcpy(q + 8, src.ip.bytes().data(), 16);
    std::memcpy(q + 24, dst.ip.bytes().data(), 16);
  }
  std::uint8_t* t = q + ip_len;
  store16(t, src.port);
  store16(t + 2, dst.port);
  if (s.has(tcp_flag::kAck)) {
    store32(t + 4, s.acknowledgment);
    t[13] = tcp_flag::kRst;
  } else {
    std::uint32_t len = static_cast<std::uint32_t>(s.payload_size);
    if (s.has(tcp_flag::kSyn)) ++len;
    if (s.has(tcp_flag::kFin)) ++len;
    store32(t + 8, s.sequence + len);
    t[13] = tcp_flag::kRst | tcp_flag::kAck;
  }
  t[12] = 5 << 4;
  store16(t + 16, pseudo_checksum(src, dst, t, kTcpHeader));
  return total;
}

bool tcp_checksums_ok(Bytes p) {
  auto s = parse_tcp(p);
  if (!s) return false;
  if (s->source.ip.is_v4() && fold(sum16(p.data(), s->tcp_offset)) != 0xFFFF) return false;
  const std::size_t tcp_len = p.size() - s->tcp_offset;
  std::uint32_t acc = 0;
  acc = sum16(s->source.ip.bytes().data(), s->source.ip.size(), acc);
  acc = sum16(s->destination.ip.bytes().data(), s->destination.ip.size(), acc);
  acc += kProtoTcp;
  acc += static_cast<std::uint32_t>(tcp_len);
  acc = sum16(p.data() + s->tcp_offset, tcp_len, acc);
  return fold(acc) == 0xFFFF;
}

}  // namespace buckwild::inner

#include "core/offload/gro_coalesce.h"

#include <cstring>
#include <optional>

#include "core/common/byte_order.h"

namespace buckwild::offload {
namespace {

constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kTcpPsh = 0x08;
constexpr std::uint8_t kTcpAck = 0x10;

// The pseudo-header sum of a TCP segment of `tcp_len` bytes.
std::uint32_t pseudo_sum(Bytes p, bool ipv6, std::size_t tcp_len) {
  std::uint32_t acc = ipv6 ? checksum_add(0, p.subspan(8, 32)) : checksum_add(0, p.subspan(12, 8));
  return acc + kProtoTcp + static_cast<std::uint32_t>(tcp_len >> 16) +
         static_cast<std::uint32_t>(tcp_len & 0xFFFF);
}

// A whole TCP segment with checksums that verify: what may be coalesced.
struct Segment {
  bool ipv6 = false;
  std::size_t ip_len = 0;
  std::size_t tcp_len = 0;  // TCP header
  std::size_t payload = 0;
  std::uint32_t seq = 0;
  std::uint8_t flags = 0;
};

std::optional<Segment> parse(Bytes p) {
  Segment s;
  if (p.empty()) return std::nullopt;
  if (p[0] >> 4 == 4) {
    if (p.size() < 20) return std::nullopt;
    s.ip_len = std::size_t{p[0] & 0x0Fu} * 4;
    if (s.ip_len < 20 || s.ip_len > p.size() || load16(&p[2]) != p.size() ||
        (load16(&p[6]) & 0x3FFF) != 0 || p[9] != kProtoTcp) {
      return std::nullopt;
    }
    if (checksum_fold(checksum_add(0, p.first(s.ip_len))) != 0xFFFF) return std::nullopt;
  } else if (p[0] >> 4 == 6) {
    if (p.size() < 40 || load16(&p[4]) + std::size_t{40} != p.size() || p[6] != kProtoTcp) {
      return std::nullopt;
    }
    s.ipv6 = true;
    s.ip_len = 40;
  } else {
    return std::nullopt;
  }
  if (s.ip_len + 20 > p.size()) return std::nullopt;
  const std::uint8_t* t = p.data() + s.ip_len;
  s.tcp_len = std::size_t{static_cast<unsigned>(t[12] >> 4)} * 4;
  if (s.tcp_len < 20 || s.ip_len + s.tcp_len > p.size()) return std::nullopt;
  const std::size_t segment_len = p.size() - s.ip_len;
  if (checksum_fold(pseudo_sum(p, s.ipv6, segment_len) +
                    checksum_add(0, p.subspan(s.ip_len))) != 0xFFFF) {
    return std::nullopt;
  }
  s.payload = segment_len - s.tcp_len;
  s.seq = load32(t + 4);
  s.flags = t[13];
  return s;
}

bool same(const std::uint8_t* a, const std::uint8_t* b, std::size_t from, std::size_t to) {
  return std::memcmp(a + from, b + from, to - from) == 0;
}

}  // namespace

TcpCoalescer::TcpCoalescer() : buf_(kMaxSuperPacket) {}

bool TcpCoalescer::start(Bytes packet) {
  if (packet.size() > kMaxSuperPacket) return false;
  if (!packet.empty()) std::memcpy(buf_.data(), packet.data(), packet.size());  // empty: data() may be null
  len_ = packet.size();
  count_ = 1;
  open_ = false;
  const auto s = parse(packet);
  // Only ACK, or ACK|PSH (which ends the run at once).
  if (!s || s->payload == 0 || (s->flags & ~kTcpPsh) != kTcpAck) return true;
  open_ = (s->flags & kTcpPsh) == 0;
  ipv6_ = s->ipv6;
  ip_len_ = s->ip_len;
  header_len_ = s->ip_len + s->tcp_len;
  gso_size_ = s->payload;
  last_payload_ = s->payload;
  next_seq_ = s->seq + static_cast<std::uint32_t>(s->payload);
  return true;
}

bool TcpCoalescer::append(Bytes packet) {
  if (!open_ || last_payload_ != gso_size_) return false;
  const auto s = parse(packet);
  if (!s || s->ipv6 != ipv6_ || s->ip_len + s->tcp_len != header_len_ || s->ip_len != ip_len_)
    return false;
  if (s->payload == 0 || s->payload > gso_size_ || s->seq != next_seq_ ||
      len_ + s->payload > kMaxSuperPacket) {
    return false;
  }
  const std::uint8_t* a = buf_.data();
  const std::uint8_t* b = packet.data();
  // IP: everything but the lengths, the IPv4 id and header checksum.
  const bool ip_same = ipv6_ ? same(a, b, 0, 4) && same(a, b, 6, 40)
                             : same(a, b, 0, 2) && same(a, b, 6, 10) && same(a, b, 12, ip_len_);
  if (!ip_same) return false;
  // TCP: ports, ack, data offset, window, options; flags but PSH.
  const std::size_t t = ip_len_;
  if (!same(a, b, t, t + 4) || !same(a, b, t + 8, t + 13) || !same(a, b, t + 14, t + 16) ||
      !same(a, b, t + 20, header_len_) ||
      static_cast<std::uint8_t>(b[t + 13] & ~kTcpPsh) != a[t + 13]) {
    return false;
  }
  std::memcpy(buf_.data() + len_, b + header_len_, s->payload);
  len_ += s->payload;
  ++count_;
  last_payload_ = s->payload;
  next_seq_ += static_cast<std::uint32_t>(s->payload);
  if ((b[t + 13] & kTcpPsh) != 0) {
    buf_[t + 13] = static_cast<std::uint8_t>(buf_[t + 13] | kTcpPsh);
    open_ = false;
  }
  return true;
}

Bytes TcpCoalescer::take(VnetHeader& header) {
  header = VnetHeader{};
  const std::size_t n = count_;
  count_ = 0;
  open_ = false;
  if (n <= 1) return Bytes(buf_.data(), n == 0 ? 0 : len_);
  std::uint8_t* p = buf_.data();
  if (ipv6_) {
    store16(p + 4, static_cast<std::uint16_t>(len_ - 40));
  } else {
    store16(p + 2, static_cast<std::uint16_t>(len_));
    store16(p + 10, 0);
    store16(p + 10, static_cast<std::uint16_t>(
                        ~checksum_fold(checksum_add(0, Bytes(p, ip_len_)))));
  }
  // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum and the
  // kernel (or the NIC) adds the segment's bytes.
  store16(p + ip_len_ + 16,
          checksum_fold(pseudo_sum(Bytes(p, len_), ipv6_, len_ - ip_len_)));
  header.flags = vnet_flag::kNeedsCsum;
  header.gso_type = ipv6_ ? gso_type::kTcpV6 : gso_type::kTcpV4;
  header.hdr_len = static_cast<std::uint16_t>(header_len_);
  header.gso_size = static_cast<std::uint16_t>(gso_size_);
  header.csum_start = static_cast<std::uint16_t>(ip_len_);
  header.csum_offset = 16;
  return Bytes(buf_.data(), len_);
}

}  // namespace buckwild::offload

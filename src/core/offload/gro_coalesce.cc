#include "core/offload/gro_coalesce.h"

#include <cstring>
#include <optional>

#include "core/common/byte_order.h"

namespace buckwild::offload {
namespace {

constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;
constexpr std::uint8_t kTcpPsh = 0x08;
constexpr std::uint8_t kTcpAck = 0x10;
constexpr std::size_t kUdpHeader = 8;

// The pseudo-header sum of a transport segment of `len` bytes.
std::uint32_t pseudo_sum(Bytes p, bool ipv6, std::uint8_t proto, std::size_t len) {
  std::uint32_t acc = ipv6 ? checksum_add(0, p.subspan(8, 32)) : checksum_add(0, p.subspan(12, 8));
  return acc + proto + static_cast<std::uint32_t>(len >> 16) + static_cast<std::uint32_t>(len & 0xFFFF);
}

// A whole TCP segment or UDP datagram with checksums that verify: what may be
// coalesced.
struct Packet {
  std::uint8_t proto = 0;
  bool ipv6 = false;
  std::size_t ip_len = 0;
  std::size_t transport_len = 0;  // TCP or UDP header
  std::size_t payload = 0;
  std::uint32_t seq = 0;  // TCP
  std::uint8_t flags = 0;  // TCP
};

std::optional<Packet> parse(Bytes p, bool udp) {
  Packet s;
  if (p.empty()) return std::nullopt;
  if (p[0] >> 4 == 4) {
    if (p.size() < 20) return std::nullopt;
    s.ip_len = std::size_t{p[0] & 0x0Fu} * 4;
    s.proto = p[9];
    if (s.ip_len < 20 || s.ip_len > p.size() || load16(&p[2]) != p.size() ||
        (load16(&p[6]) & 0x3FFF) != 0) {
      return std::nullopt;
    }
    if (checksum_fold(checksum_add(0, p.first(s.ip_len))) != 0xFFFF) return std::nullopt;
  } else if (p[0] >> 4 == 6) {
    if (p.size() < 40 || load16(&p[4]) + std::size_t{40} != p.size()) return std::nullopt;
    s.ipv6 = true;
    s.ip_len = 40;
    s.proto = p[6];
  } else {
    return std::nullopt;
  }
  if (s.proto != kProtoTcp && !(udp && s.proto == kProtoUdp)) return std::nullopt;
  const std::uint8_t* t = p.data() + s.ip_len;
  const std::size_t segment_len = p.size() - s.ip_len;
  if (s.proto == kProtoTcp) {
    if (segment_len < 20) return std::nullopt;
    s.transport_len = std::size_t{static_cast<unsigned>(t[12] >> 4)} * 4;
    if (s.transport_len < 20 || s.transport_len > segment_len) return std::nullopt;
    s.seq = load32(t + 4);
    s.flags = t[13];
  } else {
    // A UDP checksum of 0 (IPv4: none sent) is not one the kernel would
    // compute for a coalesced run: such a datagram is written as it came.
    if (segment_len < kUdpHeader || load16(t + 4) != segment_len || load16(t + 6) == 0) {
      return std::nullopt;
    }
    s.transport_len = kUdpHeader;
  }
  if (checksum_fold(pseudo_sum(p, s.ipv6, s.proto, segment_len) +
                    checksum_add(0, p.subspan(s.ip_len))) != 0xFFFF) {
    return std::nullopt;
  }
  s.payload = segment_len - s.transport_len;
  return s;
}

bool same(const std::uint8_t* a, const std::uint8_t* b, std::size_t from, std::size_t to) {
  return std::memcmp(a + from, b + from, to - from) == 0;
}

}  // namespace

GroCoalescer::GroCoalescer(bool udp) : buf_(kMaxSuperPacket), udp_(udp) {}

bool GroCoalescer::start(Bytes packet) {
  if (packet.size() > kMaxSuperPacket) return false;
  if (!packet.empty()) std::memcpy(buf_.data(), packet.data(), packet.size());  // empty: data() may be null
  len_ = packet.size();
  count_ = 1;
  open_ = false;
  proto_ = 0;
  const auto s = parse(packet, udp_);
  if (!s || s->payload == 0) return true;
  if (s->proto == kProtoTcp) {
    // Only ACK, or ACK|PSH (which ends the run at once).
    if ((s->flags & ~kTcpPsh) != kTcpAck) return true;
    open_ = (s->flags & kTcpPsh) == 0;
    next_seq_ = s->seq + static_cast<std::uint32_t>(s->payload);
  } else {
    open_ = true;
  }
  proto_ = s->proto;
  ipv6_ = s->ipv6;
  ip_len_ = s->ip_len;
  header_len_ = s->ip_len + s->transport_len;
  gso_size_ = s->payload;
  last_payload_ = s->payload;
  return true;
}

bool GroCoalescer::append(Bytes packet) {
  if (!open_ || last_payload_ != gso_size_) return false;
  if (proto_ == kProtoUdp && count_ >= kMaxUdpRun) return false;
  const auto s = parse(packet, udp_);
  if (!s || s->proto != proto_ || s->ipv6 != ipv6_ || s->ip_len != ip_len_ ||
      s->ip_len + s->transport_len != header_len_) {
    return false;
  }
  if (s->payload == 0 || s->payload > gso_size_ || len_ + s->payload > kMaxSuperPacket) return false;
  if (proto_ == kProtoTcp && s->seq != next_seq_) return false;
  const std::uint8_t* a = buf_.data();
  const std::uint8_t* b = packet.data();
  // IP: everything but the lengths, the IPv4 id and header checksum.
  const bool ip_same = ipv6_ ? same(a, b, 0, 4) && same(a, b, 6, 40)
                             : same(a, b, 0, 2) && same(a, b, 6, 10) && same(a, b, 12, ip_len_);
  if (!ip_same) return false;
  const std::size_t t = ip_len_;
  if (!same(a, b, t, t + 4)) return false;  // the ports
  // TCP: ack, data offset, window, options; flags but PSH.
  if (proto_ == kProtoTcp &&
      (!same(a, b, t + 8, t + 13) || !same(a, b, t + 14, t + 16) || !same(a, b, t + 20, header_len_) ||
       static_cast<std::uint8_t>(b[t + 13] & ~kTcpPsh) != a[t + 13])) {
    return false;
  }
  std::memcpy(buf_.data() + len_, b + header_len_, s->payload);
  len_ += s->payload;
  ++count_;
  last_payload_ = s->payload;
  if (proto_ == kProtoTcp) {
    next_seq_ += static_cast<std::uint32_t>(s->payload);
    if ((b[t + 13] & kTcpPsh) != 0) {
      buf_[t + 13] = static_cast<std::uint8_t>(buf_[t + 13] | kTcpPsh);
      open_ = false;
    }
  }
  return true;
}

Bytes GroCoalescer::take(VnetHeader& header) {
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
  const bool udp = proto_ == kProtoUdp;
  const std::size_t segment_len = len_ - ip_len_;
  // The kernel's USO rewrites each datagram's length from this one's, and its
  // checksum seed by the difference (__udp_gso_segment).
  if (udp) store16(p + ip_len_ + 4, static_cast<std::uint16_t>(segment_len));
  // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum and the
  // kernel (or the NIC) adds the segment's bytes.
  const std::size_t csum_offset = udp ? 6 : 16;
  store16(p + ip_len_ + csum_offset,
          checksum_fold(pseudo_sum(Bytes(p, len_), ipv6_, proto_, segment_len)));
  header.flags = vnet_flag::kNeedsCsum;
  header.gso_type = udp ? gso_type::kUdpL4 : ipv6_ ? gso_type::kTcpV6 : gso_type::kTcpV4;
  header.hdr_len = static_cast<std::uint16_t>(header_len_);
  header.gso_size = static_cast<std::uint16_t>(gso_size_);
  header.csum_start = static_cast<std::uint16_t>(ip_len_);
  header.csum_offset = static_cast<std::uint16_t>(csum_offset);
  return Bytes(buf_.data(), len_);
}

}  // namespace buckwild::offload

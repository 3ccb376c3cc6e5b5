#include "core/offload/gso_split.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "core/common/byte_order.h"

namespace buckwild::offload {
namespace {

constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;
constexpr std::size_t kIpv4MinHeader = 20;
constexpr std::size_t kIpv6Header = 40;
constexpr std::size_t kTcpMinHeader = 20;
constexpr std::size_t kUdpHeader = 8;
constexpr std::size_t kTcpChecksumAt = 16;
constexpr std::size_t kUdpChecksumAt = 6;
// TCP flags byte (offset 13): FIN 0x01, PSH 0x08, CWR 0x80.
constexpr std::uint8_t kTcpFin = 0x01;
constexpr std::uint8_t kTcpPsh = 0x08;
constexpr std::uint8_t kTcpCwr = 0x80;

std::uint16_t load_le16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
void store_le16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
}

SplitResult refuse(SplitRefusal why) { return SplitResult{std::nullopt, why}; }

// The transport checksum of a finished segment: pseudo-header (addresses,
// protocol, transport length) plus the transport header and payload, with the
// checksum field zeroed first.
void fill_transport_checksum(std::uint8_t* seg, std::size_t size, bool ipv6,
                             std::size_t transport_offset, std::uint8_t protocol,
                             std::size_t checksum_at) {
  std::uint8_t* t = seg + transport_offset;
  const std::size_t transport_len = size - transport_offset;
  store16(t + checksum_at, 0);
  std::uint32_t acc = 0;
  if (ipv6) {
    acc = checksum_add(acc, Bytes(seg + 8, 32));
    acc += static_cast<std::uint32_t>((transport_len >> 16) + (transport_len & 0xFFFF));
  } else {
    acc = checksum_add(acc, Bytes(seg + 12, 8));
    acc += static_cast<std::uint32_t>(transport_len);
  }
  acc += protocol;
  acc = checksum_add(acc, Bytes(t, transport_len));
  std::uint16_t sum = static_cast<std::uint16_t>(~checksum_fold(acc));
  if (sum == 0 && protocol == kProtoUdp) sum = 0xFFFF;  // 0 means "no checksum" in UDP
  store16(t + checksum_at, sum);
}

}  // namespace

std::optional<VnetHeader> read_vnet_header(Bytes in) {
  if (in.size() < kVnetHeaderSize) return std::nullopt;
  VnetHeader h;
  h.flags = in[0];
  h.gso_type = in[1];
  h.hdr_len = load_le16(&in[2]);
  h.gso_size = load_le16(&in[4]);
  h.csum_start = load_le16(&in[6]);
  h.csum_offset = load_le16(&in[8]);
  return h;
}

void write_vnet_header(const VnetHeader& h, MutableBytes out) {
  out[0] = h.flags;
  out[1] = h.gso_type;
  store_le16(&out[2], h.hdr_len);
  store_le16(&out[4], h.gso_size);
  store_le16(&out[6], h.csum_start);
  store_le16(&out[8], h.csum_offset);
}

std::uint32_t checksum_add(std::uint32_t acc, Bytes data) {
  // The one's-complement sum does not depend on byte order but for a swap of
  // the result (RFC 1071 §2(B)), and words of any even width fold to the same
  // 16 bits. So the data is summed as native 64-bit words, each carry out of
  // the top added back at once, and swapped once at the end: a quarter of the
  // additions of a 16-bit big-endian loop and none of its byte swaps.
  const std::uint8_t* p = data.data();
  std::size_t n = data.size();
  std::uint64_t a = 0;
  std::uint64_t b = 0;  // two chains: the adds of one do not wait for the other
  const auto add = [](std::uint64_t& sum, const std::uint8_t* at) {
    std::uint64_t w;
    std::memcpy(&w, at, sizeof w);
    sum += w;
    sum += sum < w ? 1 : 0;
  };
  for (; n >= 32; p += 32, n -= 32) {
    add(a, p);
    add(b, p + 8);
    add(a, p + 16);
    add(b, p + 24);
  }
  for (; n >= 8; p += 8, n -= 8) add(a, p);
  // The tail, up to 7 bytes, into a zeroed word at the same place within it:
  // a lone last byte is then the high byte of its 16-bit word, as it must be.
  if (n > 0) {
    std::uint8_t tail[8] = {};
    std::memcpy(tail, p, n);
    add(b, tail);
  }
  a += b;
  a += a < b ? 1 : 0;
  a = (a & 0xFFFFFFFF) + (a >> 32);
  a = (a & 0xFFFF) + (a >> 16);
  a = (a & 0xFFFF) + (a >> 16);
  a = (a & 0xFFFF) + (a >> 16);
  auto folded = static_cast<std::uint16_t>(a);
  if constexpr (std::endian::native == std::endian::little) folded = std::byteswap(folded);
  std::uint64_t sum = std::uint64_t{acc} + folded;
  sum = (sum & 0xFFFFFFFF) + (sum >> 32);
  return static_cast<std::uint32_t>(sum);
}

std::uint16_t checksum_fold(std::uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xFFFF) + (acc >> 16);
  return static_cast<std::uint16_t>(acc);
}

SplitResult plan_split(const VnetHeader& vnet, Bytes p) {
  SplitPlan plan;
  plan.vnet = vnet;
  plan.kind = static_cast<std::uint8_t>(vnet.gso_type & ~gso_type::kEcn);
  plan.max_size = p.size();
  if (plan.kind == gso_type::kNone) {
    if ((vnet.flags & vnet_flag::kNeedsCsum) != 0) {
      // The checksum field and at least the field itself inside the packet.
      const std::size_t start = vnet.csum_start;
      const std::size_t at = start + vnet.csum_offset;
      if (start >= p.size() || at + 2 > p.size()) return refuse(SplitRefusal::kBadChecksumSpan);
    }
    return SplitResult{plan, {}};
  }
  if (plan.kind != gso_type::kTcpV4 && plan.kind != gso_type::kTcpV6 &&
      plan.kind != gso_type::kUdpL4) {
    return refuse(SplitRefusal::kUnknownGsoType);
  }
  if (vnet.gso_size == 0) return refuse(SplitRefusal::kZeroGsoSize);
  if (p.empty()) return refuse(SplitRefusal::kBadIpHeader);
  const unsigned version = p[0] >> 4;
  std::uint8_t protocol = 0;
  if (version == 4) {
    if (p.size() < kIpv4MinHeader) return refuse(SplitRefusal::kBadIpHeader);
    const std::size_t ihl = std::size_t{p[0] & 0x0Fu} * 4;
    const std::uint16_t frag = load16(&p[6]);
    if (ihl < kIpv4MinHeader || ihl > p.size() || load16(&p[2]) != p.size() ||
        (frag & 0x3FFF) != 0) {  // MF set or an offset: a fragment
      return refuse(SplitRefusal::kBadIpHeader);
    }
    plan.transport_offset = ihl;
    protocol = p[9];
  } else if (version == 6) {
    if (p.size() < kIpv6Header || load16(&p[4]) + kIpv6Header != p.size()) {
      return refuse(SplitRefusal::kBadIpHeader);
    }
    plan.ipv6 = true;
    plan.transport_offset = kIpv6Header;
    protocol = p[6];  // extension headers are refused as "wrong protocol"
  } else {
    return refuse(SplitRefusal::kBadIpHeader);
  }
  const bool tcp = plan.kind != gso_type::kUdpL4;
  if ((plan.kind == gso_type::kTcpV4 && plan.ipv6) ||
      (plan.kind == gso_type::kTcpV6 && !plan.ipv6)) {
    return refuse(SplitRefusal::kBadIpHeader);
  }
  if (protocol != (tcp ? kProtoTcp : kProtoUdp)) return refuse(SplitRefusal::kWrongProtocol);
  const std::size_t t = plan.transport_offset;
  std::size_t transport_header = kUdpHeader;
  if (tcp) {
    if (t + kTcpMinHeader > p.size()) return refuse(SplitRefusal::kBadTransport);
    transport_header = std::size_t{static_cast<unsigned>(p[t + 12] >> 4)} * 4;
    if (transport_header < kTcpMinHeader) return refuse(SplitRefusal::kBadTransport);
  }
  if (t + transport_header > p.size()) return refuse(SplitRefusal::kBadTransport);
  if ((vnet.flags & vnet_flag::kNeedsCsum) != 0 &&
      (vnet.csum_start != t || vnet.csum_offset != (tcp ? kTcpChecksumAt : kUdpChecksumAt))) {
    return refuse(SplitRefusal::kBadTransport);
  }
  plan.header_len = t + transport_header;
  plan.payload = p.size() - plan.header_len;
  plan.count = plan.payload == 0 ? 1 : (plan.payload + vnet.gso_size - 1) / vnet.gso_size;
  plan.max_size = plan.header_len + std::min<std::size_t>(plan.payload, vnet.gso_size);
  return SplitResult{plan, {}};
}

std::size_t write_segment(const SplitPlan& plan, Bytes p, std::size_t index, MutableBytes out) {
  std::uint8_t* s = out.data();
  if (!plan.is_gso()) {
    if (!p.empty()) std::memcpy(s, p.data(), p.size());  // empty: data() may be null
    if ((plan.vnet.flags & vnet_flag::kNeedsCsum) != 0) {
      const std::size_t start = plan.vnet.csum_start;
      std::uint8_t* field = s + start + plan.vnet.csum_offset;
      const std::uint16_t sum = static_cast<std::uint16_t>(
          ~checksum_fold(checksum_add(0, Bytes(s + start, p.size() - start))));
      store16(field, sum == 0 ? 0xFFFF : sum);  // as the kernel's skb_checksum_help
    }
    return p.size();
  }
  const std::size_t gso = plan.vnet.gso_size;
  const std::size_t offset = index * gso;
  const std::size_t len = std::min(gso, plan.payload - std::min(offset, plan.payload));
  const std::size_t size = plan.header_len + len;
  const bool last = index + 1 == plan.count;
  std::memcpy(s, p.data(), plan.header_len);
  std::memcpy(s + plan.header_len, p.data() + plan.header_len + offset, len);
  if (plan.ipv6) {
    store16(s + 4, static_cast<std::uint16_t>(size - kIpv6Header));
  } else {
    store16(s + 2, static_cast<std::uint16_t>(size));
    store16(s + 4, static_cast<std::uint16_t>(load16(s + 4) + index));
    store16(s + 10, 0);
    store16(s + 10, static_cast<std::uint16_t>(
                        ~checksum_fold(checksum_add(0, Bytes(s, plan.transport_offset)))));
  }
  std::uint8_t* t = s + plan.transport_offset;
  if (plan.kind == gso_type::kUdpL4) {
    store16(t + 4, static_cast<std::uint16_t>(size - plan.transport_offset));
    fill_transport_checksum(s, size, plan.ipv6, plan.transport_offset, kProtoUdp, kUdpChecksumAt);
  } else {
    store32(t + 4, static_cast<std::uint32_t>(load32(t + 4) + offset));
    if (!last) t[13] = static_cast<std::uint8_t>(t[13] & ~(kTcpFin | kTcpPsh));
    if (index > 0) t[13] = static_cast<std::uint8_t>(t[13] & ~kTcpCwr);
    fill_transport_checksum(s, size, plan.ipv6, plan.transport_offset, kProtoTcp, kTcpChecksumAt);
  }
  return size;
}

}  // namespace buckwild::offload

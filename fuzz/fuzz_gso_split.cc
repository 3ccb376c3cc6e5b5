// The TUN offload splitter (core/offload/gso_split): the input is what a TUN
// read with IFF_VNET_HDR returns, a virtio_net_hdr and an IP packet. Whatever
// plan_split accepts must split into segments that fit the planned size, whose
// payloads put back together are the original's, and whose TCP segments parse
// with correct checksums (core/inner's independent checker).
//
// A TCP GSO packet is also rewritten whole, as stream mode's near leg does
// (inner::rewrite_tcp on the super-packet, the checksum field read as what
// the vnet header says it holds): the split must still be planned alike,
// and a checksum that completed right before the rewrite completes right
// after it.
#include <array>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/inner/tcp_segment.h"
#include "core/offload/gso_split.h"

using namespace buckwild;

namespace {

// Completes the TCP checksum of `p` as the device would for NEEDS_CSUM (the
// sum from csum_start on, seed included, complemented) when `partial`, and
// says whether the packet's checksums then verify.
bool completes_right(std::vector<std::uint8_t> p, const offload::VnetHeader& h, bool partial) {
  if (partial) {
    const std::size_t start = h.csum_start;
    const std::uint16_t sum = static_cast<std::uint16_t>(
        ~offload::checksum_fold(offload::checksum_add(0, Bytes(p.data() + start, p.size() - start))));
    p[start + h.csum_offset] = static_cast<std::uint8_t>(sum >> 8);
    p[start + h.csum_offset + 1] = static_cast<std::uint8_t>(sum);
  }
  return inner::tcp_checksums_ok(p);
}

void rewrite_whole(const offload::SplitPlan& plan, Bytes packet, const std::uint8_t* data) {
  std::vector<std::uint8_t> p(packet.begin(), packet.end());
  auto s = inner::parse_tcp(p);
  if (!s) std::abort();  // plan_split accepted it as TCP
  const bool partial = (plan.vnet.flags & offload::vnet_flag::kNeedsCsum) != 0;
  const bool was_right = completes_right(p, plan.vnet, partial);
  std::array<std::uint8_t, 16> a{};
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<std::uint8_t>(data[i % offload::kVnetHeaderSize] ^ (0x5A + i));
  const bool v4 = s->source.ip.is_v4();
  const SocketAddress from{v4 ? IpAddress::v4({a[0], a[1], a[2], a[3]}) : IpAddress::v6(a),
                           static_cast<std::uint16_t>(a[8] << 8 | a[9])};
  std::array<std::uint8_t, 16> b = a;
  b[15] ^= 0xFF;
  const SocketAddress to{v4 ? IpAddress::v4({a[4], a[5], a[6], a[7]}) : IpAddress::v6(b),
                         static_cast<std::uint16_t>(a[10] << 8 | a[11])};
  inner::rewrite_tcp(p, *s, from, to,
                     partial ? inner::TcpChecksumField::kPseudoHeaderSum
                             : inner::TcpChecksumField::kComplete);
  auto again = inner::parse_tcp(p);
  if (!again || again->source != from || again->destination != to) std::abort();
  if (was_right && !completes_right(p, plan.vnet, partial)) std::abort();
  offload::SplitResult r = offload::plan_split(plan.vnet, p);
  if (!r.plan || r.plan->count != plan.count || r.plan->max_size != plan.max_size) std::abort();
  if (std::memcmp(p.data() + plan.header_len, packet.data() + plan.header_len, plan.payload) != 0)
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes input(data, size);
  auto header = offload::read_vnet_header(input);
  if (!header) return 0;
  const Bytes packet = input.subspan(offload::kVnetHeaderSize);
  offload::SplitResult r = offload::plan_split(*header, packet);
  if (!r.plan) return 0;
  const offload::SplitPlan& plan = *r.plan;
  if (plan.count == 0 || plan.max_size > packet.size()) std::abort();
  std::vector<std::uint8_t> joined;
  std::vector<std::uint8_t> seg(plan.max_size);
  for (std::size_t i = 0; i < plan.count; ++i) {
    const std::size_t n = offload::write_segment(plan, packet, i, seg);
    if (n > plan.max_size) std::abort();
    if (!plan.is_gso()) {
      if (n != packet.size()) std::abort();
      continue;
    }
    if (n < plan.header_len) std::abort();
    joined.insert(joined.end(), seg.begin() + static_cast<std::ptrdiff_t>(plan.header_len),
                  seg.begin() + static_cast<std::ptrdiff_t>(n));
    if (plan.kind != offload::gso_type::kUdpL4) {
      const Bytes s(seg.data(), n);
      auto tcp = inner::parse_tcp(s);
      if (!tcp || !inner::tcp_checksums_ok(s)) std::abort();
      if (tcp->payload_size != n - plan.header_len) std::abort();
    }
  }
  if (plan.kind == offload::gso_type::kTcpV4 || plan.kind == offload::gso_type::kTcpV6)
    rewrite_whole(plan, packet, data);
  if (plan.is_gso() &&
      (joined.size() != plan.payload ||
       std::memcmp(joined.data(), packet.data() + plan.header_len, plan.payload) != 0)) {
    std::abort();
  }
  return 0;
}

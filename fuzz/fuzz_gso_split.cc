// The TUN offload splitter (core/offload/gso_split): the input is what a TUN
// read with IFF_VNET_HDR returns, a virtio_net_hdr and an IP packet. Whatever
// plan_split accepts must split into segments that fit the planned size, whose
// payloads put back together are the original's, and whose TCP segments parse
// with correct checksums (core/inner's independent checker).
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/inner/tcp_segment.h"
#include "core/offload/gso_split.h"

using namespace buckwild;

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
  if (plan.is_gso() &&
      (joined.size() != plan.payload ||
       std::memcmp(joined.data(), packet.data() + plan.header_len, plan.payload) != 0)) {
    std::abort();
  }
  return 0;
}

// The TUN offload coalescer (core/offload/gro_coalesce): the input is a run of
// packets, each prefixed by a 2-byte big-endian length, offered one after the
// other as the tunnel offers decrypted packets, with UDP runs allowed (a
// device with USO). Every run it hands out must be what the kernel accepts
// and splits back into the packets it took: a single packet unchanged, or a
// super-packet whose split (gso_split) gives as many segments, each a TCP
// segment with correct checksums carrying the same payload bytes in order,
// or for UDP exactly the datagrams that went in.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/inner/tcp_segment.h"
#include "core/offload/gro_coalesce.h"
#include "core/offload/gso_split.h"

using namespace buckwild;

namespace {

offload::GroCoalescer& coalescer() {
  static offload::GroCoalescer c(true);  // its 64 KiB buffer, once
  return c;
}

void check(offload::GroCoalescer& c, const std::vector<std::vector<std::uint8_t>>& taken) {
  const std::size_t count = c.count();
  offload::VnetHeader h;
  const Bytes out = c.take(h);
  if (count != taken.size()) std::abort();
  if (count == 1) {
    if (h.gso_type != offload::gso_type::kNone || out.size() != taken[0].size() ||
        std::memcmp(out.data(), taken[0].data(), out.size()) != 0) {
      std::abort();
    }
    return;
  }
  offload::SplitResult r = offload::plan_split(h, out);
  if (!r.plan || r.plan->count != count) std::abort();
  std::vector<std::uint8_t> seg(r.plan->max_size);
  if (h.gso_type == offload::gso_type::kUdpL4) {
    // UDP: the datagrams themselves (the ids count on from the first's, as
    // the kernel's USO makes them: only equal when they did so already, so
    // compare all but the IPv4 id and header checksum).
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t n = offload::write_segment(*r.plan, out, i, seg);
      const auto& in = taken[i];
      if (n != in.size()) std::abort();
      const bool v4 = (in[0] >> 4) == 4;
      for (std::size_t b = 0; b < n; ++b) {
        if (v4 && (b == 4 || b == 5 || b == 10 || b == 11)) continue;
        if (seg[b] != in[b]) std::abort();
      }
    }
    return;
  }
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t n = offload::write_segment(*r.plan, out, i, seg);
    const Bytes s(seg.data(), n);
    auto tcp = inner::parse_tcp(s);
    auto original = inner::parse_tcp(taken[i]);
    if (!tcp || !original || !inner::tcp_checksums_ok(s) ||
        tcp->sequence != original->sequence || tcp->payload_size != original->payload_size ||
        std::memcmp(s.data() + n - tcp->payload_size,
                    taken[i].data() + taken[i].size() - original->payload_size,
                    tcp->payload_size) != 0) {
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  offload::GroCoalescer& c = coalescer();
  offload::VnetHeader ignored;
  c.take(ignored);
  std::vector<std::vector<std::uint8_t>> taken;
  std::size_t at = 0;
  while (at + 2 <= size) {
    const std::size_t len = std::min<std::size_t>((data[at] << 8) | data[at + 1], size - at - 2);
    std::vector<std::uint8_t> packet(data + at + 2, data + at + 2 + len);
    at += 2 + len;
    if (!c.empty() && c.append(packet)) {
      taken.push_back(std::move(packet));
      continue;
    }
    if (!c.empty()) check(c, taken);
    taken.clear();
    if (c.start(packet)) taken.push_back(std::move(packet));
  }
  if (!c.empty()) check(c, taken);
  return 0;
}

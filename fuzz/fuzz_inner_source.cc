// The daemon's inner-IP handling of packets a peer sends through the tunnel:
// ip_addresses / parse_ip (core/inner) as the inbound DATAGRAM path and the
// outbound route use them, and the source check every inner packet from a
// peer passes (daemon/tunnel/source_check: allowed prefixes, an address
// claimed by a peer without an entry), compared with a reference model:
// prefix containment computed bit by bit, and the claim rule spelled out.
//
// Input: byte 0 the number of allowed prefixes (0..3), byte 1 of claimable
// ones (0..3), byte 2 of addresses already taken (0..3); each prefix is a
// family byte, 16 address bytes and a length byte; each taken address a
// family byte and 16 bytes. The rest is a list of inner packets, each a
// 2-byte length and its bytes.
#include <algorithm>
#include <array>
#include <cstdlib>
#include <optional>
#include <vector>

#include "fuzz_input.h"
#include "core/inner/ip_packet.h"
#include "daemon/tunnel/source_check.h"

using namespace buckwild;

namespace {

using buckwild::fuzz::Input;

IpAddress address(Input& in) {
  const bool v4 = (in.u8() & 1) == 0;
  std::array<std::uint8_t, 16> b{};
  for (auto& x : b) x = in.u8();
  if (v4) return IpAddress::v4({b[0], b[1], b[2], b[3]});
  return IpAddress::v6(b);
}

// Same family and the first `len` bits equal, bit by bit.
bool reference_contains(const IpAddress& net, unsigned len, const IpAddress& ip) {
  if (net.family() != ip.family()) return false;
  const auto a = net.bytes(), b = ip.bytes();
  for (unsigned i = 0; i < len; ++i) {
    const unsigned shift = 7 - i % 8;
    if (((a[i / 8] >> shift) & 1) != ((b[i / 8] >> shift) & 1)) return false;
  }
  return true;
}

bool any_contains(const std::vector<Cidr>& v, const IpAddress& ip) {
  for (const Cidr& c : v)
    if (reference_contains(c.address, c.prefix_len, ip)) return true;
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(data, size);
  const int n_allowed = in.u8() % 4, n_claimable = in.u8() % 4, n_taken = in.u8() % 4;
  std::vector<Cidr> allowed, claimable;
  std::vector<IpAddress> taken;
  for (int i = 0; i < n_allowed + n_claimable; ++i) {
    Cidr c;
    c.address = address(in);
    c.prefix_len = static_cast<std::uint8_t>(in.u8() % (c.address.bits() + 1));
    // Prefixes come from the configuration, parsed: a prefix parses back to itself.
    auto again = Cidr::parse(c.to_string());
    if (!again || *again != c) std::abort();
    (i < n_allowed ? allowed : claimable).push_back(c);
  }
  for (int i = 0; i < n_taken; ++i) taken.push_back(address(in));
  auto is_taken = [&](const IpAddress& ip) { return std::find(taken.begin(), taken.end(), ip) != taken.end(); };

  std::optional<IpAddress> claimed;
  for (int step = 0; step < 64 && !in.empty(); ++step) {
    const std::size_t len = static_cast<std::size_t>(in.u8() << 8 | in.u8());
    const Bytes b = in.bytes(len);
    // A copy of exactly the packet's size, so that ASan sees any read past it.
    const std::vector<std::uint8_t> packet(b.begin(), b.end());

    auto addresses = inner::ip_addresses(packet);
    const int version = packet.empty() ? 0 : packet[0] >> 4;
    const bool want = (version == 4 && packet.size() >= 20) || (version == 6 && packet.size() >= 40);
    if (addresses.has_value() != want) std::abort();
    auto header = inner::parse_ip(packet);
    if (header && (!addresses || header->addresses.source != addresses->source ||
                   header->addresses.destination != addresses->destination ||
                   header->end > packet.size() || header->transport_offset > header->end))
      std::abort();
    if (!addresses) continue;
    const IpAddress& source = addresses->source;
    if (source.bytes().size() != (version == 4 ? 4u : 16u) ||
        !std::equal(source.bytes().begin(), source.bytes().end(), packet.begin() + (version == 4 ? 12 : 8)))
      std::abort();

    const daemon::SourceVerdict got = daemon::check_source(allowed, claimed, claimable, source, is_taken);
    daemon::SourceVerdict want_verdict;
    if (any_contains(allowed, source)) {
      want_verdict = daemon::SourceVerdict::kAllowed;
    } else if (claimed) {
      want_verdict = *claimed == source ? daemon::SourceVerdict::kAllowed : daemon::SourceVerdict::kRefused;
    } else if (any_contains(claimable, source) && !is_taken(source)) {
      want_verdict = daemon::SourceVerdict::kClaim;
    } else {
      want_verdict = daemon::SourceVerdict::kRefused;
    }
    if (got != want_verdict) std::abort();
    if (got == daemon::SourceVerdict::kClaim) claimed = source;
  }
  return 0;
}

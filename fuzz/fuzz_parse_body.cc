// The body parser alone, for every packet type: the first byte picks the type
// (and flags), the rest is the body. Valid bodies must re-encode identically.
#include <algorithm>
#include <cstdlib>
#include <vector>

#include "core/wire/codec.h"

using namespace buckwild;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  wire::Header h;
  std::uint8_t type = static_cast<std::uint8_t>(wire::kFirstPacketType + data[0] % wire::kLastPacketType);
  h.type = static_cast<wire::PacketType>(type);
  h.flags = (data[0] & 0x80) ? wire::flags::kSyn : 0;
  Bytes body(data + 1, size - 1);
  auto parsed = wire::parse_body(h, body);
  if (!parsed) return 0;
  // As large as the body: the parser is not where a datagram's size is
  // bounded (decode_packet is), so a seed longer than any datagram parses.
  std::vector<std::uint8_t> out(std::max<std::size_t>(body.size(), wire::kMaxDatagramSize));
  auto n = wire::write_body(h, *parsed, out);
  if (!n || *n != body.size()) std::abort();
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (out[i] != body[i]) std::abort();
  }
  return 0;
}

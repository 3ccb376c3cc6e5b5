// Any byte string fed to the header and body parsers: no crash, and whatever
// parses re-encodes to the same bytes (the codec is a bijection on valid input).
#include <cstdlib>
#include <vector>

#include "core/wire/codec.h"

using namespace buckwild;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Bytes in(data, size);
  auto packet = wire::decode_packet(in);
  if (!packet) return 0;
  std::vector<std::uint8_t> out(wire::kMaxDatagramSize);
  auto n = wire::encode_packet(packet->header, packet->body, out);
  if (!n || *n != size) std::abort();
  // The tag bytes are not part of the codec: compare header and body only.
  for (std::size_t i = 0; i + wire::kTagSize < size; ++i) {
    if (out[i] != data[i]) std::abort();
  }
  return 0;
}

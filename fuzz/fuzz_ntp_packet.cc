// The NTP client's parser (core/ntp/ntp_packet): any datagram a server (or
// anyone able to send to our NTP socket) returns. Whatever check_response
// accepts must be a sample within its documented bounds.
#include <cstdlib>
#include <cstring>

#include "core/ntp/ntp_packet.h"

using namespace buckwild;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto p = ntp::decode(Bytes(data, size));
  if (!p) {
    if (size >= ntp::kPacketSize) std::abort();
    return 0;
  }
  // Our request's nonce and times from the input's tail, so the fuzzer can
  // reach the paths behind the origin check.
  std::uint64_t nonce = p->origin_ts;
  std::int64_t t1 = 1'796'515'200'000'000;
  if (size >= ntp::kPacketSize + 8) {
    std::uint64_t v = 0;
    std::memcpy(&v, data + ntp::kPacketSize, 8);
    t1 += static_cast<std::int64_t>(v % 4'000'000'000'000ull) - 2'000'000'000'000;
  }
  const std::int64_t t4 = t1 + (size % 4096) * 1000;
  const ntp::Verdict v = ntp::check_response(*p, nonce, t1, t4);
  if (const auto* s = std::get_if<ntp::Sample>(&v)) {
    if (s->delay_us < 0 || s->delay_us > ntp::kMaxRoundTripUs) std::abort();
    if (s->root_distance_us > ntp::kMaxRootDistanceUs) std::abort();
    if (s->stratum == 0 || s->stratum > ntp::kMaxStratum) std::abort();
  }
  return 0;
}

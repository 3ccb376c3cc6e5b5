// Arbitrary datagrams to a discovery responder, as DISCOVERY and as CONFIRM:
// nothing may crash, and whatever it answers must fit one 1232-byte datagram.
#include <cstdlib>
#include <memory>

#include "core/crypto/random.h"
#include "core/discovery/responder.h"

using namespace buckwild;

namespace {

// Unix time whose ms-of-day matches the seeds' header timestamp (14:30:25.123).
constexpr std::int64_t kNowUnix = 20'417ll * 86'400'000 + 52'225'123;

discovery::PskSet make_psks() {
  std::vector<discovery::Psk> v;
  for (std::uint32_t i = 0; i < 8; ++i) {
    crypto::DeterministicRandom rng(100 + i);
    v.push_back({"k" + std::to_string(i), crypto::SecretBytes::random(32, rng)});
  }
  return discovery::PskSet::create(std::move(v)).value();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static discovery::PskSet psks = make_psks();
  static crypto::DeterministicRandom rng(7);
  static discovery::Responder responder(psks, discovery::ResponderPolicy{},
                                        discovery::ResponderLimits{1e12, 1e12, 1e12, 64}, rng, 0);
  static TimePoint now = 0;
  now += 1000;
  const Endpoint from = Endpoint::ipv4(0x0AC80001, 40000);
  Bytes in(data, size);
  if (auto response = responder.consume_discovery(in, from, kNowUnix, now)) {
    if (response->size() > wire::kMaxDiscoveryDatagram) std::abort();
  }
  (void)responder.consume_confirm(in, from, kNowUnix, now);
  return 0;
}

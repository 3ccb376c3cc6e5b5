// Arbitrary datagrams as DISCOVERY_RESPONSE to an initiator that has just sent
// its DISCOVERY: nothing may crash; a refused response must leave it waiting.
#include <cstdlib>

#include "core/crypto/random.h"
#include "core/discovery/features.h"
#include "core/discovery/initiator.h"

using namespace buckwild;

namespace {

constexpr std::int64_t kNowUnix = 20'417ll * 86'400'000 + 52'225'123;

discovery::PskSet make_psks() {
  std::vector<discovery::Psk> v;
  for (std::uint32_t i = 0; i < 4; ++i) {
    crypto::DeterministicRandom rng(200 + i);
    v.push_back({"k" + std::to_string(i), crypto::SecretBytes::random(32, rng)});
  }
  return discovery::PskSet::create(std::move(v)).value();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static discovery::PskSet psks = make_psks();
  static crypto::DeterministicRandom rng(9);
  // A refused response changes nothing, so one started initiator serves every
  // input; it is restarted only if an input was accepted.
  static discovery::Initiator initiator(
      psks, discovery::feature::kChaCha20Poly1305 | discovery::feature::kForwardSecrecy, rng);
  if (initiator.state() != discovery::Initiator::State::kInitiated) initiator.start(kNowUnix, 0);
  auto outcome = initiator.consume_response(Bytes(data, size), kNowUnix, 1000);
  if (!outcome && initiator.state() != discovery::Initiator::State::kInitiated) std::abort();
  if (outcome && outcome->confirm.size() > wire::kMaxDiscoveryDatagram) std::abort();
  return 0;
}

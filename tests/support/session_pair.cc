#include "support/session_pair.h"

#include <array>
#include <cstdlib>

#include "core/crypto/random.h"
#include "core/discovery/features.h"
#include "core/discovery/initiator.h"
#include "core/discovery/responder.h"

namespace buckwild::testing {

SessionPair make_session_pair(std::int64_t unix_ms, TimePoint now, std::int64_t skew_ms,
                              const session::SessionConfig& config) {
  return make_session_pair(unix_ms, now, skew_ms, config, config);
}

SessionPair make_session_pair(std::int64_t unix_ms, TimePoint now, std::int64_t skew_ms,
                              const session::SessionConfig& config,
                              const session::SessionConfig& responder_config) {
  auto psk = [](std::uint64_t seed) {
    crypto::DeterministicRandom rng(seed);
    return discovery::Psk{"psk" + std::to_string(seed), crypto::SecretBytes::random(32, rng)};
  };
  std::vector<discovery::Psk> iv, rv;
  iv.push_back(psk(1));
  rv.push_back(psk(1));
  SessionPair p;
  p.initiator_psks = std::make_unique<discovery::PskSet>(discovery::PskSet::create(std::move(iv)).value());
  p.responder_psks = std::make_unique<discovery::PskSet>(discovery::PskSet::create(std::move(rv)).value());
  crypto::DeterministicRandom irng(11), rrng(12);
  using namespace discovery;
  Initiator init(*p.initiator_psks,
                 feature::kChaCha20Poly1305 | feature::kForwardSecrecy | feature::kDatagram, irng);
  Responder resp(*p.responder_psks, ResponderPolicy{}, ResponderLimits{}, rrng, now);
  const Endpoint from = Endpoint::ipv4(0x0AC80001, 1025);
  auto response = resp.consume_discovery(init.start(unix_ms, now), from, unix_ms + skew_ms, now);
  if (!response) std::abort();
  auto outcome = init.consume_response(*response, unix_ms, now);
  if (!outcome) std::abort();
  auto est = resp.consume_confirm(outcome->confirm, from, unix_ms + skew_ms, now);
  if (!est) std::abort();
  p.initiator = std::make_unique<session::Session>(
      session::Session::create(std::move(outcome->session), p.initiator_psks->key(0), config, now).value());
  p.responder = std::make_unique<session::Session>(
      session::Session::create(std::move(*est), p.responder_psks->key(0), responder_config, now).value());
  // A first datagram from the responder (the daemon sends SEQUENCE_NEG; an
  // uncounted heartbeat answer here leaves the responder's state as it was):
  // the initiator has heard from it and sends of its own accord from now on.
  std::array<std::uint8_t, 256> buf{};
  auto n = p.responder->make_heartbeat_answer(buf, unix_ms + skew_ms, now);
  if (!n || !p.initiator->open(MutableBytes(buf.data(), *n), unix_ms, now, unix_ms, now)) std::abort();
  return p;
}

}  // namespace buckwild::testing

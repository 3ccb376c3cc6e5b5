// Two ends of one session, established by a real discovery exchange with
// deterministic randomness: for session, daemon and simulator tests.
#pragma once

#include <cstdint>
#include <memory>

#include "core/discovery/psk_set.h"
#include "core/session/session.h"

namespace buckwild::testing {

struct SessionPair {
  std::unique_ptr<discovery::PskSet> initiator_psks;
  std::unique_ptr<discovery::PskSet> responder_psks;
  std::unique_ptr<session::Session> initiator;
  std::unique_ptr<session::Session> responder;
};

// Runs DISCOVERY / RESPONSE / CONFIRM at Unix time `unix_ms` (the responder's
// clock reads `skew_ms` more) and builds both sessions. Aborts if discovery fails.
SessionPair make_session_pair(std::int64_t unix_ms, TimePoint now, std::int64_t skew_ms = 0,
                              const session::SessionConfig& config = {});
// The same with the responder's own configuration.
SessionPair make_session_pair(std::int64_t unix_ms, TimePoint now, std::int64_t skew_ms,
                              const session::SessionConfig& initiator_config,
                              const session::SessionConfig& responder_config);

}  // namespace buckwild::testing

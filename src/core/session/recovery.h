// The in-session recovery strategies, RESYNC and REKEY (docs/protocol.md
// §11.9): what a session's own counters say happened, as causes for its
// state machine (session_state.h), and when REKEY's next attempt starts. No
// I/O and no clock: the owner (the daemon's recovery.cc, the simulator's
// tests) calls these after the session took a step, applies each cause
// with SessionStateMachine::transition() (it logs, audits, acts), and reads
// the machine again.
//
// RESYNC runs inside the session's time sync (time_sync.h): each request of
// a RESYNC is an attempt, the requests back off (1 s doubling, ±25 %), the
// fifth unconfirmed gives up (attempts_exhausted → ERROR), a confirmed
// measurement is `recovered`.
//
// REKEY: an exchange this side started (its key's age or packet bound, a
// request) abandoned after kMaxRekeyAttempts unanswered REQUESTs means the
// key cannot be renewed: `key_failure` → RECOVERING (REKEY). Its attempts
// are exchanges anew, attempt k started backoff(kRekey, k) (1, 2, 4, 8, 16 s,
// ±25 %) after the previous one was abandoned; a completed rekey (either side
// asking) is `recovered`; the fifth abandoned is attempts_exhausted, and
// EMERGENCY takes over (new keys by discovery).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "core/common/time.h"
#include "core/session/rekey.h"
#include "core/session/session_state.h"
#include "core/session/time_sync.h"

namespace buckwild::session {

class Session;

// Hands a cause to the owner, which applies it to the machine (and logs).
using ReportCause = std::function<void(Cause)>;

class ResyncRecovery {
 public:
  // After the session's time sync took a step (a request sent, an answer or
  // a request of the peer's taken, our clock stepped): reports a RESYNC
  // started (clock_drift), each further request (attempt_failed), given up
  // (attempts_exhausted) or confirmed (recovered). `m` is read after each report.
  void observe(const PeerTimeSync& ts, const SessionStateMachine& m, const ReportCause& report);

 private:
  std::uint64_t requests_seen_ = 0;
  std::uint64_t given_up_seen_ = 0;
  std::uint64_t responses_seen_ = 0;  // measurements when it gave up
};

class RekeyRecovery {
 public:
  // After the session's keys took a step (on_expiry, a REKEY message):
  // reports an abandoned exchange (key_failure, or attempt_failed while
  // REKEY runs) or a completed rekey while REKEY runs (recovered).
  void observe(const SessionKeys& keys, const SessionStateMachine& m, const ReportCause& report);

  // After the reports: while REKEY runs and its attempt `m.attempts()` has
  // not been asked for, asks `s` for it at now + backoff(kRekey, attempts,
  // random) and returns that time; nullopt otherwise.
  std::optional<TimePoint> schedule(Session& s, const SessionStateMachine& m, TimePoint now,
                                    std::uint32_t random);

  // Exchanges the strategy asked for, and those it recovered by.
  std::uint64_t attempts_started() const { return attempts_started_; }
  std::uint64_t recoveries() const { return recoveries_; }

 private:
  std::uint64_t abandoned_seen_ = 0;
  std::uint64_t rekeys_seen_ = 0;
  int scheduled_attempt_ = 0;  // the attempt asked for (0: none under way)
  std::uint64_t attempts_started_ = 0;
  std::uint64_t recoveries_ = 0;
};

}  // namespace buckwild::session

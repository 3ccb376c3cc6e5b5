// The session state machine (docs/protocol.md §11.9): what a peer's session
// is doing, why, and how recovery goes. No I/O and no clock: the daemon
// reports what happened (a cause, with `now`) and acts on the state this
// answers with; every transition is made in transition() and nowhere else.
//
//   CONNECTING   we look for the peer by discovery (no session yet)
//   LISTENING    we wait for the peer's discovery (we do not initiate)
//   ESTABLISHED  the session carries traffic
//   RECOVERING   a failure was classified (classify()) and its strategy runs:
//                RESYNC, REPAIR, REKEY or EMERGENCY, at most kMaxAttempts
//                attempts spaced by backoff(); REKEY's spent go on as
//                EMERGENCY (new keys by discovery), the others' to ERROR
//   CLOSING      the session is ending (its connections are reset)
//   ERROR        a strategy's attempts are spent, or discovery went
//                unanswered kMaxAttempts times: the reason stays visible
//                until the peer answers again
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/common/time.h"

namespace buckwild::session {

enum class State : std::uint8_t {
  kConnecting,
  kListening,
  kEstablished,
  kRecovering,
  kClosing,
  kError,
};

enum class Strategy : std::uint8_t {
  kNone,
  kResync,     // the clocks drifted beyond the delay allowance: re-measure the offset
  kRepair,     // sequence state disagrees: re-establish it
  kRekey,      // the keys are spent or disagree: new keys in the same session
  kEmergency,  // the session cannot be resumed: discovery anew, connections kept
};

// What went wrong: the error classification's input.
enum class Failure : std::uint8_t {
  kClockDrift,        // a time sync measurement beyond the tolerance, or our clock stepped
  kSequenceMismatch,  // the peer's packets keep failing the replay window
  kKeyFailure,        // a rekey exchange went unanswered past its retries (the key cannot be renewed)
  kPeerSilent,        // probes went unanswered: the path or the peer is gone
  kSessionLost,       // the dead-peer timeout passed: keys and schedule cannot be resumed
};

// Why the state last changed: each transition has one.
enum class Cause : std::uint8_t {
  kDiscoveryStarted,    // → CONNECTING
  kAwaitingPeer,        // → LISTENING
  kSessionEstablished,  // → ESTABLISHED (a new session)
  kClockDrift,          // → RECOVERING (RESYNC)
  kSequenceMismatch,    // → RECOVERING (REPAIR)
  kKeyFailure,          // → RECOVERING (REKEY)
  kPeerSilent,          // → RECOVERING (EMERGENCY)
  kSessionLost,         // → RECOVERING (EMERGENCY)
  kRecovered,           // RECOVERING or ERROR → ESTABLISHED (the same session)
  kAttemptFailed,       // RECOVERING or CONNECTING stays, one more attempt spent
  kAttemptsExhausted,   // → ERROR; REKEY's → RECOVERING (EMERGENCY)
  kPathReturned,        // ERROR → RECOVERING or CONNECTING, attempts anew
  kPeerRestarted,       // → CLOSING (the peer lost our session)
  kSessionEnded,        // → CLOSING (dead without recovery, reload, administratively down)
};

inline constexpr int kMaxAttempts = 5;

// The strategy for a failure. REKEY only when the session can rekey
// (`rekey_available`: a session whose owner runs the exchange); otherwise
// the keys are re-established by EMERGENCY (docs/protocol.md §13 deviation 30).
Strategy classify(Failure f, bool rekey_available);

// The cause a failure is recorded with.
Cause cause_of(Failure f);

// First wait between attempts of each strategy, doubling per attempt.
Duration first_backoff(Strategy s);
// The cap of any wait between attempts, and of discovery in ERROR.
inline constexpr Duration kMaxBackoff = seconds(30);

// The wait before attempt `attempt` + 1 (attempt ≥ 1 made so far) of
// strategy `s`: first_backoff(s) · 2^(attempt − 1), at most kMaxBackoff, then
// jittered by ±25 % with `random` (uniform over 32 bits, from the caller).
Duration backoff(Strategy s, int attempt, std::uint32_t random);

std::string_view name(State s);
std::string_view name(Strategy s);
std::string_view name(Cause c);

class SessionStateMachine {
 public:
  SessionStateMachine(State initial, Cause cause, TimePoint now);

  State state() const { return state_; }
  // The strategy running in RECOVERING, or the one whose attempts ran out in ERROR.
  Strategy strategy() const { return strategy_; }
  Cause cause() const { return cause_; }
  // Attempts made by the running strategy (or discovery, CONNECTING); in
  // ERROR those that failed.
  int attempts() const { return attempts_; }
  TimePoint since() const { return since_; }
  // Transitions made so far (for logs and tests).
  std::uint64_t transitions() const { return transitions_; }

  // Applies `cause`. Returns the state now in force when the state, the
  // strategy or the attempt count changed, nullopt when `cause` does not
  // apply in the current state (it changes nothing). For a failure's cause
  // `rekey_available` picks its strategy (classify()).
  std::optional<State> transition(Cause cause, TimePoint now, bool rekey_available = false);

  // The failure given: its classification and the transition to RECOVERING
  // (or, already recovering by the same strategy, nothing).
  std::optional<State> fail(Failure failure, TimePoint now, bool rekey_available = false);

 private:
  void enter(State s, Strategy strategy, Cause cause, TimePoint now);

  State state_;
  Strategy strategy_ = Strategy::kNone;
  Cause cause_;
  int attempts_ = 0;
  TimePoint since_;
  std::uint64_t transitions_ = 0;
  // The state to go back to on kPathReturned from ERROR.
  State before_error_ = State::kConnecting;
};

}  // namespace buckwild::session

#include "core/session/session_state.h"

#include <algorithm>

namespace buckwild::session {

Strategy classify(Failure f, bool rekey_available) {
  switch (f) {
    case Failure::kClockDrift:
      return Strategy::kResync;
    case Failure::kSequenceMismatch:
      return Strategy::kRepair;
    case Failure::kKeyFailure:
      // New keys in the session when its owner can run the exchange, else by discovery.
      return rekey_available ? Strategy::kRekey : Strategy::kEmergency;
    case Failure::kPeerSilent:
    case Failure::kSessionLost:
      return Strategy::kEmergency;
  }
  return Strategy::kEmergency;
}

Cause cause_of(Failure f) {
  switch (f) {
    case Failure::kClockDrift:
      return Cause::kClockDrift;
    case Failure::kSequenceMismatch:
      return Cause::kSequenceMismatch;
    case Failure::kKeyFailure:
      return Cause::kKeyFailure;
    case Failure::kPeerSilent:
      return Cause::kPeerSilent;
    case Failure::kSessionLost:
      return Cause::kSessionLost;
  }
  return Cause::kSessionLost;
}

Duration first_backoff(Strategy s) {
  switch (s) {
    case Strategy::kResync:
      return seconds(1);  // a time sync request's round trip, with room
    case Strategy::kRepair:
    case Strategy::kRekey:
      return seconds(1);
    case Strategy::kEmergency:
      return milliseconds(500);  // a silent peer is looked for soon (§11.4)
    case Strategy::kNone:
      return seconds(2);  // discovery without a session
  }
  return seconds(2);
}

Duration backoff(Strategy s, int attempt, std::uint32_t random) {
  Duration d = first_backoff(s);
  for (int i = 1; i < attempt && d < kMaxBackoff; ++i) d *= 2;
  d = std::min(d, kMaxBackoff);
  // ±25 %: two peers (or many sessions) that failed together do not retry in step.
  const Duration spread = d / 2;
  const Duration offset =
      static_cast<Duration>((static_cast<std::uint64_t>(random) * static_cast<std::uint64_t>(spread)) >> 32);
  return d - spread / 2 + offset;
}

std::string_view name(State s) {
  switch (s) {
    case State::kConnecting:
      return "connecting";
    case State::kListening:
      return "listening";
    case State::kEstablished:
      return "established";
    case State::kRecovering:
      return "recovering";
    case State::kClosing:
      return "closing";
    case State::kError:
      return "error";
  }
  return "error";
}

std::string_view name(Strategy s) {
  switch (s) {
    case Strategy::kNone:
      return "none";
    case Strategy::kResync:
      return "resync";
    case Strategy::kRepair:
      return "repair";
    case Strategy::kRekey:
      return "rekey";
    case Strategy::kEmergency:
      return "emergency";
  }
  return "none";
}

std::string_view name(Cause c) {
  switch (c) {
    case Cause::kDiscoveryStarted:
      return "discovery_started";
    case Cause::kAwaitingPeer:
      return "awaiting_peer";
    case Cause::kSessionEstablished:
      return "session_established";
    case Cause::kClockDrift:
      return "clock_drift";
    case Cause::kSequenceMismatch:
      return "sequence_mismatch";
    case Cause::kKeyFailure:
      return "key_failure";
    case Cause::kPeerSilent:
      return "peer_silent";
    case Cause::kSessionLost:
      return "session_lost";
    case Cause::kRecovered:
      return "recovered";
    case Cause::kAttemptFailed:
      return "attempt_failed";
    case Cause::kAttemptsExhausted:
      return "attempts_exhausted";
    case Cause::kPathReturned:
      return "path_returned";
    case Cause::kPeerRestarted:
      return "peer_restarted";
    case Cause::kSessionEnded:
      return "session_ended";
  }
  return "session_ended";
}

SessionStateMachine::SessionStateMachine(State initial, Cause cause, TimePoint now)
    : state_(initial), cause_(cause), since_(now) {}

void SessionStateMachine::enter(State s, Strategy strategy, Cause cause, TimePoint now) {
  if (s != state_) since_ = now;
  state_ = s;
  strategy_ = strategy;
  cause_ = cause;
  ++transitions_;
}

std::optional<State> SessionStateMachine::fail(Failure failure, TimePoint now,
                                               bool rekey_available) {
  return transition(cause_of(failure), now, rekey_available);
}

// The one place a state changes.
std::optional<State> SessionStateMachine::transition(Cause cause, TimePoint now,
                                                     bool rekey_available) {
  const bool has_session = state_ == State::kEstablished || state_ == State::kRecovering ||
                           (state_ == State::kError && before_error_ == State::kRecovering);
  switch (cause) {
    case Cause::kDiscoveryStarted:
      // A search without a session (a first one, or after CLOSING); one
      // under way, or in ERROR, goes on as it is.
      if (state_ == State::kConnecting || state_ == State::kError || has_session) return std::nullopt;
      attempts_ = 1;
      enter(State::kConnecting, Strategy::kNone, cause, now);
      return state_;
    case Cause::kAwaitingPeer:
      if (has_session || state_ == State::kListening) return std::nullopt;
      attempts_ = 0;
      enter(State::kListening, Strategy::kNone, cause, now);
      return state_;
    case Cause::kSessionEstablished:
      attempts_ = 0;
      enter(State::kEstablished, Strategy::kNone, cause, now);
      return state_;
    case Cause::kClockDrift:
    case Cause::kSequenceMismatch:
    case Cause::kKeyFailure:
    case Cause::kPeerSilent:
    case Cause::kSessionLost: {
      if (!has_session) return std::nullopt;
      const Failure f = cause == Cause::kClockDrift         ? Failure::kClockDrift
                        : cause == Cause::kSequenceMismatch ? Failure::kSequenceMismatch
                        : cause == Cause::kKeyFailure       ? Failure::kKeyFailure
                        : cause == Cause::kPeerSilent       ? Failure::kPeerSilent
                                                            : Failure::kSessionLost;
      const Strategy s = classify(f, rekey_available);
      if (state_ == State::kRecovering && strategy_ == s) {
        // The same failure again: the session lost meanwhile is news
        // (EMERGENCY now has no session to come back to), else nothing.
        if (cause == cause_ || cause != Cause::kSessionLost) return std::nullopt;
        enter(State::kRecovering, s, cause, now);
        return state_;
      }
      if (state_ == State::kError && strategy_ == s) return std::nullopt;  // spent: stays visible
      // EMERGENCY outranks the others: a silent peer answers no RESYNC.
      if (state_ == State::kRecovering && strategy_ == Strategy::kEmergency) return std::nullopt;
      attempts_ = 1;
      enter(State::kRecovering, s, cause, now);
      return state_;
    }
    case Cause::kRecovered:
      if (state_ != State::kRecovering && !(state_ == State::kError && has_session)) return std::nullopt;
      attempts_ = 0;
      enter(State::kEstablished, Strategy::kNone, cause, now);
      return state_;
    case Cause::kAttemptFailed:
      if (state_ == State::kError) {
        ++attempts_;  // discovery goes on at the cap; counted, visible
        ++transitions_;
        return state_;
      }
      if (state_ != State::kRecovering && state_ != State::kConnecting) return std::nullopt;
      if (attempts_ >= kMaxAttempts) return transition(Cause::kAttemptsExhausted, now);
      ++attempts_;
      cause_ = cause;
      ++transitions_;
      return state_;
    case Cause::kAttemptsExhausted:
      if (state_ != State::kRecovering && state_ != State::kConnecting) return std::nullopt;
      if (state_ == State::kRecovering && strategy_ == Strategy::kRekey) {
        // The key cannot be renewed in the session: new keys by discovery.
        attempts_ = 1;
        enter(State::kRecovering, Strategy::kEmergency, cause, now);
        return state_;
      }
      before_error_ = state_;
      enter(State::kError, strategy_, cause, now);
      return state_;
    case Cause::kPathReturned:
      if (state_ != State::kError) return std::nullopt;
      attempts_ = 1;
      enter(before_error_, strategy_, cause, now);
      return state_;
    case Cause::kPeerRestarted:
    case Cause::kSessionEnded:
      attempts_ = 0;
      enter(State::kClosing, Strategy::kNone, cause, now);
      return state_;
  }
  return std::nullopt;
}

}  // namespace buckwild::session

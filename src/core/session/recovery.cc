#include "core/session/recovery.h"

#include "core/session/session.h"

namespace buckwild::session {
namespace {

bool running(const SessionStateMachine& m, Strategy s) {
  return m.state() == State::kRecovering && m.strategy() == s;
}

}  // namespace

void ResyncRecovery::observe(const PeerTimeSync& ts, const SessionStateMachine& m,
                             const ReportCause& report) {
  const bool resync = m.strategy() == Strategy::kResync &&
                      (m.state() == State::kRecovering || m.state() == State::kError);
  if (ts.stats().resyncs_given_up != given_up_seen_) {
    given_up_seen_ = ts.stats().resyncs_given_up;
    responses_seen_ = ts.stats().responses_received;
    if (resync && m.state() == State::kRecovering) report(Cause::kAttemptsExhausted);
    return;
  }
  if (ts.resyncing()) {
    if (!resync) {
      report(Cause::kClockDrift);
      // Its first request is attempt 1; each one after it another.
      requests_seen_ = ts.stats().requests_sent + 1;
    } else {
      while (requests_seen_ < ts.stats().requests_sent) {
        ++requests_seen_;
        report(Cause::kAttemptFailed);
      }
    }
  } else if (resync) {
    // Confirmed: by the RESYNC itself, or (after it gave up) by a later
    // measurement within the tolerance.
    if (m.state() == State::kRecovering || ts.stats().responses_received > responses_seen_) {
      report(Cause::kRecovered);
    }
  }
}

void RekeyRecovery::observe(const SessionKeys& keys, const SessionStateMachine& m,
                            const ReportCause& report) {
  const RekeyStats& st = keys.stats();
  if (st.rekeys != rekeys_seen_) {
    rekeys_seen_ = st.rekeys;
    abandoned_seen_ = st.requests_abandoned;  // whatever failed before, the key is new
    if (running(m, Strategy::kRekey)) {
      ++recoveries_;
      scheduled_attempt_ = 0;
      report(Cause::kRecovered);
    }
    return;
  }
  while (abandoned_seen_ < st.requests_abandoned) {
    ++abandoned_seen_;
    if (running(m, Strategy::kRekey)) {
      report(Cause::kAttemptFailed);
    } else {
      // A new REKEY counts its attempts from its own first exchange.
      scheduled_attempt_ = 0;
      report(Cause::kKeyFailure);
    }
  }
}

std::optional<TimePoint> RekeyRecovery::schedule(Session& s, const SessionStateMachine& m,
                                                 TimePoint now, std::uint32_t random) {
  if (!running(m, Strategy::kRekey)) {
    scheduled_attempt_ = 0;
    return std::nullopt;
  }
  if (scheduled_attempt_ == m.attempts()) return std::nullopt;  // asked for already
  scheduled_attempt_ = m.attempts();
  const TimePoint at = now + backoff(Strategy::kRekey, m.attempts(), random);
  s.request_rekey_at(at);
  ++attempts_started_;
  return at;
}

}  // namespace buckwild::session

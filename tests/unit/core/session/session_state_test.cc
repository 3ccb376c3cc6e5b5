#include "core/session/session_state.h"

#include <gtest/gtest.h>

namespace buckwild::session {
namespace {

TEST(SessionStateTest, ClassifiesEachFailure) {
  EXPECT_EQ(classify(Failure::kClockDrift, false), Strategy::kResync);
  EXPECT_EQ(classify(Failure::kSequenceMismatch, false), Strategy::kRepair);
  EXPECT_EQ(classify(Failure::kKeyFailure, true), Strategy::kRekey);
  // Without rekey in the session, new keys come from discovery.
  EXPECT_EQ(classify(Failure::kKeyFailure, false), Strategy::kEmergency);
  EXPECT_EQ(classify(Failure::kPeerSilent, false), Strategy::kEmergency);
  EXPECT_EQ(classify(Failure::kSessionLost, true), Strategy::kEmergency);
}

TEST(SessionStateTest, ConnectingThenEstablished) {
  SessionStateMachine m(State::kConnecting, Cause::kDiscoveryStarted, 0);
  EXPECT_EQ(m.state(), State::kConnecting);
  EXPECT_EQ(m.transition(Cause::kSessionEstablished, seconds(1)), State::kEstablished);
  EXPECT_EQ(m.cause(), Cause::kSessionEstablished);
  EXPECT_EQ(m.since(), seconds(1));
  EXPECT_EQ(m.attempts(), 0);
  // Discovery started while established changes nothing.
  EXPECT_FALSE(m.transition(Cause::kDiscoveryStarted, seconds(2)));
  EXPECT_FALSE(m.transition(Cause::kRecovered, seconds(2)));
}

TEST(SessionStateTest, ListeningIsLeftByASession) {
  SessionStateMachine m(State::kListening, Cause::kAwaitingPeer, 0);
  EXPECT_FALSE(m.fail(Failure::kClockDrift, 1));  // no session to recover
  EXPECT_EQ(m.transition(Cause::kSessionEstablished, 5), State::kEstablished);
}

TEST(SessionStateTest, ResyncRecovers) {
  SessionStateMachine m(State::kEstablished, Cause::kSessionEstablished, 0);
  EXPECT_EQ(m.fail(Failure::kClockDrift, 10), State::kRecovering);
  EXPECT_EQ(m.strategy(), Strategy::kResync);
  EXPECT_EQ(m.cause(), Cause::kClockDrift);
  EXPECT_EQ(m.attempts(), 1);
  EXPECT_FALSE(m.fail(Failure::kClockDrift, 11));  // already resyncing
  EXPECT_EQ(m.transition(Cause::kAttemptFailed, 12), State::kRecovering);
  EXPECT_EQ(m.attempts(), 2);
  EXPECT_EQ(m.transition(Cause::kRecovered, 13), State::kEstablished);
  EXPECT_EQ(m.strategy(), Strategy::kNone);
  EXPECT_EQ(m.attempts(), 0);
}

TEST(SessionStateTest, FiveFailedAttemptsEndInErrorThenThePathReturns) {
  SessionStateMachine m(State::kEstablished, Cause::kSessionEstablished, 0);
  ASSERT_EQ(m.fail(Failure::kPeerSilent, 1), State::kRecovering);
  EXPECT_EQ(m.strategy(), Strategy::kEmergency);
  for (int i = 2; i <= kMaxAttempts; ++i) {
    EXPECT_EQ(m.transition(Cause::kAttemptFailed, i), State::kRecovering);
    EXPECT_EQ(m.attempts(), i);
  }
  EXPECT_EQ(m.transition(Cause::kAttemptFailed, 9), State::kError);
  EXPECT_EQ(m.strategy(), Strategy::kEmergency);  // what ran out
  EXPECT_EQ(m.cause(), Cause::kAttemptsExhausted);
  EXPECT_EQ(m.attempts(), kMaxAttempts);
  EXPECT_EQ(m.since(), 9);
  // Still trying at the cap: counted, still ERROR.
  EXPECT_EQ(m.transition(Cause::kAttemptFailed, 10), State::kError);
  EXPECT_FALSE(m.fail(Failure::kPeerSilent, 11));
  EXPECT_EQ(m.transition(Cause::kPathReturned, 12), State::kRecovering);
  EXPECT_EQ(m.attempts(), 1);
  EXPECT_EQ(m.transition(Cause::kRecovered, 13), State::kEstablished);
}

TEST(SessionStateTest, RekeyRecoversOrItsFiveSpentAttemptsGoOnAsEmergency) {
  SessionStateMachine m(State::kEstablished, Cause::kSessionEstablished, 0);
  ASSERT_EQ(m.fail(Failure::kKeyFailure, 1, true), State::kRecovering);
  EXPECT_EQ(m.strategy(), Strategy::kRekey);
  EXPECT_EQ(m.cause(), Cause::kKeyFailure);
  EXPECT_EQ(m.attempts(), 1);
  EXPECT_FALSE(m.fail(Failure::kKeyFailure, 2, true));  // already rekeying
  EXPECT_EQ(m.transition(Cause::kRecovered, 3), State::kEstablished);

  ASSERT_EQ(m.fail(Failure::kKeyFailure, 10, true), State::kRecovering);
  for (int i = 2; i <= kMaxAttempts; ++i) {
    EXPECT_EQ(m.transition(Cause::kAttemptFailed, 10 + i), State::kRecovering);
    EXPECT_EQ(m.attempts(), i);
    EXPECT_EQ(m.strategy(), Strategy::kRekey);
  }
  // The sixth failure: REKEY is spent, and EMERGENCY (not ERROR) takes over
  // with attempts anew; its own five spent end in ERROR.
  EXPECT_EQ(m.transition(Cause::kAttemptFailed, 20), State::kRecovering);
  EXPECT_EQ(m.strategy(), Strategy::kEmergency);
  EXPECT_EQ(m.cause(), Cause::kAttemptsExhausted);
  EXPECT_EQ(m.attempts(), 1);
  EXPECT_EQ(m.since(), 10);  // still RECOVERING since the key failure
  for (int i = 2; i <= kMaxAttempts; ++i) {
    EXPECT_EQ(m.transition(Cause::kAttemptFailed, 20 + i), State::kRecovering);
  }
  EXPECT_EQ(m.transition(Cause::kAttemptFailed, 30), State::kError);
  EXPECT_EQ(m.strategy(), Strategy::kEmergency);
  // A key failure while EMERGENCY runs changes nothing (it outranks REKEY).
  SessionStateMachine n(State::kEstablished, Cause::kSessionEstablished, 0);
  ASSERT_EQ(n.fail(Failure::kPeerSilent, 1), State::kRecovering);
  EXPECT_FALSE(n.fail(Failure::kKeyFailure, 2, true));
  EXPECT_EQ(n.strategy(), Strategy::kEmergency);
}

TEST(SessionStateTest, DiscoveryWithoutASessionEndsInErrorAfterFiveAttempts) {
  SessionStateMachine m(State::kClosing, Cause::kSessionEnded, 0);
  ASSERT_EQ(m.transition(Cause::kDiscoveryStarted, 1), State::kConnecting);
  EXPECT_EQ(m.attempts(), 1);
  for (int i = 0; i < kMaxAttempts - 1; ++i) m.transition(Cause::kAttemptFailed, 2);
  EXPECT_EQ(m.state(), State::kConnecting);
  EXPECT_EQ(m.transition(Cause::kAttemptFailed, 3), State::kError);
  EXPECT_FALSE(m.transition(Cause::kDiscoveryStarted, 4));
  EXPECT_EQ(m.transition(Cause::kPathReturned, 5), State::kConnecting);
  EXPECT_EQ(m.transition(Cause::kSessionEstablished, 6), State::kEstablished);
}

TEST(SessionStateTest, EmergencyOutranksResyncAndALostSessionIsNews) {
  SessionStateMachine m(State::kEstablished, Cause::kSessionEstablished, 0);
  m.fail(Failure::kClockDrift, 1);
  EXPECT_EQ(m.fail(Failure::kPeerSilent, 2), State::kRecovering);
  EXPECT_EQ(m.strategy(), Strategy::kEmergency);
  EXPECT_FALSE(m.fail(Failure::kClockDrift, 3));  // a silent peer answers no RESYNC
  EXPECT_EQ(m.fail(Failure::kSessionLost, 4), State::kRecovering);
  EXPECT_EQ(m.cause(), Cause::kSessionLost);
}

TEST(SessionStateTest, RestartsAndEndsClose) {
  SessionStateMachine m(State::kEstablished, Cause::kSessionEstablished, 0);
  EXPECT_EQ(m.transition(Cause::kPeerRestarted, 1), State::kClosing);
  EXPECT_EQ(m.cause(), Cause::kPeerRestarted);
  EXPECT_EQ(m.transition(Cause::kDiscoveryStarted, 2), State::kConnecting);
  EXPECT_EQ(m.transition(Cause::kSessionEnded, 3), State::kClosing);
  EXPECT_EQ(m.transition(Cause::kAwaitingPeer, 4), State::kListening);
}

TEST(SessionStateTest, BackoffGrowsIsCappedAndJittered) {
  // Mid jitter (random = 2^31) is the nominal wait.
  EXPECT_EQ(backoff(Strategy::kEmergency, 1, 1u << 31), milliseconds(500));
  EXPECT_EQ(backoff(Strategy::kEmergency, 2, 1u << 31), seconds(1));
  EXPECT_EQ(backoff(Strategy::kEmergency, 5, 1u << 31), seconds(8));
  EXPECT_EQ(backoff(Strategy::kNone, 1, 1u << 31), seconds(2));
  EXPECT_EQ(backoff(Strategy::kNone, 5, 1u << 31), seconds(30));
  EXPECT_EQ(backoff(Strategy::kNone, 40, 1u << 31), seconds(30));
  // ±25 % at the extremes.
  EXPECT_EQ(backoff(Strategy::kResync, 1, 0), milliseconds(750));
  EXPECT_GE(backoff(Strategy::kResync, 1, 0xFFFFFFFFu), milliseconds(1249));
  EXPECT_LE(backoff(Strategy::kResync, 1, 0xFFFFFFFFu), milliseconds(1250));
  EXPECT_LE(backoff(Strategy::kNone, 40, 0xFFFFFFFFu), milliseconds(37'500));
}

TEST(SessionStateTest, NamesAreStable) {
  EXPECT_EQ(name(State::kRecovering), "recovering");
  EXPECT_EQ(name(Strategy::kEmergency), "emergency");
  EXPECT_EQ(name(Cause::kAttemptsExhausted), "attempts_exhausted");
}

}  // namespace
}  // namespace buckwild::session

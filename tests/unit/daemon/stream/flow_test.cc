#include "daemon/stream/flow.h"

#include <gtest/gtest.h>

namespace buckwild::daemon {
namespace {

using S = FlowState;
using E = FlowEvent;

TEST(FlowTest, ClientAndServerFlowsStartWhereTheirSideBegins) {
  EXPECT_EQ(Flow(FlowSide::kClient).state(), S::kHoldingSyn);
  EXPECT_EQ(Flow(FlowSide::kServer).state(), S::kConnecting);
}

TEST(FlowTest, ClientOpensThroughTheFarSideAndTheListener) {
  Flow f(FlowSide::kClient);
  EXPECT_EQ(f.on(E::kFarConnected), S::kAwaitingAccept);
  EXPECT_EQ(f.on(E::kAccepted), S::kOpen);
}

TEST(FlowTest, HalfClosesMeetInBothFinishedWhicheverComesFirst) {
  EXPECT_EQ(next_state(S::kOpen, E::kLocalEof), S::kLocalFinished);
  EXPECT_EQ(next_state(S::kLocalFinished, E::kPeerFinPassed), S::kBothFinished);
  EXPECT_EQ(next_state(S::kOpen, E::kPeerFinPassed), S::kPeerFinished);
  EXPECT_EQ(next_state(S::kPeerFinished, E::kLocalEof), S::kBothFinished);
}

TEST(FlowTest, ResetAndEndReachEveryLiveStateAndNothingLeavesLingering) {
  for (S s : {S::kHoldingSyn, S::kConnecting, S::kAwaitingAccept, S::kOpen, S::kLocalFinished,
              S::kPeerFinished, S::kBothFinished, S::kAborting}) {
    EXPECT_EQ(next_state(s, E::kReset), S::kAborting) << flow_state_name(s);
    EXPECT_EQ(next_state(s, E::kEnded), S::kLingering) << flow_state_name(s);
  }
  for (E e : {E::kFarConnected, E::kAccepted, E::kConnected, E::kLocalEof, E::kPeerFinPassed, E::kReset,
              E::kEnded}) {
    EXPECT_FALSE(next_state(S::kLingering, e)) << flow_event_name(e);
  }
}

TEST(FlowTest, EventsOutOfPlaceAreRefused) {
  EXPECT_FALSE(next_state(S::kHoldingSyn, E::kAccepted)) << "accepted before the far side connected";
  EXPECT_FALSE(next_state(S::kConnecting, E::kFarConnected)) << "a client event on a server flow";
  EXPECT_FALSE(next_state(S::kLocalFinished, E::kLocalEof)) << "a second EOF";
  EXPECT_FALSE(next_state(S::kAwaitingAccept, E::kLocalEof)) << "no socket yet";
  EXPECT_FALSE(next_state(S::kAborting, E::kPeerFinPassed));
}

TEST(FlowTest, SocketDirectionsFollowTheHalfCloses) {
  EXPECT_TRUE(reads_socket(S::kOpen) && writes_socket(S::kOpen));
  EXPECT_TRUE(!reads_socket(S::kLocalFinished) && writes_socket(S::kLocalFinished));
  EXPECT_TRUE(reads_socket(S::kPeerFinished) && !writes_socket(S::kPeerFinished));
  EXPECT_TRUE(!reads_socket(S::kBothFinished) && !writes_socket(S::kBothFinished));
  EXPECT_TRUE(!reads_socket(S::kAborting) && !writes_socket(S::kAborting));
  EXPECT_FALSE(carries_data(S::kHoldingSyn));
  EXPECT_TRUE(carries_data(S::kAwaitingAccept));
  EXPECT_FALSE(is_live(S::kLingering));
}

}  // namespace
}  // namespace buckwild::daemon

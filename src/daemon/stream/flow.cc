#include "daemon/stream/flow.h"

#include <cassert>

namespace buckwild::daemon {

std::string_view flow_state_name(FlowState s) {
  switch (s) {
    case FlowState::kHoldingSyn: return "holding-syn";
    case FlowState::kConnecting: return "connecting";
    case FlowState::kAwaitingAccept: return "awaiting-accept";
    case FlowState::kOpen: return "open";
    case FlowState::kLocalFinished: return "local-finished";
    case FlowState::kPeerFinished: return "peer-finished";
    case FlowState::kBothFinished: return "both-finished";
    case FlowState::kAborting: return "aborting";
    case FlowState::kLingering: return "lingering";
  }
  return "?";
}

std::string_view flow_event_name(FlowEvent e) {
  switch (e) {
    case FlowEvent::kFarConnected: return "far-connected";
    case FlowEvent::kAccepted: return "accepted";
    case FlowEvent::kConnected: return "connected";
    case FlowEvent::kLocalEof: return "local-eof";
    case FlowEvent::kPeerFinPassed: return "peer-fin-passed";
    case FlowEvent::kReset: return "reset";
    case FlowEvent::kEnded: return "ended";
  }
  return "?";
}

std::optional<FlowState> next_state(FlowState state, FlowEvent event) {
  using S = FlowState;
  if (state == S::kLingering) return std::nullopt;  // over: nothing happens to it any more
  switch (event) {
    case FlowEvent::kFarConnected:
      if (state == S::kHoldingSyn) return S::kAwaitingAccept;
      break;
    case FlowEvent::kAccepted:
      if (state == S::kAwaitingAccept) return S::kOpen;
      break;
    case FlowEvent::kConnected:
      if (state == S::kConnecting) return S::kOpen;
      break;
    case FlowEvent::kLocalEof:
      if (state == S::kOpen) return S::kLocalFinished;
      if (state == S::kPeerFinished) return S::kBothFinished;
      break;
    case FlowEvent::kPeerFinPassed:
      if (state == S::kOpen) return S::kPeerFinished;
      if (state == S::kLocalFinished) return S::kBothFinished;
      break;
    case FlowEvent::kReset:
      return S::kAborting;
    case FlowEvent::kEnded:
      return S::kLingering;
  }
  return std::nullopt;
}

bool is_live(FlowState s) { return s != FlowState::kLingering; }

bool carries_data(FlowState s) {
  switch (s) {
    case FlowState::kAwaitingAccept:
    case FlowState::kOpen:
    case FlowState::kLocalFinished:
    case FlowState::kPeerFinished:
    case FlowState::kBothFinished:
      return true;
    default:
      return false;
  }
}

bool reads_socket(FlowState s) { return s == FlowState::kOpen || s == FlowState::kPeerFinished; }

bool writes_socket(FlowState s) { return s == FlowState::kOpen || s == FlowState::kLocalFinished; }

FlowState Flow::on(FlowEvent event) {
  const std::optional<FlowState> next = next_state(state_, event);
  assert(next && "a flow event its state does not allow");
  if (next) state_ = *next;
  return state_;
}

}  // namespace buckwild::daemon

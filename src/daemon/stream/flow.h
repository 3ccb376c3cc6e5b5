// One application TCP connection carried by the stream bridge: its kernel
// socket, its Buckwild connection, its NAT keys, and where it is in its life.
//
// The life of a flow is one state machine (FlowState); every change goes
// through Flow::on(event), which says why it happened, and next_state() is the
// whole table:
//
//   client (the application is here)    server (the application's peer asked)
//   kHoldingSyn                          kConnecting
//     | kFarConnected                      | kConnected
//   kAwaitingAccept                        |
//     | kAccepted                          |
//     +------------------> kOpen <---------+
//          kLocalEof /             \ kPeerFinPassed
//     kLocalFinished                kPeerFinished
//          kPeerFinPassed \        / kLocalEof
//                        kBothFinished
//
//   any live state --kReset--> kAborting   (the connection sends or got an RST
//                                           and closes; then the flow ends)
//   any live state --kEnded--> kLingering  (no socket, no connection; the NAT
//                                           keys stay for late segments)
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "core/common/socket_address.h"
#include "core/common/time.h"
#include "core/conn/connection.h"
#include "core/wire/messages.h"
#include "daemon/os/timer_queue.h"
#include "daemon/stream/byte_pump.h"
#include "daemon/stream/nat_table.h"
#include "daemon/net/tcp_endpoints.h"

namespace buckwild::daemon {

enum class FlowSide : std::uint8_t {
  kClient,  // the application connected from this host
  kServer,  // the peer's application connects to a server reached from here
};

enum class FlowState : std::uint8_t {
  kHoldingSyn,      // client: the application's SYN waits until the far side has connected
  kConnecting,      // server: our connect() towards the server is under way
  kAwaitingAccept,  // client: the far side is connected; the rewritten SYN went to our listener
  kOpen,            // bytes flow both ways
  kLocalFinished,   // the socket's EOF went into the connection (our FIN); bytes still flow to the socket
  kPeerFinished,    // the peer's FIN went to the socket (shutdown write); bytes still flow from it
  kBothFinished,    // both FINs passed; the connection finishes its closing handshake
  kAborting,        // reset by either end or given up; the connection closes with an RST
  kLingering,       // over: no socket, no connection; its NAT keys stay for late segments
};
std::string_view flow_state_name(FlowState s);

enum class FlowEvent : std::uint8_t {
  kFarConnected,   // client: the connection is established (the far side connected)
  kAccepted,       // client: our listener accepted the application's connection
  kConnected,      // server: our connect() succeeded and the connection is accepted
  kLocalEof,       // the socket said EOF; the connection sends our FIN
  kPeerFinPassed,  // the peer's FIN, after all its bytes, went to the socket
  kReset,          // either end reset, or we gave up (timeout, refusal)
  kEnded,          // the flow is over: socket closed, connection removed
};
std::string_view flow_event_name(FlowEvent e);

// The state `event` leads to from `state`; nullopt when the event cannot
// happen there (the caller has a bug, or the event is stale).
std::optional<FlowState> next_state(FlowState state, FlowEvent event);

// Properties of states, for the bridge's decisions.
bool is_live(FlowState s);         // not kLingering
bool carries_data(FlowState s);    // kAwaitingAccept .. kBothFinished: an end here counts as
                                   // completed or reset (before that it counts as refused)
bool reads_socket(FlowState s);    // bytes move from the socket into the connection
bool writes_socket(FlowState s);   // bytes move from the connection into the socket

struct Flow {
  // A client flow starts in kHoldingSyn, a server flow in kConnecting.
  explicit Flow(FlowSide s)
      : side(s), state_(s == FlowSide::kClient ? FlowState::kHoldingSyn : FlowState::kConnecting) {}

  // Applies `event` (asserts it is allowed; a disallowed one leaves the state).
  // Returns the new state.
  FlowState on(FlowEvent event);
  FlowState state() const { return state_; }

  FlowId id = kNoFlow;
  const FlowSide side;
  std::uint64_t session = 0;
  std::uint16_t conn_id = 0;
  conn::Connection* conn = nullptr;  // owned by the session's ConnectionTable; null before
                                     // kConnected (server) and once kLingering
  std::unique_ptr<TcpStream> stream;  // client: from kAccepted; server: from kConnecting
  std::uint32_t interest = 0;         // what the loop watches on stream's fd (0: not watched)
  SocketAddress app;                  // the application's end (here or on the peer)
  FlowOwner owner;                    // whom it counts against (NatLimits::max_per_source)
  bool counted = false;               // counted against the limits (until the application's
                                      // side is over: its end or TIME_WAIT)
  SocketAddress target;               // where it connected to
  SocketAddress local;                // client: our listener; server: our connecting socket
  std::uint16_t nat_port = 0;         // client: the source port P the listener sees
  bool syn_released = false;          // client: the SYN went to the listener (a kernel
                                      // socket used P; it lingers with the flow)
  std::vector<NatKey> keys;
  std::vector<std::uint8_t> held_syn;  // client, kHoldingSyn: the application's SYN
  wire::Header remote_syn_header;      // server, kConnecting: replayed into the table once connected
  wire::SynBody remote_syn;
  PendingWrite out;  // taken from the connection, not yet written to the socket
  TimePoint deadline = kNever;  // connect, accept or linger deadline
  TimerId timer = kNoTimer;     // the loop timer armed at min(deadline, conn->next_expiry())
  TimePoint timer_at = kNever;

 private:
  FlowState state_;
};

}  // namespace buckwild::daemon

// The configured peers ([[peer]]): the PSKs each may use, our discovery
// towards those we initiate to, and which peer a session established as
// responder belongs to.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/socket_address.h"
#include "core/common/time.h"
#include "core/discovery/initiator.h"
#include "core/session/session.h"
#include "core/session/session_state.h"
#include "core/discovery/psk_set.h"
#include "daemon/config/config.h"
#include "daemon/os/sys_error.h"
#include "daemon/os/timer_queue.h"

namespace buckwild::daemon {

struct Peer {
  const PeerConfig* config = nullptr;
  // The one PSK this peer proves (Config: peer_psk_index), which no other
  // listed peer and no peer without an entry may use: a holder of another of
  // our PSKs can never answer for this peer, and a session proving this one
  // is this peer's wherever it comes from.
  std::unique_ptr<discovery::PskSet> psks;
  std::vector<std::size_t> psk_index;  // psks index → our global PSK index (one entry)
  std::optional<discovery::Initiator> initiator;
  TimerId discovery_timer = kNoTimer;  // the initiator's next expiry, or the retry
  // Discovery attempts that failed in a row (no answer within the discovery
  // timeout): the retry waits 2 s, 4 s, 8 s, 16 s, then 30 s each time.
  unsigned discovery_failures = 0;
  // What the peer's session is doing (core/session/session_state.h): the
  // daemon reports to it (Tunnel::report) and acts on what it says.
  session::SessionStateMachine state{session::State::kListening, session::Cause::kAwaitingPeer, 0};
  std::string error_reason;  // why it last went to ERROR, for logs and status
  // The wait before the next attempt of a search for a silent peer (EMERGENCY),
  // drawn (backoff with jitter) when the attempt started.
  Duration retry_wait = 0;
  std::uint64_t session_id = 0;        // its session now, 0 for none
  // Where its newest session came from (kept after the session ends): the
  // frame filter lets this address's discovery past the all-sources cap.
  std::optional<IpAddress> last_address;
  TimePoint session_since = 0;
  bool admin_down = false;  // Tunnel::set_admin_up(name, false)
  TimePoint discovery_started = 0;  // when the current attempt's DISCOVERY left
  // A RESPONSE that came while our session with the peer was silent, held
  // while probes ask that session (Tunnel::restart_check): answered, the
  // path was down and the new session is dropped; unanswered, the peer lost
  // its state (restarted) and the new session replaces the old
  // (docs/protocol.md §11.4).
  struct HeldResponse {
    std::unique_ptr<session::Session> session;
    std::vector<std::uint8_t> confirm;
    SocketAddress source;
    std::size_t psk_index = 0;
    TimePoint until = 0;      // the verdict: no answer by then means a restart
    int probes_left = 0;      // further probes, spread over the hold
    Duration probe_every = 0;
  };
  std::optional<HeldResponse> held;
  TimerId held_timer = kNoTimer;
  // EMERGENCY (docs/protocol.md §11.9): the connections of a session lost at
  // the dead-peer timeout, kept for the next session with this peer
  // (StreamBridge::move_session), for at most another dead-peer timeout.
  std::uint64_t parked_session = 0;
  TimerId parked_timer = kNoTimer;

  // Another worker starts discovery towards it (daemon/tunnel/peer_claims.h):
  // this one still accepts it as responder.
  bool elsewhere = false;

  // Whether we start discovery towards it (and restart it when its session dies).
  bool initiates() const {
    return !admin_down && !elsewhere && config->initiate && config->endpoint.has_value();
  }
};

class Peers {
 public:
  // Each peer bound to its PSK. Fails (EINVAL) with the peer's name and why:
  // its PSK is not configured, another peer proves the same one, or that PSK
  // has allowed_prefixes (it would admit others as this peer).
  static SysResult<Peers> create(const Config& config);

  std::size_t size() const { return peers_.size(); }
  Peer& operator[](std::size_t i) { return *peers_[i]; }
  const Peer& operator[](std::size_t i) const { return *peers_[i]; }

  // The peer a session established as responder belongs to: the one bound
  // to the PSK it proved (our global PSK index). Where it came from plays no
  // part: behind a NAT, other holders share that address. nullopt: the PSK
  // is no listed peer's (a peer without an entry).
  std::optional<std::size_t> identify(std::size_t psk_index) const;

  // The PSKs (global indices) the listed peers prove: the responder's
  // reserved ones (discovery::Responder::set_reserved).
  std::vector<std::size_t> psk_indices() const;

  // The peer whose session is `session_id`, if any.
  Peer* with_session(std::uint64_t session_id);
  // The peer called `name`, if any.
  std::optional<std::size_t> find(std::string_view name) const;

  // A reload keeps a peer that did not change: `kept` (taken from the old
  // Peers with release()) replaces entry i, with its session, its discovery
  // and its timer, and points at entry i's configuration and PSK indices.
  // Its own PSK set stays (the caller checked it holds the same keys).
  void adopt(std::size_t i, std::unique_ptr<Peer> kept);
  std::unique_ptr<Peer> release(std::size_t i) { return std::move(peers_[i]); }

 private:
  Peers() = default;
  std::vector<std::unique_ptr<Peer>> peers_;
};

}  // namespace buckwild::daemon

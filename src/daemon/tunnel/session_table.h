// The established sessions, and the addresses that lead to them: each peer's
// virtual address and routes, and the one address a peer without a [[peer]]
// entry claims inside its PSK's prefixes. Routing an application's packet,
// checking a received packet's inner source, and the rule for two sessions
// with one peer all read this table.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/common/cidr.h"
#include "core/common/ip_address.h"
#include "core/common/socket_address.h"
#include "core/common/time.h"
#include "core/conn/fragmentation.h"
#include "core/session/path_validation.h"
#include "core/session/recovery.h"
#include "core/session/return_paths.h"
#include "core/session/session.h"
#include "daemon/config/config.h"
#include "daemon/net/udp_socket.h"
#include "daemon/os/timer_queue.h"

namespace buckwild::daemon {

// Partial messages one session may hold: a few IP packets in flight at once.
inline constexpr conn::ReassemblyConfig kReassembly{256 * 1024, 32,
                                                    milliseconds(wire::kFragmentTimeoutMs)};

// One session and what the daemon knows about its peer.
struct SessionEntry {
  std::uint64_t id = 0;
  std::unique_ptr<session::Session> session;
  SocketAddress remote;              // the peer's underlay address (port: its discovery port)
  std::optional<std::size_t> peer;   // index into the configured peers, if it has an entry
  std::vector<Cidr> allowed;         // inner source addresses it may use
  std::optional<IpAddress> claimed;  // for a peer without an entry: the address it took
  std::vector<Cidr> claimable;       // ... out of these prefixes (its PSK's)
  std::string psk_id;                // the PSK it proved
  TimePoint established_at = 0;
  std::uint64_t rekeys_logged = 0;  // completed rekeys already logged and audited
  // The socket to send from in the current window (our own current receive
  // port), refreshed whenever the hopping sockets change, so the packet path
  // never computes or allocates it. Null: the discovery socket.
  DatagramSocket* send_via = nullptr;
  std::uint16_t receive_port = 0;  // ... its port, as the last port update computed it
  // As responder: the paths the initiator's datagrams opened (behind NAT the
  // only ones that reach it), and the one we answer along now, refreshed when
  // a datagram arrives on a new path and whenever send_via is. `answer_via`
  // null: no path yet, send to the schedule's port from send_via.
  std::optional<session::ReturnPaths> paths;
  DatagramSocket* answer_via = nullptr;
  SocketAddress answer_to;
  std::uint16_t answer_port = 0;  // our port answer_via is bound to
  // As responder: the peer's address may move (roaming), but only to an
  // address that answered a path challenge (docs/protocol.md §11.6).
  std::optional<session::PathValidation> validation;
  // The session's timer (heartbeats, probes, death) and when it is due.
  TimerId timer = kNoTimer;
  TimePoint timer_at = kNever;
  // Packet-mode TCP through an outage (docs/protocol.md §11.4): the newest
  // segment carrying data, SYN or FIN of each TCP flow (up to
  // kMaxStrandedFlows) sealed as a DATAGRAM while the peer was silent. Sent
  // once more when the peer answers again, so the applications' own TCP
  // resumes within a round trip instead of at its backed-off retransmission
  // timer (Linux: up to 120 s). Empty while the peer answers.
  struct Stranded {
    SocketAddress source;
    SocketAddress destination;
    std::vector<std::uint8_t> packet;  // the inner IP packet
  };
  std::vector<Stranded> stranded;
  // An initiator's traffic in the round trip between its CONFIRM and the
  // responder's first datagram (session::Session::heard): the responder's
  // frame filter would drop it, not knowing the session's ports yet. Up to
  // kMaxHeldUntilHeard packets, in order, sealed and sent when the responder
  // speaks. `header` set: a connection packet (`bytes` its body); else an
  // inner IP packet.
  struct Held {
    std::optional<wire::Header> header;
    std::vector<std::uint8_t> bytes;
  };
  std::vector<Held> held;
  // RESYNC and REKEY as the state machine sees them (Tunnel::track_time_sync,
  // Tunnel::track_rekey; core/session/recovery.h).
  session::ResyncRecovery resync;
  session::RekeyRecovery rekey_recovery;
  // DATAGRAMs larger than the path MTU travel as FRAGMENTs (§11.10, §5.13.13).
  conn::Fragmenter fragmenter;
  conn::Reassembler reassembler{kReassembly};
};

inline constexpr std::size_t kMaxStrandedFlows = 16;
inline constexpr std::size_t kMaxHeldUntilHeard = 64;

// A session id for logs: its first 32 bits in hex and an ellipsis.
std::string short_id(std::uint64_t id);

// Two sessions with one peer established this close together, in opposite
// roles, are a simultaneous start: both sides keep the one with the smaller id.
inline constexpr Duration kSimultaneousWindow = seconds(10);

// What to do with a new session `incoming` when the peer already has `existing`
// (established at `existing_since`): a new one replaces the old (the peer
// restarted), except in a simultaneous start where the old id is smaller.
enum class Succession : std::uint8_t { kReplaceExisting, kKeepExisting };
Succession succession(const SessionEntry& existing, TimePoint existing_since,
                      const session::Session& incoming, TimePoint now);

class SessionTable {
 public:
  explicit SessionTable(const Config* config) : config_(config) {}
  // The configuration a reload put in force (it outlives the table's use of it).
  void set_config(const Config* config) { config_ = config; }

  std::size_t size() const { return by_id_.size(); }
  SessionEntry* find(std::uint64_t id);
  const SessionEntry* find(std::uint64_t id) const;
  std::vector<std::uint64_t> ids() const;
  // Calls f(SessionEntry&) for each session. f must not add or remove sessions.
  template <typename F>
  void for_each(F&& f) {
    for (auto& [id, e] : by_id_) f(*e);
  }

  // Takes the session; `address` is a configured peer's virtual address (it
  // routes to this session from now on), nullopt for a peer without an entry.
  SessionEntry& insert(std::unique_ptr<SessionEntry> entry, std::optional<IpAddress> address);
  // Removes the session and every address that led to it.
  std::unique_ptr<SessionEntry> remove(std::uint64_t id);

  // The session that carries traffic to `destination`: a peer's own virtual
  // address (one hash lookup), else the longest configured route.
  SessionEntry* route(const IpAddress& destination);

  // Whether the session's peer may send from inner address `source`. A peer
  // without an entry claims its first one here, if it lies in its PSK's
  // prefixes and belongs to nobody else (us, a configured peer or its routes,
  // another session).
  bool accept_source(SessionEntry& entry, const IpAddress& source);

  // Whether `address` is ours or a configured peer's (its virtual address or
  // inside one of its routes).
  bool configured_address(const IpAddress& address) const;

  // Sessions with peers that have no [[peer]] entry: how many, and those whose
  // underlay address is `ip`.
  std::size_t unlisted() const;
  std::vector<std::uint64_t> unlisted_from(const IpAddress& ip) const;

 private:
  bool belongs_to_someone(const IpAddress& address) const;

  const Config* config_;
  std::unordered_map<std::uint64_t, std::unique_ptr<SessionEntry>> by_id_;
  std::unordered_map<IpAddress, std::uint64_t> by_address_;  // peer virtual address → session
};

}  // namespace buckwild::daemon

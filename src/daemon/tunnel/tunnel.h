// The running tunnel: discovery, sessions and the packet paths between the
// TUN device and the hopping UDP ports. It owns its parts and wires them:
//
//   peers.h          the configured peers, their PSKs, which peer is this
//   session_table.h  the sessions, routing and inner source addresses
//   hop_ports.h      the ports sessions receive on, window by window
//   ../stream/       transparent TCP (stream mode), as a StreamHost's guest
//
// and its member functions are spread by concern, each file in processing
// order:
//
//   tunnel.cc     creation, start, timers, teardown, what the bridge asks of us
//   outbound.cc   TUN → sealed datagrams to the peers
//   send_queue.cc the turn's sealed datagrams, sent in batches at its end
//   inbound.cc    datagrams → sessions → TUN or connections
//   discovery.cc  discovery as initiator and as responder, session set-up
//   roaming.cc    path validation: a responder's peer moves to a new address
//   recovery.cc   the peers' session state machines: reporting to them, ERROR,
//                 a returning path, RESYNC as time sync runs it, REKEY
//
// Everything reaches the outside world through the interfaces it is given
// (EventLoop, Clock, TunDevice, a socket factory, TcpEndpoints, EbpfPath), so
// two tunnels run in one test process over in-memory fakes, and the real
// daemon (run_daemon.h) wires the same class to epoll, the kernel TUN device,
// UDP and TCP sockets and the eBPF programs.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/crypto/random.h"
#include "core/discovery/responder.h"
#include "core/session/session.h"
#include "core/session/session_state.h"
#include "core/offload/gro_coalesce.h"
#include "daemon/config/config.h"
#include "daemon/ebpf/ebpf_path.h"
#include "daemon/log/security_audit.h"
#include "daemon/log/rate_limited_log.h"
#include "daemon/net/packet_pool.h"
#include "daemon/net/tcp_endpoints.h"
#include "daemon/net/tun_device.h"
#include "daemon/net/udp_socket.h"
#include "daemon/os/clock.h"
#include "daemon/os/event_loop.h"
#include "daemon/stream/bridge.h"
#include "daemon/tunnel/hop_ports.h"
#include "daemon/tunnel/peer_claims.h"
#include "daemon/tunnel/peers.h"
#include "daemon/tunnel/responder_limits.h"
#include "daemon/tunnel/session_table.h"

namespace buckwild::daemon {

class Tunnel;

// What happened to a peer's session, for the daemon's notifications (SNMP
// traps). On the loop's thread, after the log line and the audit record.
struct TunnelEvent {
  enum class Kind : std::uint8_t {
    kSessionUp,       // established; `endpoint` is where the peer is
    kSessionDown,     // ended; `reason` says why
    kRecoveryFailed,  // kRecoveryAttempts discovery attempts in a row went unanswered
  };
  Kind kind;
  std::string peer;  // its name, or its address for a peer without an entry
  std::uint64_t session_id = 0;
  std::optional<SocketAddress> endpoint;
  std::string reason;
};

// Unanswered discovery attempts towards a configured peer after which its
// state is ERROR and a kRecoveryFailed event says so (once; discovery keeps
// trying, every 30 s at most).
inline constexpr std::uint32_t kRecoveryAttempts = session::kMaxAttempts;

struct TunnelDeps {
  EventLoop& loop;     // and its now(): the daemon's one monotonic clock
  const Clock& clock;  // UTC, for the protocol's windows and timestamps
  TunDevice& tun;
  SocketFactory bind_socket;
  TcpEndpoints& tcp;
  crypto::RandomSource& rng;
  // The eBPF receive path; null for the user-space one.
  EbpfPath* ebpf = nullptr;
  // The tunnel cannot go on (its TUN device failed): the owner stops it.
  std::function<void(const SysError&)> on_fatal;
  // The audit trail (docs/architecture.md "The audit log"): sessions
  // established and ended, and counted per source and interval, refused
  // discovery, rejected, unknown-session and spoofed packets. Null for none.
  SecurityAudit* audit = nullptr;
  // Sessions up and down, recovery given up (TunnelEvent). Empty for none.
  std::function<void(const TunnelEvent&)> on_event;
  // Packet buffers, each holding the largest datagram: the batches read and
  // the datagrams queued for sending take them (fewer only in tests, to run
  // the pool out).
  std::size_t pool_buffers = 256;
  // With several workers (docs/architecture.md "Workers"): this tunnel is
  // worker `worker` of `workers`. It looks for the configured peers i with
  // i mod workers == worker, tells the eBPF path their addresses and its
  // sessions' prefixes (TUN steering), and keeps each configured peer to one
  // session across workers through `claims`; `post_to_worker` runs work on
  // another worker's tunnel (ending a session another worker's replaced).
  std::uint32_t worker = 0;
  std::uint32_t workers = 1;
  PeerClaims* claims = nullptr;
  std::function<void(std::uint32_t, std::function<void(Tunnel&)>)> post_to_worker = {};
};

// Counters for logs and status; every drop has a reason.
struct TunnelStats {
  std::uint64_t tun_packets_in = 0;    // read from the TUN device
  std::uint64_t tun_packets_out = 0;   // written to it
  std::uint64_t tun_read_errors = 0;   // reads that failed (the device went away, ...)
  std::uint64_t tun_write_errors = 0;  // packets the kernel refused (queue full, malformed)
  std::uint64_t tun_coalesced_writes = 0;    // GSO writes of coalesced TCP segments
  std::uint64_t tun_coalesced_segments = 0;  // the segments they carried
  std::uint64_t tun_passthrough_writes = 0;    // GSO reads rewritten whole by the stream NAT, written back as one
  std::uint64_t tun_passthrough_segments = 0;  // the segments they carried
  std::uint64_t datagrams_sent = 0;
  std::uint64_t datagrams_received = 0;
  std::uint64_t truncated = 0;         // a datagram longer than our buffers: dropped
  std::uint64_t no_route = 0;          // TUN packet for an address no session serves
  std::uint64_t not_ip = 0;            // TUN packet that is not IPv4/IPv6
  std::uint64_t no_session = 0;        // datagram for an unknown session id
  std::uint64_t rejected = 0;          // failed authentication, replay or freshness
  std::uint64_t spoofed_source = 0;    // inner source address the peer may not use
  std::uint64_t unsupported_type = 0;  // a valid packet of a type this mode does not carry
  std::uint64_t send_errors = 0;
  std::uint64_t sessions_established = 0;
  std::uint64_t sessions_lost = 0;
  std::uint64_t roams = 0;  // sessions whose peer moved to a validated address
  std::uint64_t rekeys = 0;  // rekeys completed, all sessions (docs/protocol.md §9.5)
  // The recovery strategy REKEY (§11.9): runs that ended in a rekey, and
  // runs whose attempts were spent (EMERGENCY took over).
  std::uint64_t rekey_recoveries = 0;
  std::uint64_t rekey_exhausted = 0;
  std::uint64_t pool_exhausted = 0;
  // Packet-mode TCP segments sent again when a silent peer answered (§11.4).
  std::uint64_t stranded_replayed = 0;
  // An initiator's packets held until the responder's first datagram
  // (SessionEntry::held), and those beyond its bound, dropped.
  std::uint64_t held_until_heard = 0;
  std::uint64_t held_dropped = 0;
  // A DISCOVERY_RESPONSE from an address that is no peer's endpoint (no
  // DISCOVERY of ours went there): dropped unread.
  std::uint64_t response_wrong_source = 0;
  // DATAGRAMs larger than their session's path MTU, sent as FRAGMENTs (§11.10).
  std::uint64_t datagrams_fragmented = 0;
  // The send queue (send_queue.cc): sendmmsg calls that sent queued
  // datagrams, and the datagrams they carried (sent or refused).
  std::uint64_t batched_sends = 0;
  std::uint64_t batched_datagrams = 0;
};

// One worker's share of a daemon-wide limit: the limit over the workers,
// rounded up (the workers together may hold a few more than the limit).
template <typename T>
T worker_share(T limit, std::uint32_t workers) {
  return workers <= 1 ? limit : static_cast<T>((limit + workers - 1) / workers);
}

// What a reload changed (docs/control.md "reload").
struct ReloadSummary {
  std::vector<std::string> peers_added, peers_removed, peers_changed;
  std::vector<std::string> psks_added, psks_removed, psks_changed;
  std::vector<std::string> settings_changed;  // "security.max_connections", ...
  std::size_t sessions_ended = 0;
};

class Tunnel : private StreamHost {
 public:
  // Binds the discovery socket, starts discovery towards every peer with
  // `initiate` and an endpoint, and registers its descriptors and timers with
  // deps.loop. `mtu` is the TUN device's MTU (buffers are sized from it).
  // Fails with a message for the operator (port in use, bad PSK set, …).
  static SysResult<std::unique_ptr<Tunnel>> create(const Config& config, std::uint32_t mtu,
                                                   TunnelDeps deps);
  ~Tunnel() override;
  Tunnel(const Tunnel&) = delete;
  Tunnel& operator=(const Tunnel&) = delete;

  const TunnelStats& stats() const { return stats_; }
  const HopPortStats& hop_port_stats() const { return hop_ports_->stats(); }
  // Transparent TCP (stream/bridge.h).
  const StreamStats& stream_stats() const { return bridge_->stats(); }
  std::size_t stream_flows() const { return bridge_->flow_count(); }
  std::size_t stream_buffered_bytes() const { return bridge_->buffered_bytes(); }
  const discovery::ResponderCounters& discovery_counters() const { return responder_->counters(); }
  std::size_t session_count() const { return sessions_.size(); }
  // The established session ids (for tests and status).
  std::vector<std::uint64_t> session_ids() const { return sessions_.ids(); }
  const session::Session* session(std::uint64_t id) const;

  // reload.cc: puts `next` in force, which must stay alive until the tunnel
  // ends or the next reconfigure(). Peers and PSKs are compared by name and
  // id: the sessions of those that did not change carry on untouched; those
  // removed or changed end, new and changed peers are discovered; limits
  // apply at once. Fails, changing nothing, when `next` differs in a key that
  // cannot change while running (config_diff.h) or the eBPF path refused the
  // new rate limits.
  SysResult<ReloadSummary> reconfigure(const Config& next);

  // Ends every session now, each recorded as ended for `why` (the daemon is
  // stopping: the audit trail gets an end for every beginning).
  void end_sessions(const char* why);
  // Another worker established a session with the configured peer `name`:
  // ours with it ends (its connections are reset: they were on this worker).
  void peer_moved(const std::string& name);

  // Our time was stepped by `step_us` (the NTP client; a slew needs nothing):
  // sessions move their peer clock offsets and re-measure them, the ports
  // follow the new window at once.
  void on_clock_step(std::int64_t step_us);
  // A peer's administrative state (SNMP bwPeerAdminState): down ends its
  // session and keeps it from discovering, or being accepted, until set up
  // again. Kept across reloads that leave the peer's entry unchanged; not
  // across restarts. False when no [[peer]] is called `name`.
  bool set_admin_up(std::string_view name, bool up);
  // Its administrative state; nullopt when no [[peer]] is called `name`.
  std::optional<bool> admin_up(std::string_view name) const;

  // status.cc: this tunnel's part of the status document (docs/control.md
  // "status"): window, ports, counters, drops, discovery, transparent TCP and
  // the peers with their sessions.
  nlohmann::json status();
  // The control request "rekey PEER" (docs/control.md): PEER is a configured
  // peer's name or a session id as status shows it (8 hex digits). Asks the
  // session for a rekey and returns the reply object: {"ok":true,"rekey":{…}}
  // or {"ok":false,"error":…}.
  nlohmann::json request_rekey(std::string_view who);

 private:
  Tunnel(const Config& config, std::uint32_t mtu, TunnelDeps deps, discovery::PskSet psks,
         Peers peers);
  SysResult<void> start();

  // tunnel.cc: time.
  void schedule_window();
  void on_window();
  // Tells the frame filter the configured peers' addresses (EbpfPath::
  // set_peer_sources): their endpoints and where their sessions came from.
  void update_peer_sources();
  // With several workers: the prefixes this tunnel's sessions serve, to the
  // TUN queue steering (EbpfPath::set_tun_routes).
  void update_tun_routes();
  // Peer i is looked for by another worker.
  bool elsewhere(std::size_t peer) const { return workers_ > 1 && peer % workers_ != worker_; }
  void list_port_needs(std::vector<PortNeed>& out);
  void choose_send_sockets();
  void choose_answer_path(SessionEntry& e);
  void arm_session_timer(SessionEntry& e);
  void on_session_timer(std::uint64_t id);
  void arm_responder_timer();

  // outbound.cc: TUN → peers.
  void on_tun_readable(std::uint32_t events);
  void on_tun_failed(const SysError& error);
  // Where a session packet goes, and the socket it leaves from.
  struct Path {
    DatagramSocket* via;
    SocketAddress to;
  };
  Path path_of(SessionEntry& e, std::uint16_t conn);
  void send_sealed(SessionEntry& e, Bytes datagram);
  void send_path_keepalives();
  // A probe asks for an answer at once; kAnswer answers one.
  enum class Heartbeat : std::uint8_t { kRegular, kProbe, kAnswer };
  void send_heartbeat(SessionEntry& e, Heartbeat kind);
  // Packet mode, peer silent: keeps `ip` if it is a TCP segment that carries
  // something (SessionEntry::stranded); replay_stranded sends those again.
  void keep_stranded(SessionEntry& e, Bytes ip);
  void replay_stranded(SessionEntry& e);
  // An initiator's session the responder has not answered yet: `bytes` (an
  // IP packet, or a connection packet's body with `header`) waits for it;
  // send_held sends what waited when the answer comes.
  void hold_until_heard(SessionEntry& e, const wire::Header* header, Bytes bytes);
  void send_held(SessionEntry& e);
  void send_sequence_confirm(SessionEntry& e);
  void send_time_sync_request(SessionEntry& e);
  // Sends the REKEY message the session owes (docs/protocol.md §9.5), and
  // logs and audits each rekey the session completed since the last call.
  void send_rekey(SessionEntry& e);
  void note_rekeys(SessionEntry& e);
  void send_time_sync_response(SessionEntry& e, const wire::TimeSyncRequestBody& request);
  void send_discovery(Bytes datagram, const SocketAddress& to);
  // Sends one datagram now, after what the send queue holds (flush_sends).
  void send_one(DatagramSocket& via, const OutgoingDatagram& datagram);

  // send_queue.cc: the datagrams sealed during a turn (TUN packets,
  // connection packets, held and stranded ones) wait in pool buffers and
  // leave at the end of the turn (the loop's turn-end callback), one
  // send_batch per socket; sooner when kSendQueueBound wait or the pool runs
  // out. Per destination they leave in the order queued.
  static constexpr std::size_t kSendQueueBound = 64;  // a sendmmsg, a GSO run
  void queue_datagram(PacketPool::Buffer datagram, const Path& path);
  // Sends everything queued. Before a socket the queue may name closes
  // (HopPorts' on_updated), and before a datagram sent at once.
  void flush_sends();
  // A pool buffer, flushing the queue to free some if there is none; an
  // empty handle when the pool is still out.
  PacketPool::Buffer acquire_buffer();

  // path_mtu.cc: the path MTU search's packets, and what its result changes.
  void send_pmtu_probe(SessionEntry& e, const session::PmtuSearch::Probe& probe);
  void send_pmtu_ack(SessionEntry& e, const wire::PmtuAckBody& ack);
  void on_pmtu_changed(SessionEntry& e);
  // The session's path MTU on the underlay (its datagram size plus UDP and IP headers).
  std::size_t path_mtu(const SessionEntry& e) const;
  // Sends the IP packet `ip`, too large for one datagram on the path, as FRAGMENTs.
  void send_fragmented(SessionEntry& e, Bytes ip);
  void on_fragment(SessionEntry& e, const wire::Header& header, Bytes payload);

  // inbound.cc: peers → TUN or connections.
  enum class Arrival : std::uint8_t { kHoppingSocket, kDiscoverySocket };
  void on_socket_readable(DatagramSocket& socket, Arrival arrival);
  enum class SentTo : std::uint8_t { kHoppingPort, kDiscoveryPort };
  // When a datagram arrived (its kernel receive stamp) on both our clocks.
  struct ArrivedAt {
    TimePoint mono = 0;
    std::int64_t unix_ms = 0;
  };
  void on_datagram(MutableBytes datagram, const SocketAddress& source, SentTo sent_to,
                   std::uint16_t local_port, const ArrivedAt& at);
  void on_session_packet(SessionEntry& e, MutableBytes datagram, const SocketAddress& source,
                         std::uint16_t local_port, const ArrivedAt& at);
  void write_tun(Bytes ip_packet) override;
  void write_tun_gso(const offload::VnetHeader& header, Bytes ip_packet,
                     std::size_t segments) override;
  // Writes what the coalescer holds (GRO: one GSO write for a run of TCP
  // segments) and empties it.
  void flush_tun();
  // Writes one packet, or a GSO packet with its vnet header, counting
  // `segments` packets out (or refused). True if the kernel took it.
  bool write_tun_now(Bytes packet, const offload::VnetHeader* header, std::size_t segments);
  // A DATAGRAM's IP packet (or one reassembled from FRAGMENTs): to the TUN
  // device if its inner source is one the peer may use.
  void deliver_datagram(SessionEntry& e, Bytes ip_packet);

  // roaming.cc: path validation and roaming (docs/protocol.md §11.6).
  void challenge_path(SessionEntry& e, std::size_t size, const SocketAddress& source,
                      std::uint16_t local_port);
  void answer_path_challenge(SessionEntry& e, const wire::Body& body);
  void on_path_response(SessionEntry& e, const wire::Body& body, const SocketAddress& source,
                        std::uint16_t local_port);
  void roam(SessionEntry& e, const SocketAddress& source, std::uint16_t local_port);

  // recovery.cc: the state machines (core/session/session_state.h).
  // Applies `cause` to the peer's machine and logs the change; entering
  // ERROR logs `reason`, records it and raises kRecoveryFailed.
  void report(Peer& p, session::Cause cause, std::string_view reason = {});
  // The wait before the next attempt of `s`, jittered from rng_.
  Duration next_backoff(session::Strategy s, int attempt);
  // A datagram came from `source` outside any session: a peer we are
  // waiting to retry towards is asked again now (its path returned).
  void on_path_activity(const SocketAddress& source);
  // After the session's time sync moved: RESYNC started, an attempt, given
  // up or done, reported to the peer's machine.
  void track_time_sync(SessionEntry& e);
  // After the session's keys took a step: REKEY started (an exchange of ours
  // abandoned), an attempt failed, spent (EMERGENCY: the session ends, its
  // connections kept, discovery anew) or recovered; schedules the next
  // attempt. False when the session was removed.
  bool track_rekey(SessionEntry& e);
  // EMERGENCY: `id`'s connections wait for the peer's next session (at most
  // a dead-peer timeout, then they are reset); adopt_connections hands them
  // to `id`, a new session with the peer.
  void park_connections(Peer& p, std::uint64_t id);
  void adopt_connections(Peer& p, SessionEntry& e);
  void drop_parked(Peer& p);

  // discovery.cc: both roles, and sessions coming and going.
  bool looking_for(const Peer& p) const;
  // `retry`: a further attempt of a search under way (not logged again).
  void start_discovery(Peer& p, bool retry = false);
  void on_held_response(Peer& p);
  void arm_held_timer(Peer& p, TimePoint at);
  void drop_held(Peer& p);
  void on_peer_back(SessionEntry& e);
  void arm_discovery_timer(Peer& p);
  void on_discovery_timer(Peer& p);
  void on_discovery(Bytes datagram, const SocketAddress& source);
  void on_response(Bytes datagram, const SocketAddress& source, const ArrivedAt& at);
  void on_confirm(Bytes datagram, const SocketAddress& source, const ArrivedAt& at);
  void on_sequence_confirm(SessionEntry& e, const wire::Body& body);
  void add_session(std::unique_ptr<session::Session> s, const SocketAddress& remote,
                   std::optional<std::size_t> peer, std::size_t psk_index);
  // kReset resets the session's connections; kKeep parks them with its
  // peer for the next session (EMERGENCY, park_connections).
  enum class Connections : std::uint8_t { kReset, kKeep };
  void remove_session(std::uint64_t id, const char* why, Connections c = Connections::kReset);
  void audit(std::string_view event, const SessionEntry& e, std::string_view severity,
             const nlohmann::json& details);
  // Counts a refused or dropped datagram from `source` for the audit trail.
  // on_event_ for a session's peer, when there is one to tell.
  // The name status and SNMP know a session's peer by: its [[peer]] name, or
  // for a peer without an entry the address it claimed (else where it is).
  std::string peer_name(const SessionEntry& e) const;
  void notify(TunnelEvent::Kind kind, const SessionEntry& e, std::string_view reason);
  void recovery_failed(const Peer& p, std::string_view reason);
  void audit_drop(std::string_view event, const SocketAddress& source, std::string_view reason);

  // StreamHost (tunnel.cc, outbound.cc). A connection packet is built in a
  // pool buffer (staged_), sealed there and queued; with the pool out, in
  // unpooled_, and sent at once.
  std::uint64_t session_for(const IpAddress& destination) override;
  bool source_allowed(std::uint64_t session, const IpAddress& source) override;
  MutableBytes connection_packet_buffer() override;
  void send_connection_packet(std::uint64_t session, wire::Header& header, MutableBytes packet,
                              std::size_t body_len) override;
  void connections_changed(std::uint64_t session) override;
  void nat_rule_added(const NatKey& key, const NatRule& rule) override;
  void nat_rule_removed(const NatKey& key) override;

  // Both clocks as the core is handed them. While a batch is handled they
  // are the batch's reading (BatchClock): every packet of a read is stamped
  // with the same instant, not two clock reads of its own.
  std::int64_t unix_ms() const { return batch_time_ ? batch_time_->unix_ms : clock_.unix_ms(); }
  TimePoint now() const { return batch_time_ ? batch_time_->mono : loop_.now(); }
  struct Instant {
    TimePoint mono;
    std::int64_t unix_ms;
  };
  // Sets the batch time for a handler's scope and restores the enclosing
  // one's at its end (a handler may run inside another: a closing socket
  // drained inside an update). read() takes a new reading: after each read
  // from the device or a socket, and every 64 datagrams of a large one.
  class BatchClock {
   public:
    explicit BatchClock(Tunnel& t) : t_(t), outer_(t.batch_time_) { read(); }
    ~BatchClock() { t_.batch_time_ = outer_; }
    BatchClock(const BatchClock&) = delete;
    BatchClock& operator=(const BatchClock&) = delete;
    void read() { t_.batch_time_ = Instant{t_.loop_.now(), t_.clock_.unix_ms()}; }

   private:
    Tunnel& t_;
    std::optional<Instant> outer_;
  };
  std::optional<Instant> batch_time_;

  const Config* config_;  // the running configuration (reconfigure() swaps it)
  EventLoop& loop_;
  const Clock& clock_;
  TunDevice& tun_;
  TcpEndpoints& tcp_;
  crypto::RandomSource& rng_;
  EbpfPath* ebpf_;
  std::uint32_t worker_;
  std::uint32_t workers_;
  PeerClaims* claims_;
  std::function<void(std::uint32_t, std::function<void(Tunnel&)>)> post_to_worker_;
  std::function<void(const SysError&)> on_fatal_;
  SecurityAudit* audit_;
  std::function<void(const TunnelEvent&)> on_event_;
  discovery::PskSet psks_;
  Peers peers_;
  std::uint16_t offered_features_ = 0;
  std::unique_ptr<discovery::Responder> responder_;
  session::SessionConfig session_config_;
  std::uint32_t mtu_;
  PacketPool pool_;
  RateLimitedLog warn_log_;
  TunnelStats stats_;
  std::vector<IpAddress> peer_sources_;  // update_peer_sources's scratch

  // The send queue (send_queue.cc), after pool_: its buffers go back first.
  struct Queued {
    PacketPool::Buffer datagram;
    DatagramSocket* via;
    SocketAddress to;
  };
  std::vector<Queued> queued_;
  TurnEndId turn_end_ = 0;
  // Where the stream bridge builds its next connection packet: a pool buffer
  // held until it is sent or the turn ends; unpooled_ when the pool is out.
  PacketPool::Buffer staged_;
  std::array<std::uint8_t, wire::kMaxDatagramSize> unpooled_{};

  SessionTable sessions_;
  std::unique_ptr<DatagramSocket> discovery_socket_;
  std::unique_ptr<HopPorts> hop_ports_;
  std::unique_ptr<StreamBridge> bridge_;
  SocketFactory bind_socket_;
  bool tun_watched_ = false;
  // GRO on the way into the TUN: while a handler runs with coalescing_ set,
  // write_tun() adds packets to coalescer_, written at its end (flush_tun).
  offload::GroCoalescer coalescer_;
  bool coalescing_ = false;
  // Receive buffers for sockets whose reads coalesce (UDP GRO,
  // inbound.cc): kGroSlots reads of up to 64 KiB each, one arena per
  // on_socket_readable running at once (at most kGroArenas; deeper ones read
  // into pool buffers), made on first use.
  static constexpr std::size_t kGroSlots = 32;
  static constexpr std::size_t kGroSlotBytes = 65536;
  static constexpr std::size_t kGroArenas = 3;
  std::vector<std::unique_ptr<std::uint8_t[]>> gro_arenas_;
  std::size_t receiving_ = 0;  // on_socket_readable calls running now
  TimerId window_timer_ = kNoTimer;
  TimerId keepalive_timer_ = kNoTimer;
  TimerId responder_timer_ = kNoTimer;
  // The rest of a split TSO read the device holds when a turn ended short of
  // pool buffers: it does not make the descriptor readable again, so a timer
  // takes the next turn (on_tun_readable).
  TimerId tun_pending_timer_ = kNoTimer;
};

}  // namespace buckwild::daemon

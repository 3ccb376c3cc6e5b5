// Transparent TCP (stream mode, docs/architecture.md "Transparent TCP"):
// applications' TCP connections end in the daemons and each travels between
// them as one Buckwild connection (core/conn), with reliability, flow control
// and congestion control done by the daemons.
//
// No user-space TCP stack: the kernel terminates the application's TCP on both
// hosts, steered by a small NAT on the virtual interface.
//
//   Client host (the application connects to D:dp through the tunnel):
//     app A:X -> D:dp    read from TUN, held until the far side has connected;
//                        then rewritten to D:P -> V:L and written back: the
//                        daemon's listener V:L accepts it (P is ours, unique)
//     V:L -> D:P         the listener's replies, rewritten to D:dp -> A:X
//   Server host (the peer's application asked for D:dp):
//     the daemon binds V:E and connects to A:X; its SYN, read from TUN, is
//     rewritten to A:X -> D:dp and written back, so the server sees the
//     application's own address
//     D:dp -> A:X        the server's replies, rewritten to A:X -> V:E
//
// V is this host's virtual address (of the packet's family). A refused or
// unreachable destination on the far side comes back as an RST with a reason,
// and the held SYN is answered with a TCP RST: the application sees
// "connection refused" within one round trip.
//
// The parts, one concern each:
//   nat_table.h        the 4-tuple keys and rewrite rules, ports P, per-source counts
//   flow.h             one flow and its state machine
//   byte_pump.h        bytes between a socket and a connection (the flow control)
//   stream_listener.h  the listener on the virtual address, paused when out of descriptors
//   tcp_endpoints.h    the kernel sockets, behind an interface (fakes in testing/)
//   bridge.cc          sessions, servicing a flow, its timer, its end
//   tun_side.cc        segments from the TUN device; client flows opening; accepting
//   peer_side.cc       connection packets from the peer; server flows connecting
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "core/common/bytes.h"
#include "core/common/socket_address.h"
#include "core/common/time.h"
#include "core/conn/connection_table.h"
#include "core/conn/memory_budget.h"
#include "core/crypto/random.h"
#include "core/inner/tcp_segment.h"
#include "core/offload/gso_split.h"
#include "core/wire/messages.h"
#include "daemon/log/rate_limited_log.h"
#include "daemon/os/event_loop.h"
#include "daemon/os/sys_error.h"
#include "daemon/stream/flow.h"
#include "daemon/stream/nat_table.h"
#include "daemon/stream/stream_listener.h"
#include "daemon/net/tcp_endpoints.h"

namespace buckwild::daemon {

// What the bridge needs from the tunnel that owns it.
class StreamHost {
 public:
  virtual ~StreamHost() = default;
  // The session that carries traffic to `destination`, or 0.
  virtual std::uint64_t session_for(const IpAddress& destination) = 0;
  // Whether the session's peer may use `source` as an inner source address.
  virtual bool source_allowed(std::uint64_t session, const IpAddress& source) = 0;
  // Where the next connection packet is built: wire::kMaxDatagramSize bytes,
  // the header's room first, the body after it. The host's send buffer, so
  // the packet is sealed and queued where it was built, not copied. Valid
  // until send_connection_packet() takes it, or the event loop's turn ends;
  // asked again for each packet.
  virtual MutableBytes connection_packet_buffer() = 0;
  // Seals and sends a connection packet whose header fields the connection
  // filled and whose body is at packet[44, 44 + body_len); `packet` is best
  // the span connection_packet_buffer() returned (any other is copied).
  virtual void send_connection_packet(std::uint64_t session, wire::Header& header,
                                      MutableBytes packet, std::size_t body_len) = 0;
  virtual void write_tun(Bytes ip_packet) = 0;
  // Writes a TCP GSO super-packet (`segments` segments) with its vnet header,
  // after whatever write_tun() took before it.
  virtual void write_tun_gso(const offload::VnetHeader& header, Bytes ip_packet,
                             std::size_t segments) = 0;
  // A session's set of connection ids changed: open or close their ports.
  virtual void connections_changed(std::uint64_t session) = 0;
  // One direction of a flow's NAT was installed (`key` now becomes `rule`),
  // or removed: the kernel may do the rewrite too (EbpfPath::set_nat_rule),
  // so that the flow's segments other than SYN and RST skip the daemon.
  virtual void nat_rule_added(const NatKey& key, const NatRule& rule) = 0;
  virtual void nat_rule_removed(const NatKey& key) = 0;
};

struct StreamLimits {
  std::size_t max_flows = 4096;       // in total
  std::size_t max_per_source = 100;   // per application address
  Duration connect_timeout = seconds(20);  // far side: the server must answer by then;
                                           // client side: the listener must accept by then
  Duration linger = seconds(60);      // NAT keys kept after a flow ends, for late segments
  std::size_t nat_ports = NatTable::kPorts;  // ports P for client flows (fewer only in tests)
  std::size_t memory = std::size_t{512} << 20;  // all connections' buffers (memory_budget.h)
};

struct StreamStats {
  std::uint64_t opened = 0;           // flows started by an application here
  std::uint64_t accepted = 0;         // flows the peer asked for and we connected
  std::uint64_t refused = 0;          // refused here or by the far side
  std::uint64_t limit_refusals = 0;
  std::uint64_t resets = 0;           // flows that ended in a reset
  std::uint64_t completed = 0;        // flows that ended with both FINs
  std::uint64_t rewritten = 0;        // segments rewritten and written back
  std::uint64_t rewritten_whole = 0;  // of them, GSO super-packets rewritten whole (one each)
  std::uint64_t bytes_up = 0;         // from local sockets into connections
  std::uint64_t bytes_down = 0;       // from connections into local sockets
  std::uint64_t spoofed_targets = 0;  // a SYN naming a source the peer may not use
  std::uint64_t ports_reclaimed = 0;  // ports P taken back early from flows that were over
  ListenerStats listener;             // accept() failures (stream_listener.h)
};

// Which end of its session this daemon is: picks the parity of the
// connection ids it opens (core/conn/connection_table.h).
enum class SessionRole : std::uint8_t { kInitiator, kResponder };

class StreamBridge {
 public:
  struct Options {
    std::optional<IpAddress> virtual_v4;
    std::optional<IpAddress> virtual_v6;
    conn::ConnectionConfig connection;  // template (mss, buffers, ...)
    StreamLimits limits;
    bool open_local = true;  // stream mode: carry this host's applications' TCP
  };

  // Opens the listeners (one per configured family). Fails with the socket
  // error, for the operator.
  static SysResult<std::unique_ptr<StreamBridge>> create(const Options& options, StreamHost& host,
                                                         EventLoop& loop, TcpEndpoints& tcp,
                                                         crypto::RandomSource& rng);
  ~StreamBridge();
  StreamBridge(const StreamBridge&) = delete;
  StreamBridge& operator=(const StreamBridge&) = delete;

  // A TCP segment read from the TUN device. True if the bridge consumed it
  // (rewritten and written back, held, answered or dropped); false if it is
  // not the bridge's and should travel as a DATAGRAM.
  bool on_tun_segment(MutableBytes ip_packet);
  // A TCP GSO super-packet read from the TUN device whole (`header` as read,
  // `segments` the packets it splits into). If it belongs to a flow the NAT
  // rewrites, it is rewritten once as a whole, the checksum field by what
  // `header` says it holds, and written back with the same header
  // (StreamHost::write_tun_gso): true. False, unchanged, for anything else
  // (not a NAT'd flow, an opening or held flow, an RST or SYN): the caller
  // splits it and hands the segments to on_tun_segment().
  bool on_tun_gso(const offload::VnetHeader& header, MutableBytes ip_packet, std::size_t segments);

  // An authenticated connection packet (connection id != 0) of `session`.
  void on_connection_packet(std::uint64_t session, const wire::Header& header, const wire::Body& body);
  // Runs what the packets since the last call made due (socket writes,
  // acknowledgments). Call after each received batch.
  void flush();

  // A session came up / went away (its flows are reset, their applications
  // get an RST).
  void add_session(std::uint64_t session, SessionRole role);
  // The session's path MTU changed: connections opened from now on send
  // segments of at most `bytes` payload (docs/protocol.md §11.10).
  void set_send_mss(std::uint64_t session, std::size_t bytes);
  void remove_session(std::uint64_t session);
  // EMERGENCY (docs/protocol.md §11.9): a new session with the same peer takes
  // over `from`'s connection table and flows as they are (their ids, sequence
  // state and sockets), instead of resetting them. A peer that lost its state
  // answers their next packets with RST. False, changing nothing, when `from`
  // has no table or `to` already has connections.
  bool move_session(std::uint64_t from, std::uint64_t to);
  // `session` heard from its peer again after an outage (docs/protocol.md
  // §11.4): its connections whose retransmissions backed off resend now
  // rather than at the backed-off deadline (up to a minute away). Returns how
  // many connections resent.
  std::size_t on_peer_back(std::uint64_t session);
  // The connection ids whose ports `session` must listen on: the live ones,
  // and those that ended in the last kEndedPortsLinger (up to
  // kMaxEndedListed a session): the peer's packets sent before it learned of
  // the end are still in flight, and reach the connection table (which
  // answers or drops them, counted) rather than the frame filter, which
  // would report each as a stranger's datagram to a bad port.
  void connection_ids(std::uint64_t session, std::vector<std::uint16_t>& out) const;
  static constexpr Duration kEndedPortsLinger = seconds(2);
  static constexpr std::size_t kMaxEndedListed = 64;

  // New flow limits (a configuration reload): they govern the flows admitted
  // from now on; flows already over a lowered limit are left to finish.
  void set_limits(std::size_t max_flows, std::size_t max_per_source);
  // A new memory budget for all connections' buffers (bytes).
  void set_memory_limit(std::size_t bytes) { memory_.set_limit(bytes); }
  const conn::MemoryBudget& memory() const { return memory_; }
  // The largest window a connection's send and receive buffers grow to.
  std::size_t max_window() const { return options_.connection.receive_buffer; }

  // What status reports of one session's connections.
  struct SessionConnections {
    std::size_t live = 0;
    std::uint64_t retransmissions = 0;  // by its connections, ended ones included
    std::optional<Duration> min_rtt;    // the smallest smoothed RTT of the live ones
  };
  SessionConnections session_connections(std::uint64_t session) const;
  // One live connection of a session as `status` shows it: what `ss -ti`
  // shows of a kernel TCP socket.
  struct ConnectionView {
    std::uint16_t id = 0;
    const conn::Connection* conn = nullptr;
    const SocketAddress* app = nullptr;     // the application's end; null without a flow
    const SocketAddress* target = nullptr;  // where it connected to; null without a flow
    bool client = false;                    // the application connected on this side
  };
  // The session's live connections, by id.
  std::vector<ConnectionView> connections(std::uint64_t session) const;

  const StreamStats& stats() const { return stats_; }
  // Flows, lingering ones included.
  std::size_t flow_count() const { return flows_.size(); }
  // Bytes held in connections' buffers and pending socket writes.
  std::size_t buffered_bytes() const;
  // The port of the listener for addresses of `address`'s family; 0 if none.
  std::uint16_t listener_port(const IpAddress& address) const;

 private:
  // One session's connection table and its live flows by connection id.
  struct Streams {
    std::uint64_t session = 0;
    std::unique_ptr<conn::ConnectionTable> table;
    std::unordered_map<std::uint16_t, FlowId> by_conn;
    std::uint64_t retransmissions_ended = 0;  // by connections already removed
    // Connections removed, oldest first, and until when their ports stay.
    std::deque<std::pair<std::uint16_t, TimePoint>> ended;
  };
  // Removes connection `id` from `st`'s table, keeping its retransmissions.
  void remove_connection(Streams& st, std::uint16_t id, TimePoint now);
  enum class Ending : std::uint8_t {
    kGraceful,  // both FINs went through
    kAbortive,  // the socket closes with an RST and the connection is reset
  };

  StreamBridge(const Options& options, StreamHost& host, EventLoop& loop, TcpEndpoints& tcp,
               crypto::RandomSource& rng);
  SysResult<std::unique_ptr<StreamListener>> listen(const IpAddress& address);
  Streams* streams(std::uint64_t session);
  StreamListener* listener_for(const IpAddress& address) const;

  // bridge.cc: a flow from start to end.
  Flow& add_flow(std::unique_ptr<Flow> flow);  // counts it
  // Adds the key `k` -> (source, destination) to `f`; a flow that is over and
  // held the key gives way at once.
  void install_key(Flow& f, const NatKey& k, const SocketAddress& source, const SocketAddress& destination);
  void service(Flow& f);
  void pump(Flow& f);
  void transmit(Flow& f);
  void handle_events(Flow& f);
  void update_interest(Flow& f);
  void arm_timer(Flow& f);
  void on_flow_timer(FlowId id);
  void abort(Flow& f);                   // kReset: waits for the connection to close
  void finish(Flow& f, Ending ending);   // kEnded: lingers
  void destroy(FlowId id);

  // tun_side.cc: the application's side of client flows, and rewriting.
  void open_flow(MutableBytes ip_packet, const inner::TcpSegment& s);
  // A port P for a new client flow; when all are held, the flow that ended
  // first gives its up.
  std::optional<std::uint16_t> allocate_port(FlowId id);
  void answer_with_rst(const inner::TcpSegment& s);
  void refuse_held_syn(Flow& f);
  void release_held_syn(Flow& f);
  void on_accepted(TcpListener::Accepted accepted);

  // peer_side.cc: server flows, asked for by the peer.
  void on_remote_syn(Streams& st, const wire::Header& h, const wire::SynBody& syn);
  void on_connect_done(FlowId id);
  void refuse_remote(std::uint64_t session, std::uint16_t conn_id, ErrorCode reason);

  conn::MemoryBudget memory_;  // before options_: its connection template points here
  Options options_;
  StreamHost& host_;
  EventLoop& loop_;
  TcpEndpoints& tcp_;
  crypto::RandomSource& rng_;
  RateLimitedLog log_;
  StreamStats stats_;
  std::unique_ptr<StreamListener> listener4_;
  std::unique_ptr<StreamListener> listener6_;

  std::unordered_map<std::uint64_t, std::unique_ptr<Streams>> sessions_;
  std::unordered_map<FlowId, std::unique_ptr<Flow>> flows_;
  NatTable nat_;
  FlowId next_flow_id_ = 1;
  std::vector<FlowId> dirty_;  // touched by packets since the last flush()
  std::deque<FlowId> lingering_;  // client flows over and holding P, in the order they ended

  std::vector<std::uint8_t> scratch_;  // one socket read
};

}  // namespace buckwild::daemon

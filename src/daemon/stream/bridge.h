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
// V is this host's virtual address (of the packet's family). Every rewrite is
// one hash lookup on the packet's 4-tuple; each flow owns two keys. A refused
// or unreachable destination on the far side comes back as an RST with a
// reason, and the held SYN is answered with a TCP RST: the application sees
// "connection refused" within one round trip. Bytes move between the kernel
// socket and the Connection only as fast as the other side takes them, so a
// slow reader stops the far writer through the windows, and each daemon holds
// at most the Connection's buffers (plus one read chunk) per flow.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>
#include <vector>

#include "core/common/bytes.h"
#include "core/common/time.h"
#include "core/conn/connection_table.h"
#include "core/crypto/random.h"
#include "core/wire/messages.h"
#include "daemon/os/event_loop.h"
#include "core/common/socket_address.h"
#include "daemon/os/sys_error.h"
#include "core/inner/tcp_segment.h"
#include "daemon/stream/tcp_endpoints.h"

namespace buckwild::daemon {

// What the bridge needs from the tunnel that owns it.
class StreamHost {
 public:
  virtual ~StreamHost() = default;
  // The session that carries traffic to `destination`, or 0.
  virtual std::uint64_t session_for(const IpAddress& destination) = 0;
  // Whether the session's peer may use `source` as an inner source address.
  virtual bool source_allowed(std::uint64_t session, const IpAddress& source) = 0;
  // Seals and sends a connection packet whose header fields the connection
  // filled and whose body is at packet[44, 44 + body_len).
  virtual void send_connection_packet(std::uint64_t session, wire::Header& header,
                                      MutableBytes packet, std::size_t body_len) = 0;
  virtual void write_tun(Bytes ip_packet) = 0;
  // A session's set of connection ids changed: open or close their ports.
  virtual void connections_changed(std::uint64_t session) = 0;
};

struct StreamLimits {
  std::size_t max_flows = 4096;       // in total
  std::size_t max_per_source = 100;   // per application address
  Duration connect_timeout = seconds(20);  // far side: the server must answer by then
  Duration linger = seconds(60);      // NAT keys kept after a flow ends, for late segments
};

struct StreamStats {
  std::uint64_t opened = 0;           // flows started by an application here
  std::uint64_t accepted = 0;         // flows the peer asked for and we connected
  std::uint64_t refused = 0;          // refused here or by the far side
  std::uint64_t limit_refusals = 0;
  std::uint64_t resets = 0;           // flows that ended in a reset
  std::uint64_t completed = 0;        // flows that ended with both FINs
  std::uint64_t rewritten = 0;        // segments rewritten and written back
  std::uint64_t bytes_up = 0;         // from local sockets into connections
  std::uint64_t bytes_down = 0;       // from connections into local sockets
  std::uint64_t spoofed_targets = 0;  // a SYN naming a source the peer may not use
};

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

  // A TCP segment read from the TUN device. True if the bridge consumed it
  // (rewritten and written back, held, answered or dropped); false if it is
  // not the bridge's and should travel as a DATAGRAM.
  bool on_tun_segment(MutableBytes ip_packet);

  // An authenticated connection packet (connection id != 0) of `session`.
  void on_connection_packet(std::uint64_t session, const wire::Header& header, const wire::Body& body);
  // Runs what the packets since the last call made due (socket writes,
  // acknowledgments). Call after each received batch.
  void flush();

  void add_session(std::uint64_t session, bool initiator);
  void remove_session(std::uint64_t session);
  // The connection ids whose ports `session` must listen on.
  void connection_ids(std::uint64_t session, std::vector<std::uint16_t>& out) const;

  // Expires connect and linger deadlines; call periodically.
  void housekeeping();

  const StreamStats& stats() const { return stats_; }
  std::size_t flow_count() const { return flows_.size(); }
  // Bytes held in connections' buffers and pending socket writes.
  std::size_t buffered_bytes() const;

 private:
  struct Flow;
  struct Streams;
  struct Key {
    SocketAddress source;
    SocketAddress destination;
    friend bool operator==(const Key&, const Key&) = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept;
  };
  struct Rule {
    std::uint64_t flow = 0;
    SocketAddress source;  // what the segment's addresses become
    SocketAddress destination;
  };

  StreamBridge(const Options& options, StreamHost& host, EventLoop& loop, TcpEndpoints& tcp,
               crypto::RandomSource& rng);
  SysResult<std::unique_ptr<TcpListener>> listen(const IpAddress& address);

  // Client side.
  void open_flow(MutableBytes ip_packet, const inner::TcpSegment& s);
  void on_listener_readable(TcpListener& listener);
  void answer_with_rst(const inner::TcpSegment& s);
  // Server side.
  void on_remote_syn(Streams& st, const wire::Header& h, const wire::SynBody& syn);
  void on_connect_done(std::uint64_t flow_id);
  void refuse_remote(std::uint64_t session, std::uint16_t conn_id, ErrorCode reason);

  // Both.
  void service(Flow& f);
  void pump_socket_to_connection(Flow& f);
  void pump_connection_to_socket(Flow& f);
  void transmit(Flow& f);
  void handle_events(Flow& f);
  void update_interest(Flow& f);
  void schedule(Flow& f);
  void on_timer();
  void finish(Flow& f, bool abort);
  void destroy(std::uint64_t flow_id);
  void add_key(const Key& k, const Rule& r);
  bool within_limits(const IpAddress& source) const;
  Streams* streams(std::uint64_t session);

  Options options_;
  StreamHost& host_;
  EventLoop& loop_;
  TcpEndpoints& tcp_;
  crypto::RandomSource& rng_;
  std::unique_ptr<TcpListener> listener4_;
  std::unique_ptr<TcpListener> listener6_;

  std::unordered_map<std::uint64_t, std::unique_ptr<Streams>> sessions_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Flow>> flows_;
  std::unordered_map<Key, Rule, KeyHash> rules_;
  std::unordered_map<std::uint16_t, std::uint64_t> by_nat_port_;  // client side: P -> flow
  std::unordered_map<IpAddress, std::size_t> per_source_;
  std::uint64_t next_flow_id_ = 1;
  std::uint16_t next_nat_port_ = 1024;
  std::size_t live_flows_ = 0;  // flows not yet lingering

  std::set<std::pair<TimePoint, std::uint64_t>> expiries_;
  TimerId timer_ = kNoTimer;
  TimePoint timer_at_ = kNever;
  std::vector<std::uint64_t> dirty_;

  std::vector<std::uint8_t> scratch_;  // one socket read or one packet
  StreamStats stats_;
};

}  // namespace buckwild::daemon

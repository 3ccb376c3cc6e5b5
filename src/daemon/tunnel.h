// The running tunnel: discovery, sessions and the packet path between the TUN
// device and the hopping UDP ports. Two receive paths:
//   user space  one socket per currently valid port, rotated every 250 ms window;
//   steered     (TunnelDeps::steering, the eBPF path) the discovery socket
//               receives every valid (peer, port) pair, which the tunnel
//               rewrites at every window change; only the ports it sends from
//               are bound.
//
// Everything reaches the outside world through the interfaces it is given
// (EventLoop, Clock, TunDevice, a socket factory), so two tunnels can run in
// one test process over a FakeDatagramNetwork, and the real daemon
// (run_daemon.h) wires the same class to epoll, the kernel TUN device and UDP.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/crypto/random.h"
#include "core/discovery/initiator.h"
#include "core/discovery/psk_set.h"
#include "core/discovery/responder.h"
#include "core/session/session.h"
#include "daemon/clock.h"
#include "daemon/config.h"
#include "daemon/event_loop.h"
#include "daemon/packet_pool.h"
#include "daemon/port_steering.h"
#include "daemon/rate_limited_log.h"
#include "daemon/stream_bridge.h"
#include "daemon/tun_device.h"
#include "daemon/udp_socket.h"

namespace buckwild::daemon {

using SocketFactory =
    std::function<SysResult<std::unique_ptr<DatagramSocket>>(const SocketAddress& bind_address)>;

struct TunnelDeps {
  EventLoop& loop;
  const Clock& clock;
  TunDevice& tun;
  SocketFactory bind_socket;
  crypto::RandomSource& rng;
  // The eBPF receive path; null for the user-space one.
  PortSteering* steering = nullptr;
};

// Counters for logs and status; every drop has a reason.
struct TunnelStats {
  std::uint64_t tun_packets_in = 0;    // read from the TUN device
  std::uint64_t tun_packets_out = 0;   // written to it
  std::uint64_t datagrams_sent = 0;
  std::uint64_t datagrams_received = 0;
  std::uint64_t no_route = 0;          // TUN packet for an address no session serves
  std::uint64_t not_ip = 0;            // TUN packet that is not IPv4/IPv6
  std::uint64_t no_session = 0;        // datagram for an unknown session id
  std::uint64_t rejected = 0;          // failed authentication, replay or freshness
  std::uint64_t spoofed_source = 0;    // inner source address the peer may not use
  std::uint64_t unsupported_type = 0;  // a valid packet of a type this mode does not carry
  std::uint64_t send_errors = 0;
  std::uint64_t port_bind_failures = 0;  // a hopping port that could not be opened
  std::uint64_t ports_open = 0;          // hopping sockets open now
  // Steered receive path only.
  std::uint64_t valid_ports = 0;               // (peer, port) pairs steered to us now
  std::uint64_t valid_port_updates = 0;        // rewrites of that set
  std::uint64_t valid_port_update_failures = 0;
  std::uint64_t valid_port_update_max_ns = 0;  // slowest rewrite so far
  std::uint64_t sessions_established = 0;
  std::uint64_t sessions_lost = 0;
  std::uint64_t pool_exhausted = 0;
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

  const TunnelStats& stats() const { return stats_; }
  // Transparent TCP (stream_bridge.h).
  const StreamStats& stream_stats() const { return bridge_->stats(); }
  std::size_t stream_flows() const { return bridge_->flow_count(); }
  std::size_t stream_buffered_bytes() const { return bridge_->buffered_bytes(); }
  const discovery::ResponderCounters& discovery_counters() const { return responder_->counters(); }
  std::size_t session_count() const { return sessions_.size(); }
  // The established session ids (for tests and status).
  std::vector<std::uint64_t> session_ids() const;
  const session::Session* session(std::uint64_t id) const;

 private:
  struct SessionEntry;
  struct PeerState;

  Tunnel(const Config& config, std::uint32_t mtu, TunnelDeps deps, discovery::PskSet psks);
  SysResult<void> start();

  // Packet paths.
  void on_tun_readable();
  void on_socket_readable(DatagramSocket& socket, bool discovery_socket);
  void on_datagram(MutableBytes datagram, const SocketAddress& source, bool discovery_socket);
  void on_session_packet(SessionEntry& e, MutableBytes datagram, const SocketAddress& source);
  void on_discovery(Bytes datagram, const SocketAddress& source);
  void on_response(Bytes datagram, const SocketAddress& source);
  void on_confirm(Bytes datagram, const SocketAddress& source);

  // Sessions.
  void add_session(std::unique_ptr<session::Session> s, const SocketAddress& remote,
                   std::optional<std::size_t> peer, std::size_t psk_index);
  void remove_session(std::uint64_t id, const char* why);
  SessionEntry* route(const IpAddress& destination);
  void send_sealed(SessionEntry& e, Bytes datagram);
  void send_heartbeat(SessionEntry& e, bool probe);
  void send_sequence_confirm(SessionEntry& e);

  // StreamHost: what the transparent TCP bridge asks of us.
  std::uint64_t session_for(const IpAddress& destination) override;
  bool source_allowed(std::uint64_t session, const IpAddress& source) override;
  void send_connection_packet(std::uint64_t session, wire::Header& header, MutableBytes packet,
                              std::size_t body_len) override;
  void write_tun(Bytes ip_packet) override;
  void connections_changed(std::uint64_t session) override;
  // Whether the session's peer may send from inner address `source`; a peer
  // without an entry claims its first allowed one here.
  bool accept_source(SessionEntry& e, const IpAddress& source);

  // Discovery as initiator.
  void start_discovery(PeerState& p);

  // Time.
  // User-space path: opens the ports every session needs now (w−d … w+d,
  // connection 0 and each live connection). Steered path: makes those the
  // valid pairs, and opens only the port each session sends from now. Then,
  // if `close_unneeded`, closes the sockets no longer needed.
  void on_window(bool close_unneeded = true);
  void schedule_window();
  void housekeeping();
  std::int64_t unix_ms() const { return clock_.unix_ms(); }
  TimePoint now() const { return clock_.monotonic(); }

  const Config& config_;
  EventLoop& loop_;
  const Clock& clock_;
  TunDevice& tun_;
  SocketFactory bind_socket_;
  crypto::RandomSource& rng_;
  PortSteering* steering_;
  discovery::PskSet psks_;
  std::uint16_t offered_features_ = 0;
  std::unique_ptr<discovery::Responder> responder_;
  session::SessionConfig session_config_;
  std::uint32_t mtu_;
  PacketPool pool_;

  std::unique_ptr<StreamBridge> bridge_;
  TimerId ports_timer_ = kNoTimer;  // a deferred on_window() after connections changed
  std::unique_ptr<DatagramSocket> discovery_socket_;
  std::unordered_map<std::uint16_t, std::unique_ptr<DatagramSocket>> port_sockets_;
  std::unordered_map<std::uint64_t, std::unique_ptr<SessionEntry>> sessions_;
  std::unordered_map<IpAddress, std::uint64_t> by_address_;  // peer virtual address → session
  std::vector<std::unique_ptr<PeerState>> peers_;
  std::vector<TimerId> timers_;
  TimerId window_timer_ = kNoTimer;
  RateLimitedLog warn_log_;
  TunnelStats stats_;
};

}  // namespace buckwild::daemon

#include "daemon/tunnel/tunnel.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>

#include "core/discovery/features.h"
#include "core/hop/time_window.h"
#include "core/wire/codec.h"
#include "daemon/tunnel/aead_choice.h"

namespace buckwild::daemon {
namespace {

// What we offer as initiator and accept as responder, from [crypto].
struct FeaturePolicy {
  std::uint16_t offered = 0;
  discovery::ResponderPolicy responder;
};

// Retransmission timeouts in a row, doubling from the smallest RTO to the
// largest, that span `span`: a connection gives up no sooner than its session
// (docs/protocol.md §11.4), never sooner than the reference's limit.
unsigned retransmissions_spanning(Duration span, const conn::RtoConfig& rto) {
  unsigned n = 0;
  Duration total = 0;
  Duration next = rto.min;
  while (total < span && n < 64) {
    total += next;
    next = std::min(next * 2, rto.max);
    ++n;
  }
  return std::max<unsigned>(n, wire::kMaxRetransmissions);
}

FeaturePolicy feature_policy(const Config& config) {
  using namespace discovery;
  std::uint16_t protection = 0;
  if (config.crypto.protection == crypto::ProtectionMode::kHmac) {
    protection = feature::kHmacOnly;
  } else {
    protection = preferred_aead(config.crypto.aead) == crypto::AeadAlgorithm::kAes256Gcm
                     ? feature::kAes256Gcm
                     : feature::kChaCha20Poly1305;
  }
  const std::uint16_t aeads = feature::kChaCha20Poly1305 | feature::kAes256Gcm;
  const std::uint16_t allowed_protection =
      protection == feature::kHmacOnly ? feature::kHmacOnly : aeads;
  const std::uint16_t extras = static_cast<std::uint16_t>(
      feature::kDatagram | (config.crypto.forward_secrecy ? feature::kForwardSecrecy : 0));
  FeaturePolicy p;
  p.offered = static_cast<std::uint16_t>(allowed_protection | extras);
  p.responder.allowed = static_cast<std::uint16_t>(allowed_protection | feature::kForwardSecrecy |
                                                   feature::kDatagram);
  p.responder.preferred_protection = protection;
  p.responder.require_forward_secrecy = config.crypto.forward_secrecy;
  return p;
}

// The tunnel's sockets ask for UDP GRO (where [network] udp_offload let the
// socket offload at all): on the user-space path always, on the eBPF path
// only while the frame filter judges every datagram before GRO merges them.
SocketFactory with_coalesced_reads(SocketFactory bind, const EbpfPath* ebpf) {
  const bool allowed = ebpf == nullptr || ebpf->filters_before_gro();
  if (!allowed) {
    udp_offload_stats().gro =
        "off (the eBPF frame filter is not XDP in the driver on every interface)";
  }
  return [bind = std::move(bind), allowed](const SocketAddress& at) {
    auto s = bind(at);
    if (s && allowed) (*s)->enable_coalesced_reads();
    return s;
  };
}

}  // namespace

SysResult<std::unique_ptr<Tunnel>> Tunnel::create(const Config& config, std::uint32_t mtu,
                                                  TunnelDeps deps) {
  std::vector<discovery::Psk> psks;
  for (const PskConfig& p : config.psks) {
    psks.push_back({p.id, crypto::SecretBytes::copy_of(p.key.view())});
  }
  auto set = discovery::PskSet::create(std::move(psks));
  if (!set) return sys_fail_plain(EINVAL, std::string("PSK set: ") + set.error().what);
  auto peers = Peers::create(config);
  if (!peers) return std::unexpected(peers.error());
  std::unique_ptr<Tunnel> t(
      new Tunnel(config, mtu, std::move(deps), std::move(*set), std::move(*peers)));
  if (auto started = t->start(); !started) return std::unexpected(started.error());
  return t;
}

Tunnel::Tunnel(const Config& config, std::uint32_t mtu, TunnelDeps deps, discovery::PskSet psks,
               Peers peers)
    : config_(&config),
      loop_(deps.loop),
      clock_(deps.clock),
      tun_(deps.tun),
      tcp_(deps.tcp),
      rng_(deps.rng),
      ebpf_(deps.ebpf),
      worker_(deps.worker),
      workers_(std::max<std::uint32_t>(deps.workers, 1)),
      claims_(deps.claims),
      post_to_worker_(std::move(deps.post_to_worker)),
      on_fatal_(std::move(deps.on_fatal)),
      audit_(deps.audit),
      on_event_(std::move(deps.on_event)),
      psks_(std::move(psks)),
      peers_(std::move(peers)),
      mtu_(mtu),
      // Every buffer holds the largest datagram any peer may send (§2): a peer
      // whose MTU is larger than ours is never truncated. What is larger still
      // is junk, counted as truncated.
      pool_(deps.pool_buffers, std::max<std::size_t>(mtu + wire::kOverhead, wire::kMaxDatagramSize) + 64),
      warn_log_(5, seconds(10)),
      sessions_(&config),
      bind_socket_(with_coalesced_reads(std::move(deps.bind_socket), deps.ebpf)) {
  const FeaturePolicy policy = feature_policy(config);
  offered_features_ = policy.offered;
  responder_ = std::make_unique<discovery::Responder>(
      psks_, policy.responder, responder_limits(config.security), rng_, now());
  responder_->set_reserved(peers_.psk_indices(), now());
  for (std::size_t i = 0; i < peers_.size(); ++i) peers_[i].elsewhere = elsewhere(i);

  if (config.protocol.delay_allowance)
    session_config_.fixed_delay_allowance = *config.protocol.delay_allowance;
  session_config_.heartbeat_interval = milliseconds(config.protocol.heartbeat_interval_ms);
  session_config_.time_sync.tolerance_ms = static_cast<std::int32_t>(config.protocol.time_sync_tolerance_ms);
  session_config_.dead_after = milliseconds(config.protocol.heartbeat_timeout_ms);
  session_config_.path_keepalive = config.protocol.path_keepalive;
  session_config_.rekey_interval =
      config.testing.rekey_interval_seconds > 0
          ? seconds(config.testing.rekey_interval_seconds)
          : seconds(std::int64_t{3600} * config.crypto.key_rotation_interval_hours);
  // The largest datagram we send or receive: what our interface carries (§11.10).
  session_config_.max_datagram = std::min<std::size_t>(mtu + wire::kOverhead, wire::kMaxDatagramSize);
  queued_.reserve(kSendQueueBound);
  turn_end_ = loop_.add_turn_end([this] {
    flush_sends();
    staged_.release();  // not held while the loop waits: a receive batch may need it
  });
}

Tunnel::~Tunnel() {
  // Connections go before the sessions they use; the keys are wiped by their
  // owners' destructors. What they sent last leaves before the sockets close.
  bridge_.reset();
  flush_sends();
  loop_.remove_turn_end(turn_end_);
  hop_ports_.reset();
  sessions_.for_each([this](SessionEntry& e) {
    if (e.timer != kNoTimer) loop_.cancel_timer(e.timer);
  });
  for (std::size_t i = 0; i < peers_.size(); ++i) {
    if (peers_[i].discovery_timer != kNoTimer) loop_.cancel_timer(peers_[i].discovery_timer);
    if (peers_[i].held_timer != kNoTimer) loop_.cancel_timer(peers_[i].held_timer);
    if (peers_[i].parked_timer != kNoTimer) loop_.cancel_timer(peers_[i].parked_timer);
  }
  if (window_timer_ != kNoTimer) loop_.cancel_timer(window_timer_);
  if (keepalive_timer_ != kNoTimer) loop_.cancel_timer(keepalive_timer_);
  if (responder_timer_ != kNoTimer) loop_.cancel_timer(responder_timer_);
  if (tun_pending_timer_ != kNoTimer) loop_.cancel_timer(tun_pending_timer_);
  if (tun_watched_) loop_.unwatch_fd(tun_.fd());
  if (discovery_socket_) loop_.unwatch_fd(discovery_socket_->fd());
}

SysResult<void> Tunnel::start() {
  // 1. Transparent TCP.
  StreamBridge::Options so;
  so.virtual_v4 = config_->network.virtual_address.address;
  if (config_->network.virtual_address6) so.virtual_v6 = config_->network.virtual_address6->address;
  so.connection.mss = mtu_;  // a segment fills a datagram as large as a TUN packet's
  // With several workers each holds its share of the daemon's connections
  // and memory; a source's own limit applies on each (its connections go to
  // the worker serving their destination, often all to one).
  so.limits.max_flows = worker_share(config_->security.max_connections, workers_);
  so.limits.max_per_source = config_->security.max_connections_per_source;
  so.limits.memory = worker_share(std::size_t{config_->security.stream_memory_mb} << 20, workers_);
  so.open_local = config_->protocol.tcp_mode == TcpMode::kStream;
  so.connection.congestion = config_->protocol.congestion_control;
  so.connection.send_buffer = std::size_t{config_->protocol.max_window_mb} << 20;
  so.connection.receive_buffer = so.connection.send_buffer;
  so.connection.max_retransmissions =
      // The session's lifetime and as long again parked (EMERGENCY).
      retransmissions_spanning(2 * session_config_.dead_after, so.connection.rto);
  auto bridge = StreamBridge::create(so, *this, loop_, tcp_, rng_);
  if (!bridge)
    return sys_fail_plain(bridge.error().sys_errno, "transparent TCP: " + bridge.error().message);
  bridge_ = std::move(*bridge);
  spdlog::info("TCP from applications on this host: {}; congestion control between the daemons: {}",
               so.open_local ? "stream mode (ends in this daemon, travels as Buckwild connections)"
                             : "packet mode (travels inside DATAGRAM packets); peers' stream-mode "
                               "connections are still accepted",
               so.connection.congestion == conn::CongestionAlgorithm::kBbr ? "bbr" : "newreno");

  // 2. The discovery socket (on the eBPF path, every valid hopping port too).
  auto sock =
      bind_socket_(SocketAddress{config_->network.listen_address, config_->network.discovery_port});
  if (!sock)
    return sys_fail_plain(sock.error().sys_errno, "discovery port: " + sock.error().message);
  discovery_socket_ = std::move(*sock);
  const UdpOffloadStats& offload = udp_offload_stats();
  spdlog::info("UDP offloads: GSO {}, GRO {}", offload.gso, offload.gro);
  if (ebpf_ != nullptr) {
    if (auto r = ebpf_->steer_to(*discovery_socket_); !r) {
      return sys_fail_plain(
          r.error().sys_errno,
          "steering the hopping ports to the discovery socket: " + r.error().message);
    }
  }
  auto w = loop_.watch_fd(discovery_socket_->fd(), kReadable, [this](std::uint32_t) {
    on_socket_readable(*discovery_socket_, Arrival::kDiscoverySocket);
  });
  if (!w) return std::unexpected(w.error());

  // 3. The hopping ports, the TUN device and the clocks that drive them.
  hop_ports_ = std::make_unique<HopPorts>(
      HopPorts::Deps{
          .loop = loop_,
          .bind_socket = bind_socket_,
          .ebpf = ebpf_,
          .listen_address = config_->network.listen_address,
          .discovery_port = config_->network.discovery_port,
          .needs = [this](std::vector<PortNeed>& out) { list_port_needs(out); },
          .on_readable =
              [this](DatagramSocket& s) { on_socket_readable(s, Arrival::kHoppingSocket); },
          .on_updated =
              [this] {
                flush_sends();  // the queue may name a socket about to close
                choose_send_sockets();
              },
      },
      warn_log_);
  auto t = loop_.watch_fd(tun_.fd(), kReadable,
                          [this](std::uint32_t events) { on_tun_readable(events); });
  if (!t) return std::unexpected(t.error());
  tun_watched_ = true;
  schedule_window();
  arm_responder_timer();

  // 4. Discovery towards the peers we initiate to.
  for (std::size_t i = 0; i < peers_.size(); ++i) {
    if (peers_[i].initiates()) {
      start_discovery(peers_[i]);  // CONNECTING
    } else {
      peers_[i].state = session::SessionStateMachine(session::State::kListening,
                                                     session::Cause::kAwaitingPeer, now());
    }
  }
  spdlog::info("listening for discovery on {} ({} PSK{}, {} peer{})",
               discovery_socket_->local_address().to_string(), psks_.size(),
               psks_.size() == 1 ? "" : "s", peers_.size(), peers_.size() == 1 ? "" : "s");
  return {};
}

const session::Session* Tunnel::session(std::uint64_t id) const {
  const SessionEntry* e = sessions_.find(id);
  return e == nullptr ? nullptr : e->session.get();
}

// ---- time: the hop clock ----

void Tunnel::schedule_window() {
  // 100 µs past the boundary, so the new window is current when we look.
  const std::int64_t t = unix_ms();
  const std::int64_t next = (hop::window_at(t) + 1) * hop::kHopIntervalMs;
  window_timer_ = loop_.add_timer(milliseconds(next - t) + 100, [this] {
    window_timer_ = kNoTimer;
    on_window();
    schedule_window();
  });
}

void Tunnel::on_clock_step(std::int64_t step_us) {
  // Our time moved (the NTP client stepped it): each peer's clock is now that
  // much nearer ours, the ports we listen on are those of the new window,
  // and the offsets are re-measured at once (RESYNC).
  // Reduced to within half a day: offsets are circular over the day.
  constexpr std::int64_t kDayMs = 86'400'000;
  std::int64_t day_step = (step_us / 1000) % kDayMs;
  if (day_step > kDayMs / 2) day_step -= kDayMs;
  if (day_step < -kDayMs / 2) day_step += kDayMs;
  const auto step_ms = static_cast<std::int32_t>(day_step);
  sessions_.for_each([&](SessionEntry& e) {
    e.session->on_clock_step(step_ms, now());
    track_time_sync(e);
    arm_session_timer(e);
  });
  if (window_timer_ != kNoTimer) loop_.cancel_timer(window_timer_);
  window_timer_ = kNoTimer;
  on_window();
  schedule_window();
}

void Tunnel::on_window() {
  hop_ports_->update(HopPorts::Closing::kCloseUnneeded);
  update_peer_sources();
  warn_log_.flush(now());
  // Path challenges that went unanswered count as failed (roaming.cc).
  sessions_.for_each([&](SessionEntry& e) {
    if (e.validation) e.validation->expire(now());
  });
  // Path keepalives go mid-window (§11.6): by then a window with traffic of
  // its own has sent some, and the responder has had half a window on the
  // previous window's path, which the initiator still listens on.
  if (keepalive_timer_ == kNoTimer) {
    keepalive_timer_ = loop_.add_timer(milliseconds(hop::kHopIntervalMs / 2), [this] {
      keepalive_timer_ = kNoTimer;
      send_path_keepalives();
    });
  }
}

void Tunnel::update_peer_sources() {
  if (ebpf_ == nullptr) return;
  sessions_.for_each([&](SessionEntry& e) {
    if (e.peer) peers_[*e.peer].last_address = e.remote.ip;
  });
  peer_sources_.clear();
  for (std::size_t i = 0; i < peers_.size(); ++i) {
    const Peer& p = peers_[i];
    // The peers this worker looks for, and those whose session it holds: their
    // discovery messages (and answers to ours) are steered here.
    if (p.config->endpoint && !elsewhere(i)) peer_sources_.push_back(p.config->endpoint->ip);
    if (p.last_address && (!elsewhere(i) || p.session_id != 0)) peer_sources_.push_back(*p.last_address);
  }
  if (auto r = ebpf_->set_peer_sources(peer_sources_); !r) {
    warn_log_.log(now(), "ebpf.peer_sources", spdlog::level::warn,
                  "cannot tell the frame filter the peers' addresses: {}", r.error().message);
  }
}

void Tunnel::update_tun_routes() {
  if (ebpf_ == nullptr || workers_ <= 1) return;
  std::vector<Cidr> prefixes;
  sessions_.for_each([&](SessionEntry& e) {
    prefixes.insert(prefixes.end(), e.allowed.begin(), e.allowed.end());
    if (e.claimed) prefixes.push_back(Cidr{*e.claimed, static_cast<std::uint8_t>(e.claimed->bits())});
  });
  if (auto r = ebpf_->set_tun_routes(prefixes); !r) {
    warn_log_.log(now(), "ebpf.tun_routes", spdlog::level::warn,
                  "cannot steer the sessions' addresses to this worker's TUN queue: {}",
                  r.error().message);
  }
}

void Tunnel::list_port_needs(std::vector<PortNeed>& out) {
  // Windows w−d … w+d of connection 0 and of each live connection (§10.3);
  // listen_ports lists them oldest first, our current window in the middle.
  const std::int64_t t = unix_ms();
  const std::int64_t w = hop::window_at(t);
  std::vector<std::uint16_t> ports;
  std::vector<std::uint16_t> conns;
  sessions_.for_each([&](SessionEntry& e) {
    conns.assign(1, 0);
    bridge_->connection_ids(e.id, conns);
    for (std::uint16_t conn : conns) {
      ports.clear();
      e.session->listen_ports(t, conn, ports);
      const std::int64_t d = static_cast<std::int64_t>(ports.size() - 1) / 2;
      for (std::size_t i = 0; i < ports.size(); ++i) {
        const std::int64_t window = w - d + static_cast<std::int64_t>(i);
        const bool ours_now = conn == 0 && i == ports.size() / 2;
        if (ours_now) e.receive_port = ports[i];
        // As responder we also send from the ports of the paths we may answer
        // along (§11.6); the eBPF path binds only the ports we send from.
        bool on_path = false;
        if (e.paths) {
          for (const auto& path : e.paths->slots()) on_path = on_path || (path && path->local_port == ports[i]);
        }
        out.push_back(PortNeed{
            ValidPort{e.remote.ip, ports[i], e.id, static_cast<std::uint32_t>(window), conn},
            ours_now || on_path});
      }
    }
  });
}

void Tunnel::choose_send_sockets() {
  // Send from the socket of our own current receive port, so source ports hop
  // too; list_port_needs has just computed that port.
  sessions_.for_each([&](SessionEntry& e) {
    e.send_via = e.receive_port == 0 ? nullptr : hop_ports_->socket_for(e.receive_port);
    choose_answer_path(e);
  });
}

void Tunnel::choose_answer_path(SessionEntry& e) {
  // As responder: along the freshest path the initiator opened that it still
  // listens on, from the socket of our port it arrived on (§11.6).
  e.answer_via = nullptr;
  if (!e.paths) return;
  auto path = e.paths->choose(
      e.receive_port, hop::window_at(unix_ms()), e.session->delay_allowance(),
      [this](std::uint16_t port) { return hop_ports_->socket_for(port) != nullptr; });
  if (!path) return;
  e.answer_via = hop_ports_->socket_for(path->local_port);
  e.answer_to = path->remote;
  e.answer_port = path->local_port;
}

// ---- time: each session's own timer ----

void Tunnel::arm_session_timer(SessionEntry& e) {
  // Armed at the session's next expiry; a deadline that moved later is found
  // when the timer fires, one that moved earlier (we sent and await an
  // answer) re-arms it here.
  const TimePoint due = e.session->next_expiry();
  if (due >= e.timer_at) return;
  if (e.timer != kNoTimer) loop_.cancel_timer(e.timer);
  e.timer_at = due;
  e.timer = due == kNever ? kNoTimer
                          : loop_.add_timer_at(due, [this, id = e.id] { on_session_timer(id); });
}

void Tunnel::on_session_timer(std::uint64_t id) {
  SessionEntry* e = sessions_.find(id);
  if (e == nullptr) return;
  e->timer = kNoTimer;
  e->timer_at = kNever;
  const TimePoint t = now();
  if (e->session->next_expiry() <= t) {
    const session::Session::Expiry x = e->session->on_expiry(t);
    if (x.dead) {
      const std::optional<std::size_t> peer = e->peer;
      if (peer && peers_[*peer].session_id == id) {
        // Keys and schedule cannot be resumed: EMERGENCY. The connections
        // wait for the next session with the peer (docs/protocol.md §11.9).
        report(peers_[*peer], session::Cause::kSessionLost);
        remove_session(id, "peer stopped answering; its connections are kept for the next session",
                       Connections::kKeep);
      } else {
        remove_session(id, "peer stopped answering");
      }
      if (peer && peers_[*peer].initiates()) start_discovery(peers_[*peer]);
      return;
    }
    if (x.silent && e->peer && peers_[*e->peer].session_id == id &&
        !peers_[*e->peer].initiates()) {
      report(peers_[*e->peer], session::Cause::kPeerSilent);  // RECOVERING (EMERGENCY): waits
    }
    if (x.silent && e->peer && peers_[*e->peer].initiates()) {
      // The session stays (its connections wait out an outage); discovery
      // meanwhile finds out whether the peer restarted (on_response).
      Peer& p = peers_[*e->peer];
      spdlog::info("session {} with {}: a probe went unanswered; kept, and looking for {} by "
                   "discovery in case it restarted",
                   short_id(id), p.config->name, p.config->name);
      p.discovery_failures = 0;
      report(p, session::Cause::kPeerSilent);  // RECOVERING (EMERGENCY), attempt 1
      start_discovery(p);
      e = sessions_.find(id);
      if (e == nullptr) return;
    }
    if (x.suspect) {
      spdlog::info("session {} with {}: no answer to {} probes; kept until the dead-peer timeout",
                   short_id(id), peer_name(*e), session::kProbes);
    }
    if (x.probe || x.send_heartbeat)
      send_heartbeat(*e, x.probe ? Heartbeat::kProbe : Heartbeat::kRegular);
    if (x.send_time_sync) {
      send_time_sync_request(*e);
      track_time_sync(*e);
    }
    if (x.send_rekey) send_rekey(*e);
    if (x.pmtu_changed) on_pmtu_changed(*e);
    if (x.pmtu_probe) send_pmtu_probe(*e, *x.pmtu_probe);
    // An exchange of ours abandoned (REKEY: its trigger, a failed attempt,
    // or spent and the session gone), or the next attempt due.
    if (!track_rekey(*e)) return;
  }
  arm_session_timer(*e);
}

void Tunnel::arm_responder_timer() {
  // The responder's cookie secrets rotate on time even without traffic.
  responder_timer_ = loop_.add_timer_at(responder_->next_expiry(), [this] {
    responder_->on_expiry(now());
    arm_responder_timer();
  });
}

// ---- StreamHost: what the transparent TCP bridge asks of us ----

std::uint64_t Tunnel::session_for(const IpAddress& destination) {
  SessionEntry* e = sessions_.route(destination);
  return e == nullptr ? 0 : e->id;
}

bool Tunnel::source_allowed(std::uint64_t session, const IpAddress& source) {
  SessionEntry* e = sessions_.find(session);
  if (e == nullptr) return false;
  const bool claimed_before = e->claimed.has_value();
  const bool allowed = sessions_.accept_source(*e, source);
  // A claim steers the address's packets to this worker at once: the
  // connection stream mode opens next sends its SYN through the TUN.
  if (e->claimed.has_value() != claimed_before) update_tun_routes();
  return allowed;
}

void Tunnel::connections_changed(std::uint64_t /*session*/) {
  hop_ports_->connections_changed();
}

void Tunnel::nat_rule_added(const NatKey& key, const NatRule& rule) {
  if (ebpf_ != nullptr) ebpf_->set_nat_rule(key.source, key.destination, rule.source, rule.destination);
}

void Tunnel::nat_rule_removed(const NatKey& key) {
  if (ebpf_ != nullptr) ebpf_->erase_nat_rule(key.source, key.destination);
}

}  // namespace buckwild::daemon

#include "daemon/tunnel.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <unordered_set>

#include "core/discovery/features.h"
#include "core/hop/time_window.h"
#include "core/wire/codec.h"
#include "daemon/tcp_segment.h"

namespace buckwild::daemon {
namespace {

constexpr std::size_t kBatch = 64;
// Sessions with peers that have no [[peer]] entry (accepted by their PSK's
// prefixes): capped, so a PSK holder cannot exhaust sockets and memory.
constexpr std::size_t kMaxUnlistedSessions = 256;
// Two sessions with one peer established this close together are a
// simultaneous start: both sides keep the one with the smaller id.
constexpr Duration kSimultaneousWindow = seconds(10);
constexpr Duration kHousekeeping = milliseconds(100);
constexpr Duration kDiscoveryRetryDelay = seconds(2);

// The destination (or source) address of an IP packet, if it is one.
std::optional<IpAddress> ip_address_at(Bytes packet, bool destination) {
  if (packet.empty()) return std::nullopt;
  const unsigned version = packet[0] >> 4;
  if (version == 4 && packet.size() >= 20) {
    std::array<std::uint8_t, 4> a;
    std::memcpy(a.data(), packet.data() + (destination ? 16 : 12), 4);
    return IpAddress::v4(a);
  }
  if (version == 6 && packet.size() >= 40) {
    std::array<std::uint8_t, 16> a;
    std::memcpy(a.data(), packet.data() + (destination ? 24 : 8), 16);
    return IpAddress::v6(a);
  }
  return std::nullopt;
}

std::string short_id(std::uint64_t id) {
  return fmt::format("{:016x}", id).substr(0, 8) + "…";
}

}  // namespace

// One session and what the daemon knows about its peer.
struct Tunnel::SessionEntry {
  std::unique_ptr<session::Session> session;
  SocketAddress remote;                // the peer's underlay address (port: its discovery port)
  std::optional<std::size_t> peer;     // index into peers_, if it has a [[peer]] entry
  std::vector<Cidr> allowed;           // inner source addresses it may use
  std::optional<IpAddress> claimed;    // for a peer without an entry: the address it took
  std::vector<Cidr> claimable;         // ... out of these prefixes (its PSK's)
  std::uint64_t id = 0;
  // The socket to send from in the current window (our own current receive
  // port), refreshed at every window change so the packet path never computes
  // or allocates it.
  DatagramSocket* send_via = nullptr;
};

struct Tunnel::PeerState {
  const PeerConfig* config = nullptr;
  // The PSKs this peer may use: only the configured one when `psk` is set, so
  // a holder of another of our PSKs can never answer for this peer.
  std::unique_ptr<discovery::PskSet> psks;
  std::vector<std::size_t> psk_index;  // psks index -> our global PSK index
  std::optional<discovery::Initiator> initiator;
  TimePoint retry_at = kNever;
  std::uint64_t session_id = 0;
  TimePoint session_since = 0;
};

SysResult<std::unique_ptr<Tunnel>> Tunnel::create(const Config& config, std::uint32_t mtu,
                                                  TunnelDeps deps) {
  std::vector<discovery::Psk> psks;
  for (const PskConfig& p : config.psks) {
    psks.push_back({p.id, crypto::SecretBytes::copy_of(p.key.view())});
  }
  auto set = discovery::PskSet::create(std::move(psks));
  if (!set) return sys_fail_plain(EINVAL, std::string("PSK set: ") + set.error().what);
  std::unique_ptr<Tunnel> t(new Tunnel(config, mtu, std::move(deps), std::move(*set)));
  auto started = t->start();
  if (!started) return std::unexpected(started.error());
  return t;
}

Tunnel::Tunnel(const Config& config, std::uint32_t mtu, TunnelDeps deps, discovery::PskSet psks)
    : config_(config),
      loop_(deps.loop),
      clock_(deps.clock),
      tun_(deps.tun),
      bind_socket_(std::move(deps.bind_socket)),
      rng_(deps.rng),
      steering_(deps.steering),
      psks_(std::move(psks)),
      mtu_(mtu),
      pool_(4 * kBatch, std::max<std::size_t>(mtu + wire::kOverhead + 64, wire::kMaxDiscoveryDatagram + 64)),
      warn_log_(5, seconds(10)) {
  using namespace discovery;
  // What we offer as initiator and accept as responder.
  std::uint16_t protection = 0;
  if (config.crypto.protection == crypto::ProtectionMode::kHmac) {
    protection = feature::kHmacOnly;
  } else {
    protection = config.crypto.aead == crypto::AeadAlgorithm::kAes256Gcm ? feature::kAes256Gcm
                                                                         : feature::kChaCha20Poly1305;
  }
  const std::uint16_t aeads = feature::kChaCha20Poly1305 | feature::kAes256Gcm;
  const std::uint16_t allowed_protection =
      protection == feature::kHmacOnly ? feature::kHmacOnly : aeads;
  const std::uint16_t extras = static_cast<std::uint16_t>(
      feature::kDatagram | (config.crypto.forward_secrecy ? feature::kForwardSecrecy : 0));
  offered_features_ = static_cast<std::uint16_t>(allowed_protection | extras);
  ResponderPolicy policy;
  policy.allowed = static_cast<std::uint16_t>(allowed_protection | feature::kForwardSecrecy | feature::kDatagram);
  policy.preferred_protection = protection;
  policy.require_forward_secrecy = config.crypto.forward_secrecy;
  ResponderLimits limits;
  limits.per_source_rate = std::max<double>(1, config.security.rate_limit_packets_per_second);
  limits.per_source_burst = 2 * limits.per_source_rate;
  limits.work_per_second = std::max<double>(1, config.security.discovery_work_per_second);
  responder_ = std::make_unique<Responder>(psks_, policy, limits, rng_, now());

  if (config.protocol.delay_allowance) session_config_.fixed_delay_allowance = *config.protocol.delay_allowance;
  session_config_.heartbeat_interval = milliseconds(config.protocol.heartbeat_interval_ms);
  session_config_.dead_after = milliseconds(config.protocol.heartbeat_timeout_ms);
}

Tunnel::~Tunnel() {
  bridge_.reset();  // its flows and connections go before the sessions they use
  if (ports_timer_ != kNoTimer) loop_.cancel_timer(ports_timer_);
  for (TimerId id : timers_) loop_.cancel_timer(id);
  if (window_timer_ != kNoTimer) loop_.cancel_timer(window_timer_);
  loop_.unwatch_fd(tun_.fd());
  if (discovery_socket_) loop_.unwatch_fd(discovery_socket_->fd());
  for (auto& [port, s] : port_sockets_) loop_.unwatch_fd(s->fd());
}

SysResult<void> Tunnel::start() {
  StreamBridge::Options so;
  so.virtual_v4 = config_.network.virtual_address.address;
  if (config_.network.virtual_address6) so.virtual_v6 = config_.network.virtual_address6->address;
  so.connection.mss = mtu_;  // a segment fills a datagram as large as a TUN packet's
  so.limits.max_flows = config_.security.max_connections;
  so.limits.max_per_source = config_.security.max_connections_per_source;
  so.open_local = config_.protocol.tcp_mode == TcpMode::kStream;
  so.connection.congestion = config_.protocol.congestion_control;
  auto bridge = StreamBridge::create(so, *this, loop_, rng_);
  if (!bridge) return sys_fail_plain(bridge.error().sys_errno, "transparent TCP: " + bridge.error().message);
  bridge_ = std::move(*bridge);
  spdlog::info("TCP from applications on this host: {}; congestion control between the daemons: {}",
               so.open_local ? "stream mode (ends in this daemon, travels as Buckwild connections)"
                             : "packet mode (travels inside DATAGRAM packets); peers' stream-mode "
                               "connections are still accepted",
               so.connection.congestion == conn::CongestionAlgorithm::kBbr ? "bbr" : "newreno");

  auto sock = bind_socket_(SocketAddress{config_.network.listen_address, config_.network.discovery_port});
  if (!sock) {
    return sys_fail_plain(sock.error().sys_errno, "discovery port: " + sock.error().message);
  }
  discovery_socket_ = std::move(*sock);
  if (steering_ != nullptr) {
    if (auto r = steering_->steer_to(*discovery_socket_); !r) {
      return sys_fail_plain(r.error().sys_errno, "steering the hopping ports to the discovery socket: " +
                                                     r.error().message);
    }
  }
  auto w = loop_.watch_fd(discovery_socket_->fd(), kReadable, [this](std::uint32_t) {
    on_socket_readable(*discovery_socket_, true);
  });
  if (!w) return std::unexpected(w.error());
  auto t = loop_.watch_fd(tun_.fd(), kReadable, [this](std::uint32_t) { on_tun_readable(); });
  if (!t) return std::unexpected(t.error());
  timers_.push_back(loop_.add_periodic_timer(kHousekeeping, [this] { housekeeping(); }));
  schedule_window();

  for (const PeerConfig& p : config_.peers) {
    auto state = std::make_unique<PeerState>();
    state->config = &p;
    std::vector<discovery::Psk> own;
    for (std::size_t i = 0; i < config_.psks.size(); ++i) {
      if (!p.psk.empty() && config_.psks[i].id != p.psk) continue;
      own.push_back({config_.psks[i].id, crypto::SecretBytes::copy_of(config_.psks[i].key.view())});
      state->psk_index.push_back(i);
    }
    auto set = discovery::PskSet::create(std::move(own));
    if (!set) return sys_fail_plain(EINVAL, "peer " + p.name + ": " + set.error().what);
    state->psks = std::make_unique<discovery::PskSet>(std::move(*set));
    peers_.push_back(std::move(state));
  }
  for (auto& p : peers_) {
    if (p->config->initiate && p->config->endpoint) start_discovery(*p);
  }
  spdlog::info("listening for discovery on {} ({} PSK{}, {} peer{})",
               discovery_socket_->local_address().to_string(), psks_.size(),
               psks_.size() == 1 ? "" : "s", peers_.size(), peers_.size() == 1 ? "" : "s");
  return {};
}

std::vector<std::uint64_t> Tunnel::session_ids() const {
  std::vector<std::uint64_t> ids;
  for (const auto& [id, e] : sessions_) ids.push_back(id);
  return ids;
}

const session::Session* Tunnel::session(std::uint64_t id) const {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second->session.get();
}

// ---- discovery as initiator ----

void Tunnel::start_discovery(PeerState& p) {
  p.initiator.emplace(*p.psks, offered_features_, rng_);
  auto d = p.initiator->start(unix_ms(), now());
  OutgoingDatagram out{d, *p.config->endpoint, std::nullopt};
  auto sent = discovery_socket_->send_batch({&out, 1});
  if (!sent || *sent == 0) ++stats_.send_errors;
  p.retry_at = kNever;
  spdlog::info("discovery started towards {} ({})", p.config->name, p.config->endpoint->to_string());
}

void Tunnel::on_response(Bytes datagram, const SocketAddress& source) {
  for (auto& p : peers_) {
    if (!p->initiator || p->initiator->state() != discovery::Initiator::State::kInitiated) continue;
    auto outcome = p->initiator->consume_response(datagram, unix_ms(), now());
    if (!outcome) {
      if (outcome.error().code != ErrorCode::kSessionNotFound) {
        warn_log_.log(now(), "discovery.bad_response", spdlog::level::warn,
                      "discovery response from {} refused: {}", source.to_string(), outcome.error().what);
      }
      continue;
    }
    const std::size_t psk_index = p->psk_index[outcome->session.psk_index];
    outcome->session.psk_index = psk_index;
    auto s = session::Session::create(std::move(outcome->session), psks_.key(psk_index),
                                      session_config_, now());
    if (!s) return;
    // Open the session's ports first: the responder answers CONFIRM at once,
    // on them.
    const std::size_t peer_index = static_cast<std::size_t>(&p - peers_.data());
    add_session(std::make_unique<session::Session>(std::move(*s)), source, peer_index, psk_index);
    OutgoingDatagram out{outcome->confirm, source, std::nullopt};
    (void)discovery_socket_->send_batch({&out, 1});
    return;
  }
}

// ---- discovery as responder ----

void Tunnel::on_discovery(Bytes datagram, const SocketAddress& source) {
  auto response = responder_->consume_discovery(datagram, to_endpoint(source), unix_ms(), now());
  if (!response) return;  // silence; the responder counted why
  OutgoingDatagram out{*response, source, std::nullopt};
  (void)discovery_socket_->send_batch({&out, 1});
}

void Tunnel::on_confirm(Bytes datagram, const SocketAddress& source) {
  auto est = responder_->consume_confirm(datagram, to_endpoint(source), unix_ms(), now());
  if (!est) {
    if (est.error().code == ErrorCode::kReplayAttack) {
      // The initiator did not hear our confirmation: say it again.
      auto it = sessions_.find(responder_->replayed_session());
      if (it != sessions_.end()) send_sequence_confirm(*it->second);
    }
    return;
  }
  // Which peer is this? One whose endpoint address it came from, if any.
  std::optional<std::size_t> peer;
  for (std::size_t i = 0; i < peers_.size() && !peer; ++i) {
    const PeerConfig& pc = *peers_[i]->config;
    if (pc.endpoint && pc.endpoint->ip.unmapped() == source.ip.unmapped()) {
      if (!pc.psk.empty() && pc.psk != psks_.id(est->psk_index)) continue;
      peer = i;
    }
  }
  // A peer without an endpoint (it only initiates, or sits behind NAT) is known
  // by its own PSK.
  for (std::size_t i = 0; i < peers_.size() && !peer; ++i) {
    const PeerConfig& pc = *peers_[i]->config;
    if (!pc.endpoint && !pc.psk.empty() && pc.psk == psks_.id(est->psk_index)) peer = i;
  }
  if (!peer) {
    // A restarted peer without an entry replaces its own earlier session.
    std::vector<std::uint64_t> stale;
    std::size_t unlisted = 0;
    for (auto& [id, e] : sessions_) {
      if (e->peer) continue;
      ++unlisted;
      if (e->remote.ip.unmapped() == source.ip.unmapped()) stale.push_back(id);
    }
    for (std::uint64_t id : stale) remove_session(id, "replaced by a new session from the same address");
    if (unlisted - stale.size() >= kMaxUnlistedSessions) {
      warn_log_.log(now(), "discovery.unlisted_cap", spdlog::level::warn,
                    "{}: refused, already {} sessions with peers that have no [[peer]] entry",
                    source.to_string(), kMaxUnlistedSessions);
      return;
    }
  }
  if (!peer && config_.psks[est->psk_index].allowed_prefixes.empty()) {
    warn_log_.log(now(), "discovery.unknown_peer", spdlog::level::warn,
                  "{} proved PSK {} but has no [[peer]] entry and that PSK allows no prefixes: refused",
                  source.to_string(), psks_.id(est->psk_index));
    return;
  }
  const std::size_t psk_index = est->psk_index;
  auto s = session::Session::create(std::move(*est), psks_.key(psk_index), session_config_, now());
  if (!s) return;
  add_session(std::make_unique<session::Session>(std::move(*s)), source, peer, psk_index);
}

// ---- sessions ----

void Tunnel::add_session(std::unique_ptr<session::Session> s, const SocketAddress& remote,
                         std::optional<std::size_t> peer, std::size_t psk_index) {
  const std::uint64_t id = s->id();
  if (sessions_.contains(id)) return;
  auto e = std::make_unique<SessionEntry>();
  e->id = id;
  e->remote = remote;
  e->peer = peer;
  if (peer) {
    const PeerConfig& pc = *peers_[*peer]->config;
    const unsigned bits = pc.virtual_address.bits();
    e->allowed.push_back(Cidr{pc.virtual_address, static_cast<std::uint8_t>(bits)});
    for (const Cidr& r : pc.routes) e->allowed.push_back(r);
    PeerState& ps = *peers_[*peer];
    // A peer has one session: a new one replaces the old (the peer restarted),
    // except when both sides started discovery at once — two sessions made in
    // opposite roles moments apart: then both sides keep the smaller id.
    if (ps.session_id != 0 && ps.session_id != id) {
      auto old = sessions_.find(ps.session_id);
      const bool crossed = old != sessions_.end() &&
                           old->second->session->initiator() != s->initiator() &&
                           now() - ps.session_since < kSimultaneousWindow;
      if (crossed && id > ps.session_id) {
        spdlog::info("session {} with {} not kept: both sides started at once and {} stays",
                     short_id(id), pc.name, short_id(ps.session_id));
        return;
      }
      remove_session(ps.session_id, "replaced by a new session");
    }
    ps.session_id = id;
    ps.session_since = now();
    by_address_[pc.virtual_address] = id;
    // Our own discovery towards this peer is moot now.
    if (ps.initiator && ps.initiator->state() == discovery::Initiator::State::kInitiated) {
      ps.initiator.reset();
    }
  } else {
    e->claimable = config_.psks[psk_index].allowed_prefixes;
  }
  const bool initiator = s->initiator();
  const std::int32_t offset = s->clock_offset_ms();
  e->session = std::move(s);
  SessionEntry& ref = *e;
  sessions_.emplace(id, std::move(e));
  bridge_->add_session(id, initiator);
  ++stats_.sessions_established;
  spdlog::info("session {} established with {} ({}) using PSK {} as {}, clock offset {:+d} ms",
               short_id(id), remote.ip.to_string(),
               peer ? peers_[*peer]->config->name : std::string("a peer without an entry"),
               psks_.id(psk_index), initiator ? "initiator" : "responder", offset);
  on_window();  // open its ports now, not at the next tick
  if (!initiator) send_sequence_confirm(ref);
}

void Tunnel::remove_session(std::uint64_t id, const char* why) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  spdlog::info("session {} with {} closed: {}", short_id(id), it->second->remote.ip.to_string(), why);
  for (auto& p : peers_) {
    if (p->session_id == id) p->session_id = 0;
  }
  std::erase_if(by_address_, [id](const auto& kv) { return kv.second == id; });
  bridge_->remove_session(id);  // its applications' connections are reset
  sessions_.erase(it);  // the Session's keys are wiped by their owners' destructors
  ++stats_.sessions_lost;
}

Tunnel::SessionEntry* Tunnel::route(const IpAddress& destination) {
  // Peers' own virtual addresses: one hash lookup.
  if (auto it = by_address_.find(destination); it != by_address_.end()) {
    auto s = sessions_.find(it->second);
    if (s != sessions_.end()) return s->second.get();
  }
  // Routed prefixes behind peers: longest match over the (few) configured routes.
  SessionEntry* best = nullptr;
  int best_len = -1;
  for (auto& [id, e] : sessions_) {
    for (const Cidr& c : e->allowed) {
      if (c.contains(destination) && c.prefix_len > best_len) {
        best = e.get();
        best_len = c.prefix_len;
      }
    }
  }
  return best;
}

void Tunnel::send_sealed(SessionEntry& e, Bytes datagram) {
  // Send from the socket of our own current receive port, so source ports hop too.
  DatagramSocket* via = e.send_via != nullptr ? e.send_via : discovery_socket_.get();
  OutgoingDatagram out{datagram, SocketAddress{e.remote.ip, e.session->send_port(unix_ms())},
                       std::nullopt};
  auto sent = via->send_batch({&out, 1});
  if (!sent || *sent == 0) {
    ++stats_.send_errors;
  } else {
    ++stats_.datagrams_sent;
  }
}

void Tunnel::send_heartbeat(SessionEntry& e, bool probe) {
  std::array<std::uint8_t, 128> buf;
  auto n = e.session->make_heartbeat(buf, probe, unix_ms(), now());
  if (n) send_sealed(e, Bytes(buf.data(), *n));
}

void Tunnel::send_sequence_confirm(SessionEntry& e) {
  std::array<std::uint8_t, 256> buf;
  wire::Header h;
  h.type = wire::PacketType::kSequenceNeg;
  h.flags = wire::flags::kAck;
  auto body = wire::write_body(h, e.session->sequence_confirm(),
                               MutableBytes(buf).subspan(wire::kHeaderSize, wire::kSequenceNegBodySize));
  if (!body) return;
  auto n = e.session->seal(h, buf, *body, unix_ms(), now());
  if (n) send_sealed(e, Bytes(buf.data(), *n));
}

// ---- packet paths ----

void Tunnel::on_tun_readable() {
  // TUN → peers: up to one batch per wake-up, so sockets get their turn too.
  std::array<OutgoingDatagram, kBatch> out;
  std::array<PacketPool::Buffer, kBatch> held;
  std::array<DatagramSocket*, kBatch> via{};
  std::size_t n = 0;
  for (std::size_t i = 0; i < kBatch; ++i) {
    PacketPool::Buffer b = pool_.acquire();
    if (!b) {
      ++stats_.pool_exhausted;
      break;
    }
    MutableBytes space = b.space();
    auto got = tun_.read_packet(space.subspan(wire::kHeaderSize, space.size() - wire::kOverhead));
    if (!got || *got == 0) break;
    ++stats_.tun_packets_in;
    MutableBytes ip(space.data() + wire::kHeaderSize, *got);
    if (bridge_->on_tun_segment(ip)) continue;  // transparent TCP took it
    auto dst = ip_address_at(ip, true);
    if (!dst) {
      ++stats_.not_ip;
      continue;
    }
    SessionEntry* e = route(*dst);
    if (e == nullptr) {
      ++stats_.no_route;
      continue;
    }
    auto sealed = e->session->seal_datagram(space, *got, unix_ms(), now());
    if (!sealed) continue;
    b.set_length(*sealed);
    DatagramSocket* sock = e->send_via != nullptr ? e->send_via : discovery_socket_.get();
    out[n] = OutgoingDatagram{b.payload(), SocketAddress{e->remote.ip, e->session->send_port(unix_ms())},
                              std::nullopt};
    via[n] = sock;
    held[n] = std::move(b);
    ++n;
  }
  // Send in runs that share a socket, one sendmmsg each.
  std::size_t start = 0;
  while (start < n) {
    std::size_t end = start + 1;
    while (end < n && via[end] == via[start]) ++end;
    auto sent = via[start]->send_batch(std::span(out.data() + start, end - start));
    const std::size_t ok = sent ? *sent : 0;
    stats_.datagrams_sent += ok;
    stats_.send_errors += (end - start) - ok;
    start = end;
  }
}

void Tunnel::on_socket_readable(DatagramSocket& socket, bool discovery_socket) {
  std::array<PacketPool::Buffer, kBatch> held;
  std::array<ReceivedDatagram, kBatch> batch;
  std::size_t slots = 0;
  for (; slots < kBatch; ++slots) {
    held[slots] = pool_.acquire();
    if (!held[slots]) break;
    batch[slots].buffer = held[slots].space();
  }
  if (slots == 0) {
    ++stats_.pool_exhausted;
    return;
  }
  auto got = socket.receive_batch(std::span(batch.data(), slots));
  if (!got) return;
  for (std::size_t i = 0; i < *got; ++i) {
    if (batch[i].truncated) continue;
    ++stats_.datagrams_received;
    // On the steered path the discovery socket receives every hopping port
    // too; only what was sent to the discovery port itself is discovery.
    const bool to_discovery_port =
        discovery_socket && batch[i].destination.port == config_.network.discovery_port;
    on_datagram(batch[i].buffer.first(batch[i].length), batch[i].source, to_discovery_port);
  }
  bridge_->flush();
}

void Tunnel::on_datagram(MutableBytes datagram, const SocketAddress& source, bool discovery_socket) {
  if (datagram.size() < wire::kOverhead || datagram[0] != wire::kVersion) {
    ++stats_.rejected;
    return;
  }
  const auto type = static_cast<wire::PacketType>(datagram[1]);
  if (wire::is_discovery_type(type)) {
    if (!discovery_socket) {
      ++stats_.rejected;
      return;
    }
    if (type == wire::PacketType::kDiscovery) on_discovery(datagram, source);
    if (type == wire::PacketType::kDiscoveryResponse) on_response(datagram, source);
    if (type == wire::PacketType::kDiscoveryConfirm) on_confirm(datagram, source);
    return;
  }
  std::uint64_t id = 0;
  for (int i = 0; i < 8; ++i) id = (id << 8) | datagram[4 + static_cast<std::size_t>(i)];
  auto it = sessions_.find(id);
  if (it == sessions_.end()) {
    ++stats_.no_session;
    return;
  }
  on_session_packet(*it->second, datagram, source);
}

void Tunnel::on_session_packet(SessionEntry& e, MutableBytes datagram, const SocketAddress& source) {
  auto r = e.session->open(datagram, unix_ms(), now());
  if (!r) {
    ++stats_.rejected;
    warn_log_.log(now(), "session.rejected", spdlog::level::debug,
                  "datagram for session {} from {} refused: {}", short_id(e.id), source.to_string(),
                  r.error().what);
    return;
  }
  // The peer's address stays the one discovery saw: a copy of an authentic
  // packet re-sent from elsewhere must not redirect our traffic. (Roaming
  // needs a path check first; it is not in this version.)
  (void)source;
  switch (r->header.type) {
    case wire::PacketType::kDatagram: {
      auto src = ip_address_at(r->body, false);
      const bool ok = src && accept_source(e, *src);
      if (!ok) {
        ++stats_.spoofed_source;
        warn_log_.log(now(), "session.spoofed", spdlog::level::warn,
                      "session {}: inner packet from an address the peer may not use: dropped",
                      short_id(e.id));
        return;
      }
      if (tun_.write_packet(r->body)) ++stats_.tun_packets_out;
      return;
    }
    case wire::PacketType::kHeartbeat:
      if (r->answer_heartbeat) send_heartbeat(e, false);
      return;
    case wire::PacketType::kSyn:
    case wire::PacketType::kSynAck:
    case wire::PacketType::kAck:
    case wire::PacketType::kData:
    case wire::PacketType::kFin:
    case wire::PacketType::kRst:
    case wire::PacketType::kWindowUpdate:
    case wire::PacketType::kError: {
      if (r->header.connection_id == 0) {
        ++stats_.unsupported_type;
        return;
      }
      auto body = wire::parse_body(r->header, r->body);
      if (!body) {
        ++stats_.rejected;
        return;
      }
      bridge_->on_connection_packet(e.id, r->header, *body);
      return;
    }
    case wire::PacketType::kSequenceNeg: {
      if (!e.peer) return;
      PeerState& p = *peers_[*e.peer];
      auto body = wire::parse_body(r->header, r->body);
      if (body && p.initiator && p.initiator->state() == discovery::Initiator::State::kResponded &&
          p.initiator->consume_sequence_confirm(std::get<wire::SequenceNegBody>(*body))) {
        spdlog::info("session {} confirmed by {}", short_id(e.id), p.config->name);
      }
      return;
    }
    default:
      ++stats_.unsupported_type;
      return;
  }
}

bool Tunnel::accept_source(SessionEntry& e, const IpAddress& src) {
  for (const Cidr& c : e.allowed) {
    if (c.contains(src)) return true;
  }
  if (e.claimed) return *e.claimed == src;
  bool ok = false;
  for (const Cidr& c : e.claimable) ok = ok || c.contains(src);
  if (!ok) return false;
  // Never an address that belongs to us, to a configured peer (its own or one
  // of its routes) or to another session.
  if (by_address_.contains(src)) return false;
  if (config_.network.virtual_address.address == src) return false;
  if (config_.network.virtual_address6 && config_.network.virtual_address6->address == src) return false;
  for (const PeerConfig& pc : config_.peers) {
    if (pc.virtual_address == src) return false;
    for (const Cidr& route : pc.routes) {
      if (route.contains(src)) return false;
    }
  }
  e.claimed = src;
  by_address_[src] = e.id;
  spdlog::info("session {}: peer without an entry uses virtual address {}", short_id(e.id), src.to_string());
  return true;
}

// ---- StreamHost ----

std::uint64_t Tunnel::session_for(const IpAddress& destination) {
  SessionEntry* e = route(destination);
  return e == nullptr ? 0 : e->id;
}

bool Tunnel::source_allowed(std::uint64_t session, const IpAddress& source) {
  auto it = sessions_.find(session);
  return it != sessions_.end() && accept_source(*it->second, source);
}

void Tunnel::send_connection_packet(std::uint64_t session, wire::Header& header, MutableBytes packet,
                                    std::size_t body_len) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  SessionEntry& e = *it->second;
  // A SYN travels on the session's own port sequence: the peer cannot listen
  // on the ports of a connection it has not heard of yet (docs/protocol.md §10.3).
  const std::uint16_t port_of = header.type == wire::PacketType::kSyn ? 0 : header.connection_id;
  auto n = e.session->seal(header, packet, body_len, unix_ms(), now());
  if (!n) return;
  DatagramSocket* via = e.send_via != nullptr ? e.send_via : discovery_socket_.get();
  OutgoingDatagram out{Bytes(packet.data(), *n), SocketAddress{e.remote.ip, e.session->send_port(unix_ms(), port_of)},
                       std::nullopt};
  auto sent = via->send_batch({&out, 1});
  if (!sent || *sent == 0) {
    ++stats_.send_errors;
  } else {
    ++stats_.datagrams_sent;
  }
}

void Tunnel::write_tun(Bytes ip_packet) {
  if (tun_.write_packet(ip_packet)) ++stats_.tun_packets_out;
}

void Tunnel::connections_changed(std::uint64_t /*session*/) {
  // A new connection's ports open now, before its first packet leaves, so the
  // answer cannot arrive at a port we have not opened yet. Closing waits for
  // the next turn: we may be inside a callback of a socket it would close.
  on_window(false);
  if (ports_timer_ != kNoTimer) return;
  ports_timer_ = loop_.add_timer(0, [this] {
    ports_timer_ = kNoTimer;
    on_window();
  });
}

// ---- time ----

void Tunnel::schedule_window() {
  const std::int64_t t = unix_ms();
  const std::int64_t next = (hop::window_at(t) + 1) * hop::kHopIntervalMs;
  window_timer_ = loop_.add_timer(milliseconds(next - t) + 100, [this] {
    window_timer_ = kNoTimer;
    on_window();
    schedule_window();
  });
}

void Tunnel::on_window(bool close_unneeded) {
  // The ports every session needs now: w−d … w+d of connection 0 and of each
  // live connection (§10.3). User-space path: a socket for each, opened before
  // the old ones close (make before break). Steered path: those become the
  // valid pairs, and the only sockets are the ones we send from.
  const std::int64_t t = unix_ms();
  const std::int64_t w = hop::window_at(t);
  std::unordered_set<std::uint16_t> wanted;
  std::vector<ValidPort> valid;
  std::vector<std::uint16_t> ports;
  std::vector<std::uint16_t> conns;
  auto add_connection = [&](SessionEntry& e, std::uint16_t conn) {
    const std::size_t first = ports.size();
    e.session->listen_ports(t, conn, ports);
    if (steering_ == nullptr) return;
    const std::int64_t d = static_cast<std::int64_t>(ports.size() - first - 1) / 2;
    for (std::size_t i = first; i < ports.size(); ++i) {
      const std::int64_t window = w - d + static_cast<std::int64_t>(i - first);
      valid.push_back(ValidPort{e.remote.ip, ports[i], e.id, static_cast<std::uint32_t>(window), conn});
    }
  };
  for (auto& [id, e] : sessions_) {
    ports.clear();
    add_connection(*e, 0);
    // Our current window's port, in the middle of w−d … w+d: we send from it.
    const std::uint16_t send_port = ports[ports.size() / 2];
    conns.clear();
    bridge_->connection_ids(id, conns);
    for (std::uint16_t c : conns) add_connection(*e, c);
    if (steering_ != nullptr) {
      wanted.insert(send_port);
    } else {
      wanted.insert(ports.begin(), ports.end());
    }
    e->send_via = nullptr;  // re-chosen below, once the sockets exist
  }
  if (steering_ != nullptr) {
    auto updated = steering_->set_valid_ports(valid);
    if (updated) {
      ++stats_.valid_port_updates;
      stats_.valid_ports = valid.size();
      stats_.valid_port_update_max_ns =
          std::max<std::uint64_t>(stats_.valid_port_update_max_ns, static_cast<std::uint64_t>(updated->count()));
    } else {
      ++stats_.valid_port_update_failures;
      warn_log_.log(now(), "ports.steer", spdlog::level::warn,
                    "cannot update the valid hopping ports ({} pairs): {}", valid.size(),
                    updated.error().message);
    }
  }
  wanted.erase(config_.network.discovery_port);  // the discovery socket serves it
  // Steered path: the ports about to be bound are ours before they exist, so
  // the frame filter never takes them for another application's.
  auto record_own_ports = [&](bool with_wanted) {
    if (steering_ == nullptr) return;
    std::vector<std::uint16_t> own{config_.network.discovery_port};
    for (const auto& [port, sock] : port_sockets_) own.push_back(port);
    if (with_wanted) own.insert(own.end(), wanted.begin(), wanted.end());
    if (auto r = steering_->set_own_ports(own); !r) {
      warn_log_.log(now(), "ports.own", spdlog::level::warn, "cannot record the tunnel's own ports: {}",
                    r.error().message);
    }
  };
  record_own_ports(true);
  for (std::uint16_t port : wanted) {
    if (port_sockets_.contains(port)) continue;
    auto sock = bind_socket_(SocketAddress{config_.network.listen_address, port});
    if (!sock) {
      ++stats_.port_bind_failures;
      warn_log_.log(now(), "ports.bind", spdlog::level::warn, "hopping port {} unavailable: {}",
                    port, sock.error().message);
      continue;
    }
    DatagramSocket* raw = sock->get();
    auto watched = loop_.watch_fd(raw->fd(), kReadable, [this, raw](std::uint32_t) {
      on_socket_readable(*raw, false);
    });
    if (!watched) continue;
    port_sockets_.emplace(port, std::move(*sock));
  }
  for (auto it = port_sockets_.begin(); close_unneeded && it != port_sockets_.end();) {
    if (wanted.contains(it->first)) {
      ++it;
      continue;
    }
    // Drain what already arrived before letting the port go.
    on_socket_readable(*it->second, false);
    loop_.unwatch_fd(it->second->fd());
    it = port_sockets_.erase(it);
  }
  stats_.ports_open = port_sockets_.size();
  record_own_ports(false);
  for (auto& [id, e] : sessions_) {
    ports.clear();
    e->session->listen_ports(t, 0, ports);
    if (ports.empty()) continue;
    auto it = port_sockets_.find(ports[ports.size() / 2]);
    if (it != port_sockets_.end()) e->send_via = it->second.get();
  }
}

void Tunnel::housekeeping() {
  const TimePoint t = now();
  responder_->on_time(t);
  bridge_->housekeeping();
  std::vector<std::uint64_t> dead;
  for (auto& [id, e] : sessions_) {
    if (e->session->next_expiry() > t) continue;
    auto x = e->session->on_expiry(t);
    if (x.dead) {
      dead.push_back(id);
      continue;
    }
    if (x.probe || x.send_heartbeat) send_heartbeat(*e, x.probe);
  }
  for (std::uint64_t id : dead) {
    std::optional<std::size_t> peer = sessions_.at(id)->peer;
    remove_session(id, "peer stopped answering");
    if (peer && peers_[*peer]->config->initiate && peers_[*peer]->config->endpoint) {
      start_discovery(*peers_[*peer]);
    }
  }
  for (auto& p : peers_) {
    if (!p->initiator) continue;
    const auto state = p->initiator->state();
    if (state == discovery::Initiator::State::kInitiated || state == discovery::Initiator::State::kResponded) {
      if (p->initiator->next_expiry() <= t) {
        if (auto again = p->initiator->on_expiry(t)) {
          OutgoingDatagram out{*again, *p->config->endpoint, std::nullopt};
          (void)discovery_socket_->send_batch({&out, 1});
        }
      }
    }
    if (p->initiator->state() == discovery::Initiator::State::kFailed && p->session_id == 0) {
      if (p->retry_at == kNever) {
        warn_log_.log(t, "discovery.failed", spdlog::level::warn,
                      "discovery towards {} got no answer; retrying", p->config->name);
        p->retry_at = t + kDiscoveryRetryDelay;
      } else if (t >= p->retry_at) {
        start_discovery(*p);
      }
    }
  }
  warn_log_.flush(t);
}

}  // namespace buckwild::daemon

// The stream bridge's TUN side: segments the kernel hands us, rewritten by the
// NAT and written back (GSO super-packets of NAT'd flows whole); client flows opening on an application's SYN; and the
// listener accepting the application's connection once the far side is there.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "daemon/stream/bridge.h"

namespace buckwild::daemon {

using inner::make_rst;
using inner::parse_tcp;
using inner::rewrite_tcp;
using inner::TcpSegment;

namespace {

wire::StreamTarget make_target(const TcpSegment& s) {
  wire::StreamTarget t;
  t.family = s.source.ip.is_v4() ? 4 : 6;
  std::copy(s.source.ip.bytes().begin(), s.source.ip.bytes().end(), t.source.begin());
  std::copy(s.destination.ip.bytes().begin(), s.destination.ip.bytes().end(), t.destination.begin());
  t.source_port = s.source.port;
  t.destination_port = s.destination.port;
  return t;
}

}  // namespace

bool StreamBridge::on_tun_segment(MutableBytes ip_packet) {
  auto s = parse_tcp(ip_packet);
  if (!s) return false;
  if (const NatRule* rule = nat_.find(NatKey{s->source, s->destination})) {
    Flow& f = *flows_.at(rule->flow);
    const bool from_app = f.side == FlowSide::kClient && s->source == f.app;
    if (from_app && s->opening() && !is_live(f.state())) {
      // The application reuses the 4-tuple of a finished flow: a new flow.
      destroy(f.id);
      if (!options_.open_local) return false;
      open_flow(ip_packet, *s);
      return true;
    }
    if (from_app && f.state() == FlowState::kHoldingSyn) {
      return true;  // a retransmitted SYN (or early data): the far side has not connected yet
    }
    const NatRule r = *rule;
    rewrite_tcp(ip_packet, *s, r.source, r.destination);
    host_.write_tun(ip_packet);
    ++stats_.rewritten;
    return true;
  }
  if (!options_.open_local || !s->opening()) return false;
  if (s->destination.ip == options_.virtual_v4 || s->destination.ip == options_.virtual_v6) return false;
  if (host_.session_for(s->destination.ip) == 0) return false;
  if (listener_for(s->source.ip) == nullptr) return false;  // no address of that family here
  open_flow(ip_packet, *s);
  return true;
}

bool StreamBridge::on_tun_gso(const offload::VnetHeader& header, MutableBytes ip_packet,
                              std::size_t segments) {
  auto s = parse_tcp(ip_packet);
  // SYN and RST change a flow's state: on_tun_segment() sees them.
  if (!s || s->has(inner::tcp_flag::kSyn) || s->has(inner::tcp_flag::kRst)) return false;
  const NatRule* rule = nat_.find(NatKey{s->source, s->destination});
  if (rule == nullptr) return false;
  const Flow& f = *flows_.at(rule->flow);
  if (f.side == FlowSide::kClient && s->source == f.app && f.state() == FlowState::kHoldingSyn) {
    return false;  // early data: on_tun_segment() decides
  }
  const NatRule r = *rule;
  const bool partial = (header.flags & offload::vnet_flag::kNeedsCsum) != 0;
  rewrite_tcp(ip_packet, *s, r.source, r.destination,
              partial ? inner::TcpChecksumField::kPseudoHeaderSum : inner::TcpChecksumField::kComplete);
  // Same lengths, same offsets: the header stays as it is.
  host_.write_tun_gso(header, ip_packet, segments);
  stats_.rewritten += segments;
  ++stats_.rewritten_whole;
  return true;
}

// CLIENT: the application's SYN opens a connection whose SYN names the
// original addresses; the application's SYN waits until it is established.
void StreamBridge::open_flow(MutableBytes ip_packet, const TcpSegment& s) {
  const std::uint64_t session = host_.session_for(s.destination.ip);
  Streams* st = streams(session);
  const StreamListener* listener = listener_for(s.source.ip);
  if (st == nullptr || listener == nullptr) {
    answer_with_rst(s);
    return;
  }
  // Counted per local user: the socket's owner, asked of the kernel.
  const std::optional<std::uint32_t> uid = tcp_.owner_uid(s.source, s.destination);
  const FlowOwner owner = uid ? FlowOwner::local_user(*uid) : FlowOwner::by_address(s.source.ip);
  if (!nat_.admits(owner)) {
    ++stats_.limit_refusals;
    ++stats_.refused;
    answer_with_rst(s);
    return;
  }
  const TimePoint now = loop_.now();
  const FlowId id = next_flow_id_++;
  const std::optional<std::uint16_t> port = allocate_port(id);
  auto c = port ? st->table->open(now, make_target(s))
                : Result<conn::Connection*>(fail(ErrorCode::kMemoryExhausted, "no NAT port"));
  if (!c) {
    if (port) nat_.release_port(*port, id);
    log_.log(now, "stream.open_failed", spdlog::level::warn,
             "transparent TCP: {} -> {} refused: {}", s.source.to_string(), s.destination.to_string(),
             c.error().code == ErrorCode::kMemoryExhausted && port
                 ? std::string("every connection id of the session is in use or resting after its "
                               "connection (TIME_WAIT, 60 s)")
                 : c.error().what);
    ++stats_.refused;
    answer_with_rst(s);
    return;
  }
  auto owned = std::make_unique<Flow>(FlowSide::kClient);
  owned->id = id;
  owned->session = session;
  owned->conn = *c;
  owned->conn_id = (*c)->id();
  owned->app = s.source;
  owned->owner = owner;
  owned->target = s.destination;
  const IpAddress& here = s.source.ip.is_v4() ? *options_.virtual_v4 : *options_.virtual_v6;
  owned->local = SocketAddress{here, listener->port()};
  owned->nat_port = *port;
  owned->held_syn.assign(ip_packet.begin(), ip_packet.end());
  // The far side has its own connect timeout; the connection's handshake
  // gives up at this one.
  owned->deadline = now + options_.connection.connect_timeout;
  Flow& f = add_flow(std::move(owned));
  const SocketAddress seen{f.target.ip, f.nat_port};  // how the listener sees the application
  install_key(f, NatKey{f.app, f.target}, seen, f.local);
  install_key(f, NatKey{f.local, seen}, f.target, f.app);
  st->by_conn[f.conn_id] = f.id;
  ++stats_.opened;
  host_.connections_changed(session);  // our ports for its replies, before the SYN leaves
  service(f);
}

std::optional<std::uint16_t> StreamBridge::allocate_port(FlowId id) {
  if (auto p = nat_.allocate_port(id)) return p;
  // Every port is held. Live flows are at most max_flows (< kPorts), so most
  // are held by flows that are over: the one that ended first gives its port
  // up early (bounded: each entry of lingering_ is looked at once).
  while (!lingering_.empty()) {
    const FlowId oldest = lingering_.front();
    lingering_.pop_front();
    auto it = flows_.find(oldest);
    if (it == flows_.end() || is_live(it->second->state()) || it->second->nat_port == 0) continue;
    destroy(oldest);
    ++stats_.ports_reclaimed;
    return nat_.allocate_port(id);
  }
  return std::nullopt;
}

void StreamBridge::answer_with_rst(const TcpSegment& s) {
  std::array<std::uint8_t, 64> rst;
  const std::size_t n = make_rst(s, rst);
  if (n != 0) host_.write_tun(Bytes(rst.data(), n));
}

void StreamBridge::refuse_held_syn(Flow& f) {
  if (auto s = parse_tcp(f.held_syn)) answer_with_rst(*s);
  f.held_syn.clear();
  f.held_syn.shrink_to_fit();
}

// CLIENT: the far side has connected: let our listener take the application's SYN.
void StreamBridge::release_held_syn(Flow& f) {
  if (auto s = parse_tcp(f.held_syn)) {
    MutableBytes p(f.held_syn);
    rewrite_tcp(p, *s, SocketAddress{f.target.ip, f.nat_port}, f.local);
    host_.write_tun(p);
  }
  f.held_syn.clear();
  f.held_syn.shrink_to_fit();
  f.syn_released = true;
  f.on(FlowEvent::kFarConnected);
  f.deadline = loop_.now() + options_.limits.connect_timeout;  // until accept()
}

void StreamBridge::on_accepted(TcpListener::Accepted accepted) {
  auto it = flows_.find(nat_.port_owner(accepted.peer.port));
  if (it == flows_.end()) return;  // not one of ours: closing it refuses it
  Flow& f = *it->second;
  if (f.state() != FlowState::kAwaitingAccept || accepted.peer.ip != f.target.ip) return;
  f.stream = std::move(accepted.stream);
  f.deadline = kNever;
  f.on(FlowEvent::kAccepted);
  service(f);
}

}  // namespace buckwild::daemon

#include "daemon/stream/bridge.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/wire/codec.h"

namespace buckwild::daemon {
namespace {

constexpr int kReadsPerService = 16;
constexpr int kTransmitsPerService = 512;

}  // namespace

SysResult<std::unique_ptr<StreamBridge>> StreamBridge::create(const Options& options, StreamHost& host,
                                                              EventLoop& loop, TcpEndpoints& tcp,
                                                              crypto::RandomSource& rng) {
  std::unique_ptr<StreamBridge> b(new StreamBridge(options, host, loop, tcp, rng));
  if (options.virtual_v4) {
    auto l = b->listen(*options.virtual_v4);
    if (!l) return std::unexpected(l.error());
    b->listener4_ = std::move(*l);
  }
  if (options.virtual_v6) {
    auto l = b->listen(*options.virtual_v6);
    if (!l) return std::unexpected(l.error());
    b->listener6_ = std::move(*l);
  }
  return b;
}

StreamBridge::StreamBridge(const Options& options, StreamHost& host, EventLoop& loop, TcpEndpoints& tcp,
                           crypto::RandomSource& rng)
    : memory_(options.limits.memory),
      options_(options),
      host_(host),
      loop_(loop),
      tcp_(tcp),
      rng_(rng),
      log_(5, seconds(10)),
      nat_(NatLimits{options.limits.max_flows, options.limits.max_per_source},
           options.limits.nat_ports),
      scratch_(kPumpChunk) {
  options_.connection.memory = &memory_;
}

StreamBridge::~StreamBridge() {
  for (auto& [id, f] : flows_) {
    if (f->timer != kNoTimer) loop_.cancel_timer(f->timer);
    if (f->interest != 0) loop_.unwatch_fd(f->stream->fd());
  }
  // Listeners unwatch themselves; connections go with their tables; sockets
  // close with their flows.
}

SysResult<std::unique_ptr<StreamListener>> StreamBridge::listen(const IpAddress& address) {
  auto listener = tcp_.listen(address);
  if (!listener) return std::unexpected(listener.error());
  const std::uint16_t port = (*listener)->port();
  auto l = StreamListener::create(
      loop_, std::move(*listener), [this](TcpListener::Accepted a) { on_accepted(std::move(a)); },
      stats_.listener, log_);
  if (!l) return std::unexpected(l.error());
  spdlog::info("transparent TCP: listener on {}", SocketAddress{address, port}.to_string());
  return l;
}

StreamListener* StreamBridge::listener_for(const IpAddress& address) const {
  return address.is_v4() ? listener4_.get() : listener6_.get();
}

std::uint16_t StreamBridge::listener_port(const IpAddress& address) const {
  const StreamListener* l = listener_for(address);
  return l == nullptr ? 0 : l->port();
}

// ---- sessions ----

void StreamBridge::add_session(std::uint64_t session, SessionRole role) {
  if (sessions_.contains(session)) return;
  auto st = std::make_unique<Streams>();
  st->session = session;
  st->table =
      std::make_unique<conn::ConnectionTable>(role == SessionRole::kInitiator, options_.connection, rng_);
  sessions_.emplace(session, std::move(st));
}

void StreamBridge::set_send_mss(std::uint64_t session, std::size_t bytes) {
  auto it = sessions_.find(session);
  if (it != sessions_.end()) it->second->table->set_send_mss(bytes);
}

void StreamBridge::remove_session(std::uint64_t session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  std::vector<FlowId> ids;
  for (auto& [id, f] : flows_) {
    if (f->session == session && is_live(f->state())) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  for (FlowId id : ids) {
    Flow& f = *flows_.at(id);
    if (f.state() == FlowState::kHoldingSyn) refuse_held_syn(f);
    finish(f, Ending::kAbortive);
  }
  sessions_.erase(it);
}

bool StreamBridge::move_session(std::uint64_t from, std::uint64_t to) {
  auto it = sessions_.find(from);
  if (it == sessions_.end() || from == to) return false;
  if (auto existing = sessions_.find(to); existing != sessions_.end()) {
    // add_session made an empty table for `to`: the old one replaces it (the
    // connection ids stay of the old session's parity, on both sides).
    if (existing->second->table->size() != 0) return false;
    sessions_.erase(existing);
  }
  std::unique_ptr<Streams> st = std::move(it->second);
  sessions_.erase(it);
  st->session = to;
  for (auto& [id, f] : flows_) {
    if (f->session != from) continue;
    f->session = to;
    if (f->owner.kind == FlowOwner::Kind::kPeer && f->owner.id == from) {
      // The peer's flows count against the session that carries them.
      if (f->counted) nat_.uncount_flow(f->owner);
      f->owner = FlowOwner::peer(to);
      if (f->counted) nat_.count_flow(f->owner);
    }
  }
  sessions_.emplace(to, std::move(st));
  host_.connections_changed(to);
  return true;
}

std::size_t StreamBridge::on_peer_back(std::uint64_t session) {
  if (sessions_.find(session) == sessions_.end()) return 0;
  const TimePoint now = loop_.now();
  std::vector<FlowId> ids;
  for (auto& [id, f] : flows_) {
    if (f->session == session && f->conn != nullptr && is_live(f->state()) &&
        f->conn->on_path_restored(now)) {
      ids.push_back(id);
    }
  }
  std::sort(ids.begin(), ids.end());
  for (FlowId id : ids) {
    auto it = flows_.find(id);
    if (it != flows_.end()) service(*it->second);
  }
  return ids.size();
}

StreamBridge::Streams* StreamBridge::streams(std::uint64_t session) {
  auto it = sessions_.find(session);
  return it == sessions_.end() ? nullptr : it->second.get();
}

void StreamBridge::remove_connection(Streams& st, std::uint16_t id, TimePoint now) {
  if (const conn::Connection* c = st.table->find(id)) {
    st.retransmissions_ended += c->stats().sender.retransmissions;
  }
  st.table->remove(id, now);
  while (!st.ended.empty() && (st.ended.front().second <= now || st.ended.size() >= kMaxEndedListed)) {
    st.ended.pop_front();
  }
  st.ended.emplace_back(id, now + kEndedPortsLinger);
}

void StreamBridge::set_limits(std::size_t max_flows, std::size_t max_per_source) {
  options_.limits.max_flows = max_flows;
  options_.limits.max_per_source = max_per_source;
  nat_.set_limits(NatLimits{max_flows, max_per_source});
}

StreamBridge::SessionConnections StreamBridge::session_connections(std::uint64_t session) const {
  SessionConnections out;
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return out;
  const Streams& st = *it->second;
  out.retransmissions = st.retransmissions_ended;
  for (std::uint16_t id : st.table->ids()) {
    const conn::Connection* c = st.table->find(id);
    if (c == nullptr) continue;
    ++out.live;
    out.retransmissions += c->stats().sender.retransmissions;
    const Duration rtt = c->sender().rtt().smoothed();
    if (rtt > 0 && (!out.min_rtt || rtt < *out.min_rtt)) out.min_rtt = rtt;
  }
  return out;
}

std::vector<StreamBridge::ConnectionView> StreamBridge::connections(std::uint64_t session) const {
  std::vector<ConnectionView> out;
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return out;
  const Streams& st = *it->second;
  for (std::uint16_t id : st.table->ids()) {
    const conn::Connection* c = st.table->find(id);
    if (c == nullptr) continue;
    ConnectionView v{.id = id, .conn = c};
    if (auto f = st.by_conn.find(id); f != st.by_conn.end()) {
      if (auto flow = flows_.find(f->second); flow != flows_.end()) {
        v.app = &flow->second->app;
        v.target = &flow->second->target;
        v.client = flow->second->side == FlowSide::kClient;
      }
    }
    out.push_back(v);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

void StreamBridge::connection_ids(std::uint64_t session, std::vector<std::uint16_t>& out) const {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  const std::size_t live = out.size();
  for (const auto& [id, flow] : it->second->by_conn) out.push_back(id);
  const TimePoint now = loop_.now();
  for (const auto& [id, until] : it->second->ended) {
    if (until <= now) continue;
    if (std::find(out.begin() + static_cast<std::ptrdiff_t>(live), out.end(), id) == out.end()) {
      out.push_back(id);
    }
  }
}

std::size_t StreamBridge::buffered_bytes() const {
  std::size_t n = 0;
  for (const auto& [id, f] : flows_) {
    if (f->conn) n += f->conn->memory().buffers;
    n += f->out.bytes.capacity();
  }
  return n;
}

// ---- a flow from start to end ----

Flow& StreamBridge::add_flow(std::unique_ptr<Flow> flow) {
  Flow& f = *flow;
  flows_.emplace(f.id, std::move(flow));
  nat_.count_flow(f.owner);
  f.counted = true;
  return f;
}

void StreamBridge::install_key(Flow& f, const NatKey& k, const SocketAddress& source,
                               const SocketAddress& destination) {
  f.keys.push_back(k);
  const NatRule rule{f.id, source, destination};
  const std::optional<FlowId> displaced = nat_.insert(k, rule);
  host_.nat_rule_added(k, rule);
  if (!displaced) return;
  if (auto it = flows_.find(*displaced); it != flows_.end() && !is_live(it->second->state())) {
    destroy(*displaced);
  }
}

void StreamBridge::service(Flow& f) {
  if (f.conn == nullptr) {  // a server flow still connecting
    arm_timer(f);
    return;
  }
  pump(f);
  transmit(f);
  handle_events(f);
  if (!is_live(f.state())) return;
  transmit(f);  // what the events queued (an RST, a window update)
  update_interest(f);
  arm_timer(f);
}

void StreamBridge::pump(Flow& f) {
  if (!f.stream) return;
  if (reads_socket(f.state())) {
    const PumpResult r = pump_socket_to_connection(*f.stream, *f.conn, scratch_, kReadsPerService);
    stats_.bytes_up += r.bytes;
    if (r.end == PumpEnd::kFinished) {
      f.on(FlowEvent::kLocalEof);  // the application finished sending: half-close
      f.conn->shutdown_write();
    } else if (r.end == PumpEnd::kFailed) {
      abort(f);  // the application reset its connection
      f.conn->reset(ErrorCode::kSuccess);
      return;
    }
  }
  if (writes_socket(f.state())) {
    const PumpResult r = pump_connection_to_socket(*f.stream, *f.conn, f.out, scratch_);
    stats_.bytes_down += r.bytes;
    if (r.end == PumpEnd::kFinished) {
      f.stream->shutdown_write();  // pass the peer's FIN on
      f.on(FlowEvent::kPeerFinPassed);
    } else if (r.end == PumpEnd::kFailed) {
      abort(f);
      f.conn->reset(ErrorCode::kSuccess);
    }
  }
}

void StreamBridge::transmit(Flow& f) {
  if (f.conn == nullptr) return;
  const TimePoint now = loop_.now();
  wire::Header h;
  std::size_t len = 0;
  for (int i = 0; i < kTransmitsPerService; ++i) {
    h = wire::Header{};
    const MutableBytes buf = host_.connection_packet_buffer();
    if (!f.conn->poll_transmit(now, h, buf.subspan(wire::kHeaderSize, wire::kMaxBodySize), len)) break;
    host_.send_connection_packet(f.session, h, buf, len);
  }
}

void StreamBridge::handle_events(Flow& f) {
  while (auto e = f.conn->poll_event()) {
    switch (e->kind) {
      case conn::EventKind::kEstablished:
        if (f.state() == FlowState::kHoldingSyn) release_held_syn(f);
        break;
      case conn::EventKind::kPeerFinished:
        break;  // passed on once its bytes are written (pump)
      case conn::EventKind::kReset:
      case conn::EventKind::kFailed:
        if (f.state() == FlowState::kHoldingSyn) refuse_held_syn(f);
        abort(f);
        break;
      case conn::EventKind::kClosed:
        break;  // seen in the connection's state below
    }
  }
  const bool closed = f.conn->state() == conn::State::kClosed;
  if (f.state() == FlowState::kBothFinished && f.conn->state() == conn::State::kTimeWait && f.counted) {
    // Both FINs went through and ours was acknowledged: the application's
    // side is over. Its socket closes now and the flow stops counting
    // against the limits (as a kernel socket in TIME_WAIT holds no
    // descriptor); the connection alone waits out TIME_WAIT, answering a
    // repeated FIN, and then ends the flow.
    if (f.stream) {
      if (f.interest != 0) loop_.unwatch_fd(f.stream->fd());
      f.interest = 0;
      f.stream.reset();
    }
    nat_.uncount_flow(f.owner);
    f.counted = false;
  }
  if (closed && f.state() == FlowState::kAborting) {
    finish(f, Ending::kAbortive);
  } else if (closed && f.state() == FlowState::kBothFinished) {
    finish(f, Ending::kGraceful);
  }
}

void StreamBridge::update_interest(Flow& f) {
  if (!f.stream || f.state() == FlowState::kConnecting) return;  // connecting: peer_side.cc watches
  std::uint32_t want = 0;
  if (reads_socket(f.state()) && f.conn->send_capacity() > 0) want |= kReadable;
  if (writes_socket(f.state()) && !f.out.empty()) want |= kWritable;
  if (want == f.interest) return;
  if (want == 0) {
    // Not watching at all (rather than for nothing) keeps a hung-up socket
    // from waking the loop on every turn.
    loop_.unwatch_fd(f.stream->fd());
  } else if (f.interest == 0) {
    const FlowId id = f.id;
    auto w = loop_.watch_fd(f.stream->fd(), want, [this, id](std::uint32_t) {
      if (auto it = flows_.find(id); it != flows_.end() && is_live(it->second->state())) service(*it->second);
    });
    if (!w) return;
  } else if (!loop_.update_fd(f.stream->fd(), want)) {
    return;
  }
  f.interest = want;
}

// ---- time: each flow's loop timer, armed at its earliest deadline ----

void StreamBridge::arm_timer(Flow& f) {
  TimePoint at = f.deadline;
  if (f.conn != nullptr) at = std::min(at, f.conn->next_expiry());
  if (at == f.timer_at) return;
  if (f.timer != kNoTimer) loop_.cancel_timer(f.timer);
  f.timer = kNoTimer;
  f.timer_at = at;
  if (at == kNever) return;
  const FlowId id = f.id;
  f.timer = loop_.add_timer_at(at, [this, id] { on_flow_timer(id); });
}

void StreamBridge::on_flow_timer(FlowId id) {
  auto it = flows_.find(id);
  if (it == flows_.end()) return;
  Flow& f = *it->second;
  f.timer = kNoTimer;
  f.timer_at = kNever;
  const TimePoint now = loop_.now();
  if (!is_live(f.state())) {
    if (f.deadline <= now) {
      destroy(id);  // the linger time is over: its keys go
    } else {
      arm_timer(f);
    }
    return;
  }
  if (f.deadline <= now) {
    f.deadline = kNever;
    switch (f.state()) {
      case FlowState::kConnecting:  // the server did not answer in time
        refuse_remote(f.session, f.conn_id, ErrorCode::kDestinationUnreachable);
        finish(f, Ending::kAbortive);
        return;
      case FlowState::kHoldingSyn:  // the far side never answered
        refuse_held_syn(f);
        abort(f);
        f.conn->reset(ErrorCode::kTimeout);
        break;
      case FlowState::kAwaitingAccept:  // connected far away but never accepted here
        abort(f);
        f.conn->reset(ErrorCode::kTimeout);
        break;
      default:
        break;
    }
  }
  if (f.conn != nullptr && f.conn->next_expiry() <= now) f.conn->on_expiry(now);
  service(f);
}

// ---- ending ----

void StreamBridge::abort(Flow& f) {
  const FlowState was = f.state();
  if (was == FlowState::kAborting) return;
  if (carries_data(was)) {
    ++stats_.resets;
  } else {
    ++stats_.refused;  // it never got as far as bytes
  }
  f.on(FlowEvent::kReset);
}

void StreamBridge::finish(Flow& f, Ending ending) {
  const FlowState was = f.state();
  if (!is_live(was)) return;
  const TimePoint now = loop_.now();
  if (f.stream) {
    if (f.interest != 0) loop_.unwatch_fd(f.stream->fd());
    f.interest = 0;
    if (ending == Ending::kAbortive) f.stream->abort_on_close();  // an RST, as the far end's was
    f.stream.reset();
  }
  if (Streams* st = streams(f.session)) {
    if (f.conn != nullptr) {
      if (ending == Ending::kAbortive && f.conn->state() != conn::State::kClosed) {
        f.conn->reset(ErrorCode::kSuccess);
        transmit(f);
      }
      remove_connection(*st, f.conn_id, now);
    }
    if (auto it = st->by_conn.find(f.conn_id); it != st->by_conn.end() && it->second == f.id) {
      st->by_conn.erase(it);
    }
    host_.connections_changed(f.session);
  }
  f.conn = nullptr;
  if (f.counted) nat_.uncount_flow(f.owner);
  f.counted = false;
  if (f.nat_port != 0) {
    if (f.syn_released) {
      // Its port may be reclaimed, oldest first. Entries of flows already
      // gone leave from the front: the queue holds about the flows that
      // ended within one linger time.
      while (!lingering_.empty() && !flows_.contains(lingering_.front())) lingering_.pop_front();
      lingering_.push_back(f.id);
    } else {
      // No kernel socket ever used P (the SYN was refused while held): free now.
      nat_.release_port(f.nat_port, f.id);
      f.nat_port = 0;
    }
  }
  if (carries_data(was)) {
    ++(ending == Ending::kAbortive ? stats_.resets : stats_.completed);
  } else if (was != FlowState::kAborting) {
    ++stats_.refused;  // ended while opening: refused
  }
  f.out.release();
  f.held_syn.clear();
  f.held_syn.shrink_to_fit();
  f.on(FlowEvent::kEnded);
  f.deadline = now + options_.limits.linger;
  arm_timer(f);
}

void StreamBridge::destroy(FlowId id) {
  auto it = flows_.find(id);
  if (it == flows_.end()) return;
  Flow& f = *it->second;
  finish(f, Ending::kAbortive);  // no-op once lingering
  for (const NatKey& k : f.keys) {
    const NatRule* rule = nat_.find(k);
    if (rule == nullptr || rule->flow != id) continue;  // another flow holds the key now
    host_.nat_rule_removed(k);
    nat_.erase(k, id);
  }
  if (f.nat_port != 0) nat_.release_port(f.nat_port, id);
  if (f.timer != kNoTimer) loop_.cancel_timer(f.timer);
  flows_.erase(it);
}

}  // namespace buckwild::daemon

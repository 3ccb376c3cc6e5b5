#include "daemon/stream/bridge.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/wire/codec.h"

namespace buckwild::daemon {

using inner::make_rst;
using inner::parse_tcp;
using inner::rewrite_tcp;
using inner::TcpSegment;

namespace {

constexpr std::size_t kChunk = 64 * 1024;  // one socket read or write
constexpr int kAcceptBatch = 64;
constexpr int kReadsPerService = 16;
constexpr int kTransmitsPerService = 512;

wire::StreamTarget make_target(const TcpSegment& s) {
  wire::StreamTarget t;
  t.family = s.source.ip.is_v4() ? 4 : 6;
  std::copy(s.source.ip.bytes().begin(), s.source.ip.bytes().end(), t.source.begin());
  std::copy(s.destination.ip.bytes().begin(), s.destination.ip.bytes().end(), t.destination.begin());
  t.source_port = s.source.port;
  t.destination_port = s.destination.port;
  return t;
}

IpAddress target_address(std::uint8_t family, const std::array<std::uint8_t, 16>& bytes) {
  if (family == 4) return IpAddress::v4({bytes[0], bytes[1], bytes[2], bytes[3]});
  return IpAddress::v6(bytes);
}

}  // namespace

struct StreamBridge::Flow {
  enum class Phase : std::uint8_t {
    kOpening,     // client: the application's SYN is held until the far side connects
    kConnecting,  // server: our connect() to the destination is under way
    kOpen,        // bytes flow
    kLingering,   // over; its NAT keys stay a while for late segments
  };
  std::uint64_t id = 0;
  bool client = false;
  std::uint64_t session = 0;
  std::uint16_t conn_id = 0;
  conn::Connection* conn = nullptr;  // owned by the session's ConnectionTable
  Phase phase = Phase::kOpening;
  std::unique_ptr<TcpStream> stream;
  std::uint32_t interest = 0;  // what the loop watches on fd (0: not watched)
  SocketAddress app;           // the application's end (here or on the peer)
  SocketAddress target;        // where it connected to
  SocketAddress local;         // client: our listener; server: our connecting socket
  std::uint16_t nat_port = 0;  // client: the source port the listener sees
  std::vector<Key> keys;
  std::vector<std::uint8_t> held_syn;  // client: the application's SYN
  wire::Header remote_syn_header;      // server: replayed into the table once connected
  wire::SynBody remote_syn;
  std::vector<std::uint8_t> out;  // taken from the connection, not yet written to the socket
  std::size_t out_done = 0;
  bool read_eof = false;   // the socket said EOF; our FIN is queued
  bool write_shut = false; // the peer's FIN was passed on (shutdown(SHUT_WR))
  bool closed = false;     // the connection reported kClosed
  bool aborted = false;    // reset, by either end
  bool counted = false;    // counted in per_source_ and live_flows_
  bool dirty = false;
  TimePoint deadline = kNever;
  TimePoint scheduled = kNever;
};

struct StreamBridge::Streams {
  std::uint64_t session = 0;
  std::unique_ptr<conn::ConnectionTable> table;
  std::unordered_map<std::uint16_t, std::uint64_t> by_conn;  // connection id -> flow
};

std::size_t StreamBridge::KeyHash::operator()(const Key& k) const noexcept {
  std::hash<SocketAddress> h;
  return h(k.source) * 1000003u ^ h(k.destination);
}

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
    : options_(options),
      host_(host),
      loop_(loop),
      tcp_(tcp),
      rng_(rng),
      scratch_(std::max(kChunk, wire::kMaxDatagramSize)) {}

StreamBridge::~StreamBridge() {
  if (timer_ != kNoTimer) loop_.cancel_timer(timer_);
  for (auto& [id, f] : flows_) {
    if (f->interest != 0) loop_.unwatch_fd(f->stream->fd());
  }
  if (listener4_) loop_.unwatch_fd(listener4_->fd());
  if (listener6_) loop_.unwatch_fd(listener6_->fd());
  // Connections go with their tables; sockets close with their flows.
}

SysResult<std::unique_ptr<TcpListener>> StreamBridge::listen(const IpAddress& address) {
  auto listener = tcp_.listen(address);
  if (!listener) return std::unexpected(listener.error());
  TcpListener* raw = listener->get();
  auto w = loop_.watch_fd(raw->fd(), kReadable, [this, raw](std::uint32_t) { on_listener_readable(*raw); });
  if (!w) return std::unexpected(w.error());
  spdlog::info("transparent TCP: listener on {}", SocketAddress{address, raw->port()}.to_string());
  return std::move(*listener);
}

// ---- sessions ----

void StreamBridge::add_session(std::uint64_t session, bool initiator) {
  if (sessions_.contains(session)) return;
  auto st = std::make_unique<Streams>();
  st->session = session;
  st->table = std::make_unique<conn::ConnectionTable>(initiator, options_.connection, rng_);
  sessions_.emplace(session, std::move(st));
}

void StreamBridge::remove_session(std::uint64_t session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  std::vector<std::uint64_t> ids;
  for (auto& [id, f] : flows_) {
    if (f->session == session) ids.push_back(id);
  }
  for (std::uint64_t id : ids) {
    Flow& f = *flows_.at(id);
    if (f.phase == Flow::Phase::kLingering) continue;
    if (f.client && f.phase == Flow::Phase::kOpening) {
      if (auto s = parse_tcp(f.held_syn)) answer_with_rst(*s);
    }
    f.aborted = true;
    finish(f, true);
  }
  sessions_.erase(it);
}

StreamBridge::Streams* StreamBridge::streams(std::uint64_t session) {
  auto it = sessions_.find(session);
  return it == sessions_.end() ? nullptr : it->second.get();
}

void StreamBridge::connection_ids(std::uint64_t session, std::vector<std::uint16_t>& out) const {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  for (const auto& [id, flow] : it->second->by_conn) out.push_back(id);
}

std::size_t StreamBridge::buffered_bytes() const {
  std::size_t n = 0;
  for (const auto& [id, f] : flows_) {
    if (f->conn) n += f->conn->memory().buffers;
    n += f->out.capacity();
  }
  return n;
}

bool StreamBridge::within_limits(const IpAddress& source) const {
  if (live_flows_ >= options_.limits.max_flows) return false;
  auto it = per_source_.find(source);
  return it == per_source_.end() || it->second < options_.limits.max_per_source;
}

void StreamBridge::add_key(const Key& k, const Rule& r) {
  // A key still held by a flow that is over gives way to the new flow.
  if (auto it = rules_.find(k); it != rules_.end() && it->second.flow != r.flow) {
    const std::uint64_t old = it->second.flow;
    if (auto f = flows_.find(old); f != flows_.end() && f->second->phase == Flow::Phase::kLingering) {
      destroy(old);
    }
  }
  rules_[k] = r;
}

// ---- the TUN side ----

bool StreamBridge::on_tun_segment(MutableBytes ip_packet) {
  auto s = parse_tcp(ip_packet);
  if (!s) return false;
  auto it = rules_.find(Key{s->source, s->destination});
  if (it != rules_.end()) {
    Flow& f = *flows_.at(it->second.flow);
    if (f.phase == Flow::Phase::kLingering && s->opening() && f.client && s->source == f.app) {
      // The application reuses the 4-tuple of a finished flow: a new flow.
      destroy(f.id);
      if (!options_.open_local) return false;
      open_flow(ip_packet, *s);
      return true;
    }
    if (f.client && f.phase == Flow::Phase::kOpening && s->source == f.app) {
      return true;  // a retransmitted SYN (or early data): the far side has not connected yet
    }
    const Rule r = it->second;
    rewrite_tcp(ip_packet, *s, r.source, r.destination);
    host_.write_tun(ip_packet);
    ++stats_.rewritten;
    return true;
  }
  if (!options_.open_local || !s->opening()) return false;
  if (s->destination.ip == options_.virtual_v4 || s->destination.ip == options_.virtual_v6) return false;
  const std::uint64_t session = host_.session_for(s->destination.ip);
  if (session == 0) return false;
  const bool v4 = s->source.ip.is_v4();
  if ((v4 && !listener4_) || (!v4 && !listener6_)) return false;  // no address of that family here
  open_flow(ip_packet, *s);
  return true;
}

void StreamBridge::open_flow(MutableBytes ip_packet, const TcpSegment& s) {
  const std::uint64_t session = host_.session_for(s.destination.ip);
  Streams* st = streams(session);
  const bool v4 = s.source.ip.is_v4();
  if (st == nullptr || (v4 && !listener4_) || (!v4 && !listener6_)) {
    answer_with_rst(s);
    return;
  }
  if (!within_limits(s.source.ip)) {
    ++stats_.limit_refusals;
    ++stats_.refused;
    answer_with_rst(s);
    return;
  }
  // A source port for the listener to see, unused by any flow (lingering ones
  // included, so a reused port never meets an old socket in TIME_WAIT soon).
  std::uint16_t port = 0;
  for (std::size_t tries = 0; tries < 65536 && port == 0; ++tries) {
    const std::uint16_t p = next_nat_port_;
    next_nat_port_ = static_cast<std::uint16_t>(next_nat_port_ == 65535 ? 1024 : next_nat_port_ + 1);
    if (!by_nat_port_.contains(p)) port = p;
  }
  const TimePoint now = loop_.now();
  auto c = port == 0 ? Result<conn::Connection*>(fail(ErrorCode::kMemoryExhausted, "no NAT port"))
                     : st->table->open(now, make_target(s));
  if (!c) {
    ++stats_.refused;
    answer_with_rst(s);
    return;
  }
  auto owned = std::make_unique<Flow>();
  Flow& f = *owned;
  f.id = next_flow_id_++;
  f.client = true;
  f.session = session;
  f.conn = *c;
  f.conn_id = (*c)->id();
  f.app = s.source;
  f.target = s.destination;
  f.local = SocketAddress{v4 ? *options_.virtual_v4 : *options_.virtual_v6, (v4 ? listener4_ : listener6_)->port()};
  f.nat_port = port;
  f.held_syn.assign(ip_packet.begin(), ip_packet.end());
  f.deadline = now + options_.connection.connect_timeout;
  const SocketAddress seen{f.target.ip, port};  // how the listener sees the application
  f.keys = {Key{f.app, f.target}, Key{f.local, seen}};
  flows_.emplace(f.id, std::move(owned));
  add_key(f.keys[0], Rule{f.id, seen, f.local});
  add_key(f.keys[1], Rule{f.id, f.target, f.app});
  by_nat_port_[port] = f.id;
  st->by_conn[f.conn_id] = f.id;
  ++per_source_[f.app.ip];
  ++live_flows_;
  f.counted = true;
  ++stats_.opened;
  host_.connections_changed(session);  // our ports for its replies, before the SYN leaves
  service(f);
}

void StreamBridge::answer_with_rst(const TcpSegment& s) {
  std::array<std::uint8_t, 64> rst;
  const std::size_t n = make_rst(s, rst);
  if (n != 0) host_.write_tun(Bytes(rst.data(), n));
}

void StreamBridge::on_listener_readable(TcpListener& listener) {
  for (int i = 0; i < kAcceptBatch; ++i) {
    auto accepted = listener.accept();
    if (!accepted) return;  // EAGAIN, or an error the next turn will show again
    auto it = by_nat_port_.find(accepted->peer.port);
    if (it == by_nat_port_.end()) continue;  // not one of ours: closing it refuses it
    Flow& f = *flows_.at(it->second);
    if (f.stream || f.phase != Flow::Phase::kOpen || accepted->peer.ip != f.target.ip) continue;
    f.stream = std::move(accepted->stream);
    f.deadline = kNever;
    service(f);
  }
}

// ---- the peer side ----

void StreamBridge::on_connection_packet(std::uint64_t session, const wire::Header& h, const wire::Body& body) {
  Streams* st = streams(session);
  if (st == nullptr) return;
  const TimePoint now = loop_.now();
  if (h.type == wire::PacketType::kSyn) {
    const auto* syn = std::get_if<wire::SynBody>(&body);
    conn::Connection* existing = st->table->find(h.connection_id);
    const bool fresh = existing == nullptr || existing->state() == conn::State::kTimeWait;
    if (syn != nullptr && fresh) {
      if (auto p = st->by_conn.find(h.connection_id); p != st->by_conn.end()) {
        Flow& old = *flows_.at(p->second);
        if (old.phase == Flow::Phase::kConnecting) return;  // a repeat while we connect
        finish(old, false);  // its TIME_WAIT gives way, as the table would do
      }
      if (!syn->target) {
        refuse_remote(session, h.connection_id, ErrorCode::kInvalidParameter);
        return;
      }
      on_remote_syn(*st, h, *syn);
      return;
    }
  }
  conn::Connection* c = st->table->on_packet(h, body, now);
  wire::Header reply;
  std::size_t len = 0;
  MutableBytes buf(scratch_.data(), wire::kMaxDatagramSize);
  while (st->table->poll_transmit(reply, buf.subspan(wire::kHeaderSize, conn::kMaxControlBody), len)) {
    host_.send_connection_packet(session, reply, buf, len);
    reply = wire::Header{};
  }
  if (c == nullptr) return;
  auto p = st->by_conn.find(c->id());
  if (p == st->by_conn.end()) {
    // A connection with no application behind it (cannot happen through the
    // SYN path above); end it rather than let it hold buffers.
    c->reset(ErrorCode::kStateInvalid);
    while (c->poll_transmit(now, reply, buf.subspan(wire::kHeaderSize), len)) {
      host_.send_connection_packet(session, reply, buf, len);
      reply = wire::Header{};
    }
    st->table->remove(c->id(), now);
    return;
  }
  Flow& f = *flows_.at(p->second);
  if (!f.dirty) {
    f.dirty = true;
    dirty_.push_back(f.id);
  }
}

void StreamBridge::flush() {
  std::vector<std::uint64_t> ids;
  ids.swap(dirty_);
  for (std::uint64_t id : ids) {
    auto it = flows_.find(id);
    if (it == flows_.end()) continue;
    it->second->dirty = false;
    service(*it->second);
  }
}

void StreamBridge::refuse_remote(std::uint64_t session, std::uint16_t conn_id, ErrorCode reason) {
  wire::Header h;
  h.type = wire::PacketType::kRst;
  h.flags = wire::flags::kRst;
  h.connection_id = conn_id;
  MutableBytes buf(scratch_.data(), wire::kMaxDatagramSize);
  auto n = wire::write_body(h, wire::Body{wire::RstBody{static_cast<std::uint8_t>(reason)}},
                            buf.subspan(wire::kHeaderSize, wire::kRstBodySize));
  if (n) host_.send_connection_packet(session, h, buf, *n);
}

void StreamBridge::on_remote_syn(Streams& st, const wire::Header& h, const wire::SynBody& syn) {
  const wire::StreamTarget& t = *syn.target;
  const SocketAddress app{target_address(t.family, t.source), t.source_port};
  const SocketAddress dst{target_address(t.family, t.destination), t.destination_port};
  if (!host_.source_allowed(st.session, app.ip)) {
    ++stats_.spoofed_targets;
    refuse_remote(st.session, h.connection_id, ErrorCode::kInvalidParameter);
    return;
  }
  const std::optional<IpAddress>& here = t.family == 4 ? options_.virtual_v4 : options_.virtual_v6;
  if (!here) {
    ++stats_.refused;
    refuse_remote(st.session, h.connection_id, ErrorCode::kDestinationUnreachable);
    return;
  }
  if (!within_limits(app.ip)) {
    ++stats_.limit_refusals;
    ++stats_.refused;
    refuse_remote(st.session, h.connection_id, ErrorCode::kConnectionLimit);
    return;
  }
  // Connect to the application's own address, which routes through the TUN
  // device: our SYN comes back to us there and is rewritten to A:X -> D:dp, so
  // the server sees the application's address (connecting to D:dp directly
  // would show it ours, and bypass the NAT keys below).
  auto connecting = tcp_.connect(*here, app);
  if (!connecting) {
    ++stats_.refused;
    const int err = connecting.error().sys_errno;
    const bool short_of_resources = err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
    refuse_remote(st.session, h.connection_id,
                  short_of_resources ? ErrorCode::kMemoryExhausted : ErrorCode::kDestinationUnreachable);
    return;
  }

  auto owned = std::make_unique<Flow>();
  Flow& f = *owned;
  f.id = next_flow_id_++;
  f.client = false;
  f.session = st.session;
  f.conn_id = h.connection_id;
  f.phase = Flow::Phase::kConnecting;
  f.app = app;
  f.target = dst;
  f.local = connecting->local;
  f.remote_syn_header = h;
  f.remote_syn = syn;
  f.deadline = loop_.now() + options_.limits.connect_timeout;
  f.keys = {Key{f.local, f.app}, Key{f.target, f.app}};
  f.stream = std::move(connecting->stream);
  flows_.emplace(f.id, std::move(owned));
  add_key(f.keys[0], Rule{f.id, f.app, f.target});
  add_key(f.keys[1], Rule{f.id, f.app, f.local});
  st.by_conn[f.conn_id] = f.id;
  ++per_source_[f.app.ip];
  ++live_flows_;
  f.counted = true;
  host_.connections_changed(st.session);

  const std::uint64_t id = f.id;
  if (loop_.watch_fd(f.stream->fd(), kWritable, [this, id](std::uint32_t) { on_connect_done(id); })) {
    f.interest = kWritable;
  }
  schedule(f);
}

void StreamBridge::on_connect_done(std::uint64_t flow_id) {
  auto it = flows_.find(flow_id);
  if (it == flows_.end()) return;
  Flow& f = *it->second;
  if (f.phase != Flow::Phase::kConnecting) {
    service(f);
    return;
  }
  const int err = f.stream->connect_result();
  if (err == EINPROGRESS) return;  // still connecting
  Streams* st = streams(f.session);
  if (st == nullptr) return;
  if (err != 0) {
    ++stats_.refused;
    spdlog::debug("transparent TCP: {} -> {} refused on this side: {}", f.app.to_string(),
                  f.target.to_string(), std::strerror(err));
    refuse_remote(f.session, f.conn_id,
                  err == ECONNREFUSED ? ErrorCode::kConnectionRefused : ErrorCode::kDestinationUnreachable);
    finish(f, true);
    return;
  }
  conn::Connection* c = st->table->on_packet(f.remote_syn_header, wire::Body{f.remote_syn}, loop_.now());
  if (c == nullptr) {
    refuse_remote(f.session, f.conn_id, ErrorCode::kMemoryExhausted);
    finish(f, true);
    return;
  }
  f.conn = c;
  f.phase = Flow::Phase::kOpen;
  f.deadline = kNever;
  ++stats_.accepted;
  service(f);
}

// ---- moving bytes ----

void StreamBridge::service(Flow& f) {
  if (f.conn == nullptr) {
    schedule(f);
    return;
  }
  if (f.phase == Flow::Phase::kOpen) {
    pump_socket_to_connection(f);
    pump_connection_to_socket(f);
  }
  transmit(f);
  const std::uint64_t id = f.id;
  handle_events(f);
  auto it = flows_.find(id);
  if (it == flows_.end()) return;
  Flow& g = *it->second;
  if (g.phase == Flow::Phase::kLingering) return;
  transmit(g);  // what the events queued (an RST, a window update)
  update_interest(g);
  schedule(g);
}

void StreamBridge::pump_socket_to_connection(Flow& f) {
  if (!f.stream || f.read_eof || f.aborted) return;
  for (int i = 0; i < kReadsPerService; ++i) {
    const std::size_t room = f.conn->send_capacity();
    if (room == 0) return;
    const StreamIo r = f.stream->read(MutableBytes(scratch_.data(), std::min(room, kChunk)));
    if (r.bytes > 0) {
      stats_.bytes_up += f.conn->send(Bytes(scratch_.data(), r.bytes));
      continue;
    }
    if (r.eof) {
      f.read_eof = true;  // the application finished sending: half-close
      f.conn->shutdown_write();
      return;
    }
    if (r.would_block) return;
    f.aborted = true;  // the application reset its connection
    f.conn->reset(ErrorCode::kSuccess);
    return;
  }
}

void StreamBridge::pump_connection_to_socket(Flow& f) {
  if (!f.stream || f.write_shut || f.aborted) return;
  for (;;) {
    if (f.out_done < f.out.size()) {
      const StreamIo w = f.stream->write(Bytes(f.out.data() + f.out_done, f.out.size() - f.out_done));
      if (w.bytes > 0) {
        f.out_done += w.bytes;
        stats_.bytes_down += w.bytes;
        continue;
      }
      if (w.error != 0) {
        f.aborted = true;
        f.conn->reset(ErrorCode::kSuccess);
      }
      return;  // the application is not reading: the connection's window closes
    }
    f.out.clear();
    f.out_done = 0;
    const std::size_t ready = f.conn->readable();
    if (ready == 0) break;
    const std::size_t got = f.conn->recv(MutableBytes(scratch_.data(), std::min(ready, kChunk)));
    const StreamIo w = f.stream->write(Bytes(scratch_.data(), got));
    if (w.error != 0) {
      f.aborted = true;
      f.conn->reset(ErrorCode::kSuccess);
      return;
    }
    stats_.bytes_down += w.bytes;
    if (w.bytes < got) {
      f.out.assign(scratch_.begin() + static_cast<std::ptrdiff_t>(w.bytes),
                   scratch_.begin() + static_cast<std::ptrdiff_t>(got));
      return;
    }
  }
  if (f.conn->peer_finished() && f.conn->readable() == 0) {
    f.stream->shutdown_write();  // pass the peer's FIN on
    f.write_shut = true;
  }
}

void StreamBridge::transmit(Flow& f) {
  if (f.conn == nullptr) return;
  const TimePoint now = loop_.now();
  MutableBytes buf(scratch_.data(), wire::kMaxDatagramSize);
  wire::Header h;
  std::size_t len = 0;
  for (int i = 0; i < kTransmitsPerService; ++i) {
    h = wire::Header{};
    if (!f.conn->poll_transmit(now, h, buf.subspan(wire::kHeaderSize, wire::kMaxBodySize), len)) break;
    host_.send_connection_packet(f.session, h, buf, len);
  }
}

void StreamBridge::handle_events(Flow& f) {
  while (auto e = f.conn->poll_event()) {
    switch (e->kind) {
      case conn::EventKind::kEstablished:
        if (f.client && f.phase == Flow::Phase::kOpening) {
          // The far side has connected: let our listener take the application's SYN.
          auto s = parse_tcp(f.held_syn);
          if (s) {
            MutableBytes p(f.held_syn);
            rewrite_tcp(p, *s, SocketAddress{f.target.ip, f.nat_port}, f.local);
            host_.write_tun(p);
          }
          f.held_syn.clear();
          f.held_syn.shrink_to_fit();
          f.phase = Flow::Phase::kOpen;
          f.deadline = loop_.now() + options_.limits.connect_timeout;  // until accept()
        }
        break;
      case conn::EventKind::kPeerFinished:
        break;  // passed on once its bytes are written (pump_connection_to_socket)
      case conn::EventKind::kReset:
      case conn::EventKind::kFailed:
        if (f.client && f.phase == Flow::Phase::kOpening) {
          ++stats_.refused;
          if (auto s = parse_tcp(f.held_syn)) answer_with_rst(*s);
        }
        f.aborted = true;
        break;
      case conn::EventKind::kClosed:
        f.closed = true;
        break;
    }
  }
  if (f.aborted && (f.closed || f.conn->state() == conn::State::kClosed)) {
    finish(f, true);
  } else if (f.closed && f.out_done >= f.out.size() && f.conn->readable() == 0) {
    finish(f, false);
  }
}

void StreamBridge::update_interest(Flow& f) {
  if (!f.stream || f.phase != Flow::Phase::kOpen) return;
  std::uint32_t want = 0;
  if (!f.read_eof && !f.aborted && f.conn != nullptr && f.conn->send_capacity() > 0) want |= kReadable;
  if (f.out_done < f.out.size()) want |= kWritable;
  if (want == f.interest) return;
  if (want == 0) {
    // Not watching at all (rather than for nothing) keeps a hung-up socket
    // from waking the loop on every turn.
    loop_.unwatch_fd(f.stream->fd());
  } else if (f.interest == 0) {
    const std::uint64_t id = f.id;
    auto w = loop_.watch_fd(f.stream->fd(), want, [this, id](std::uint32_t) {
      if (auto it = flows_.find(id); it != flows_.end()) service(*it->second);
    });
    if (!w) return;
  } else if (!loop_.update_fd(f.stream->fd(), want)) {
    return;
  }
  f.interest = want;
}

// ---- time ----

void StreamBridge::schedule(Flow& f) {
  TimePoint t = f.deadline;
  if (f.conn != nullptr) t = std::min(t, f.conn->next_expiry());
  if (t == f.scheduled) return;
  if (f.scheduled != kNever) expiries_.erase({f.scheduled, f.id});
  f.scheduled = t;
  if (t != kNever) expiries_.insert({t, f.id});
  if (!expiries_.empty() && expiries_.begin()->first < timer_at_) {
    if (timer_ != kNoTimer) loop_.cancel_timer(timer_);
    timer_at_ = expiries_.begin()->first;
    timer_ = loop_.add_timer_at(timer_at_, [this] { on_timer(); });
  }
}

void StreamBridge::on_timer() {
  timer_ = kNoTimer;
  timer_at_ = kNever;
  const TimePoint now = loop_.now();
  std::vector<std::uint64_t> due;
  while (!expiries_.empty() && expiries_.begin()->first <= now && due.size() < 4096) {
    due.push_back(expiries_.begin()->second);
    expiries_.erase(expiries_.begin());
  }
  for (std::uint64_t id : due) {
    auto it = flows_.find(id);
    if (it == flows_.end()) continue;
    Flow& f = *it->second;
    f.scheduled = kNever;
    if (f.phase == Flow::Phase::kLingering) {
      if (f.deadline <= now) destroy(id);
      continue;
    }
    if (f.deadline <= now) {
      f.deadline = kNever;
      if (f.phase == Flow::Phase::kConnecting) {
        ++stats_.refused;
        refuse_remote(f.session, f.conn_id, ErrorCode::kDestinationUnreachable);
        finish(f, true);
        continue;
      }
      if (f.conn != nullptr && !f.stream) {
        // Connected far away but never accepted here (or the far side never
        // answered): give up on it.
        if (f.client && f.phase == Flow::Phase::kOpening) {
          if (auto s = parse_tcp(f.held_syn)) answer_with_rst(*s);
        }
        f.conn->reset(ErrorCode::kTimeout);
        f.aborted = true;
      }
    }
    if (f.conn != nullptr && f.conn->next_expiry() <= now) f.conn->on_expiry(now);
    service(f);
  }
  if (!expiries_.empty() && timer_ == kNoTimer) {
    timer_at_ = expiries_.begin()->first;
    timer_ = loop_.add_timer_at(timer_at_, [this] { on_timer(); });
  }
}

void StreamBridge::housekeeping() {
  // Deadlines run on the bridge's own timer; this only re-arms it should a
  // callback have failed to (defensive: cheap, and keeps flows from stalling).
  if (!expiries_.empty() && timer_ == kNoTimer) {
    timer_at_ = expiries_.begin()->first;
    timer_ = loop_.add_timer_at(timer_at_, [this] { on_timer(); });
  }
}

// ---- ending ----

void StreamBridge::finish(Flow& f, bool abort) {
  if (f.phase == Flow::Phase::kLingering) return;
  if (f.stream) {
    if (f.interest != 0) loop_.unwatch_fd(f.stream->fd());
    f.interest = 0;
    if (abort) f.stream->abort_on_close();  // close with an RST, as the far end did
    f.stream.reset();
  }
  if (Streams* st = streams(f.session)) {
    if (f.conn != nullptr) {
      if (abort && f.conn->state() != conn::State::kClosed) {
        f.conn->reset(ErrorCode::kSuccess);
        transmit(f);
      }
      st->table->remove(f.conn_id, loop_.now());
    }
    if (auto it = st->by_conn.find(f.conn_id); it != st->by_conn.end() && it->second == f.id) {
      st->by_conn.erase(it);
    }
    host_.connections_changed(f.session);
  }
  f.conn = nullptr;
  if (f.counted) {
    if (auto it = per_source_.find(f.app.ip); it != per_source_.end() && --it->second == 0) per_source_.erase(it);
    --live_flows_;
    f.counted = false;
  }
  if (f.phase == Flow::Phase::kOpen) {
    ++(abort || f.aborted ? stats_.resets : stats_.completed);
  }
  f.out.clear();
  f.out.shrink_to_fit();
  f.held_syn.clear();
  f.held_syn.shrink_to_fit();
  f.phase = Flow::Phase::kLingering;
  if (f.scheduled != kNever) expiries_.erase({f.scheduled, f.id});
  f.scheduled = kNever;
  f.deadline = loop_.now() + options_.limits.linger;
  schedule(f);
}

void StreamBridge::destroy(std::uint64_t flow_id) {
  auto it = flows_.find(flow_id);
  if (it == flows_.end()) return;
  Flow& f = *it->second;
  if (f.phase != Flow::Phase::kLingering) finish(f, true);
  for (const Key& k : f.keys) {
    if (auto r = rules_.find(k); r != rules_.end() && r->second.flow == flow_id) rules_.erase(r);
  }
  if (f.nat_port != 0) {
    if (auto p = by_nat_port_.find(f.nat_port); p != by_nat_port_.end() && p->second == flow_id) by_nat_port_.erase(p);
  }
  if (f.scheduled != kNever) expiries_.erase({f.scheduled, f.id});
  flows_.erase(it);
}

}  // namespace buckwild::daemon

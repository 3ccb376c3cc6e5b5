// The stream bridge's peer side: connection packets from the peer, and server
// flows: the peer's application asked for a destination reached from here,
// and we connect to it before its connection is accepted.
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

#include "core/wire/codec.h"
#include "daemon/stream/bridge.h"

namespace buckwild::daemon {
namespace {

IpAddress target_address(std::uint8_t family, const std::array<std::uint8_t, 16>& bytes) {
  if (family == 4) return IpAddress::v4({bytes[0], bytes[1], bytes[2], bytes[3]});
  return IpAddress::v6(bytes);
}

bool out_of_resources(int err) { return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM; }

}  // namespace

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
        if (old.state() == FlowState::kConnecting) return;  // a repeat while we connect
        finish(old, Ending::kGraceful);  // its TIME_WAIT gives way, as the table would do
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
  for (;;) {
    const MutableBytes buf = host_.connection_packet_buffer();
    if (!st->table->poll_transmit(reply, buf.subspan(wire::kHeaderSize, conn::kMaxControlBody), len)) break;
    host_.send_connection_packet(session, reply, buf, len);
    reply = wire::Header{};
  }
  if (c == nullptr) return;
  auto p = st->by_conn.find(c->id());
  if (p == st->by_conn.end()) {
    // A connection with no application behind it (cannot happen through the
    // SYN path above); end it rather than let it hold buffers.
    c->reset(ErrorCode::kStateInvalid);
    for (;;) {
      const MutableBytes buf = host_.connection_packet_buffer();
      if (!c->poll_transmit(now, reply, buf.subspan(wire::kHeaderSize), len)) break;
      host_.send_connection_packet(session, reply, buf, len);
      reply = wire::Header{};
    }
    remove_connection(*st, c->id(), now);
    return;
  }
  dirty_.push_back(p->second);  // serviced in flush(), once per batch
}

void StreamBridge::flush() {
  std::vector<FlowId> ids;
  ids.swap(dirty_);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  for (FlowId id : ids) {
    auto it = flows_.find(id);
    if (it == flows_.end() || !is_live(it->second->state())) continue;
    service(*it->second);
  }
}

void StreamBridge::refuse_remote(std::uint64_t session, std::uint16_t conn_id, ErrorCode reason) {
  wire::Header h;
  h.type = wire::PacketType::kRst;
  h.flags = wire::flags::kRst;
  h.connection_id = conn_id;
  const MutableBytes buf = host_.connection_packet_buffer();
  auto n = wire::write_body(h, wire::Body{wire::RstBody{static_cast<std::uint8_t>(reason)}},
                            buf.subspan(wire::kHeaderSize, wire::kRstBodySize));
  if (n) host_.send_connection_packet(session, h, buf, *n);
}

// SERVER: connect to the destination first; the peer's SYN is answered (its
// connection accepted) only once the server has accepted ours.
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
  // Counted per peer: its session.
  if (!nat_.admits(FlowOwner::peer(st.session))) {
    ++stats_.limit_refusals;
    ++stats_.refused;
    refuse_remote(st.session, h.connection_id, ErrorCode::kConnectionLimit);
    return;
  }
  // We connect to the application's own address, which routes through the
  // TUN device: our SYN comes back to us there and is rewritten to A:X -> D:dp,
  // so the server sees the application's address.
  auto connecting = tcp_.connect(*here, app);
  if (!connecting) {
    ++stats_.refused;
    refuse_remote(st.session, h.connection_id,
                  out_of_resources(connecting.error().sys_errno) ? ErrorCode::kMemoryExhausted
                                                                 : ErrorCode::kDestinationUnreachable);
    return;
  }

  auto owned = std::make_unique<Flow>(FlowSide::kServer);
  owned->id = next_flow_id_++;
  owned->session = st.session;
  owned->conn_id = h.connection_id;
  owned->app = app;
  owned->owner = FlowOwner::peer(st.session);
  owned->target = dst;
  owned->local = connecting->local;
  owned->remote_syn_header = h;
  owned->remote_syn = syn;
  owned->deadline = loop_.now() + options_.limits.connect_timeout;
  owned->stream = std::move(connecting->stream);
  Flow& f = add_flow(std::move(owned));
  install_key(f, NatKey{f.local, f.app}, f.app, f.target);  // our SYN and what follows
  install_key(f, NatKey{f.target, f.app}, f.app, f.local);  // the server's replies
  st.by_conn[f.conn_id] = f.id;
  host_.connections_changed(st.session);

  const FlowId id = f.id;
  if (loop_.watch_fd(f.stream->fd(), kWritable, [this, id](std::uint32_t) { on_connect_done(id); })) {
    f.interest = kWritable;
  }
  arm_timer(f);
}

void StreamBridge::on_connect_done(FlowId id) {
  auto it = flows_.find(id);
  if (it == flows_.end()) return;
  Flow& f = *it->second;
  if (f.state() != FlowState::kConnecting) return;
  const int err = f.stream->connect_result();
  if (err == EINPROGRESS) return;  // still connecting
  Streams* st = streams(f.session);
  if (st == nullptr) return;
  // From here the socket is watched for bytes (update_interest), not for the
  // connect.
  loop_.unwatch_fd(f.stream->fd());
  f.interest = 0;
  if (err != 0) {
    spdlog::debug("transparent TCP: {} -> {} refused on this side: {}", f.app.to_string(),
                  f.target.to_string(), std::strerror(err));
    refuse_remote(f.session, f.conn_id,
                  err == ECONNREFUSED ? ErrorCode::kConnectionRefused : ErrorCode::kDestinationUnreachable);
    finish(f, Ending::kAbortive);
    return;
  }
  conn::Connection* c = st->table->on_packet(f.remote_syn_header, wire::Body{f.remote_syn}, loop_.now());
  if (c == nullptr) {
    refuse_remote(f.session, f.conn_id, ErrorCode::kMemoryExhausted);
    finish(f, Ending::kAbortive);
    return;
  }
  f.conn = c;
  f.deadline = kNever;
  f.on(FlowEvent::kConnected);
  ++stats_.accepted;
  service(f);
}

}  // namespace buckwild::daemon

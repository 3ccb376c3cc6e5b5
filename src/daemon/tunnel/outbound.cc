// TUN → peers: an application's IP packet becomes a sealed datagram on the
// port the peer listens on now.
//
//   1. on_tun_readable   read a batch of IP packets into pool buffers, each
//                        leaving room for our header in front
//   2.                   stream mode: the transparent TCP bridge takes its
//                        segments (stream/bridge.h); they come back as
//                        connection packets through send_connection_packet,
//                        built in the pool buffer connection_packet_buffer
//                        handed out, and are sealed and queued in it.
//                        A TSO read of a flow its NAT rewrites is taken whole
//                        (read_whole) and goes back into the TUN as one write
//   3.                   route by inner destination to a session
//   4.                   seal in place as a DATAGRAM
//   5.                   queue it (send_queue.cc): at the end of the turn the
//                        queue leaves in one sendmmsg per socket, from our
//                        current port to the peer's current port
//
// Connection packets and the packets held for a peer take step 5 too; the
// other senders of session packets (heartbeats, the sequence confirm) send
// at once, after what the queue holds (send_one).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cassert>

#include "core/inner/ip_packet.h"
#include "core/inner/tcp_segment.h"
#include "core/wire/codec.h"
#include "daemon/tunnel/tunnel.h"

namespace buckwild::daemon {
namespace {

constexpr std::size_t kBatch = 64;

}  // namespace

void Tunnel::on_tun_readable(std::uint32_t events) {
  std::size_t read = 0;
  // The session whose DATAGRAMs were sealed last: its timer is armed when
  // another's come, and at the end (an answer is due now).
  SessionEntry* sealing = nullptr;
  // 1. Up to one batch per wake-up, so sockets get their turn too; past it,
  // only what the device already holds (the rest of a TSO read it split):
  // that would not make the descriptor readable again. At most 64 KiB of one
  // read, so bounded.
  // Stream mode writes the segments it rewrites back into the TUN: coalesced
  // (GRO) like a receive batch's, written at the end.
  coalescing_ = tun_.takes_gso();
  coalescer_.set_udp(tun_.takes_udp_gso());
  BatchClock batch_clock(*this);
  for (std::size_t i = 0; i < kBatch || tun_.has_pending(); ++i) {
    PacketPool::Buffer b = acquire_buffer();
    if (!b) {
      ++stats_.pool_exhausted;
      break;
    }
    // A TSO read's segments share the instant it was read at.
    if (i != 0 && !tun_.has_pending()) batch_clock.read();
    MutableBytes space = b.space();
    const MutableBytes into = space.subspan(wire::kHeaderSize, space.size() - wire::kOverhead);
    auto got = tun_.read_whole(into);
    if (got && got->gso) {
      // 2. Transparent TCP, a TSO read of a NAT'd flow: rewritten whole and
      // written back as one. Anything else is split as usual.
      ++read;
      const TunDevice::GsoPacket& g = *got->gso;
      if (bridge_->on_tun_gso(g.header, g.packet, g.segments)) {
        stats_.tun_packets_in += g.segments;
        // Counted as its segments against the batch: 64 reads of 64 KiB
        // each would keep the sockets waiting 45 times as long.
        i += g.segments - 1;
        continue;
      }
      tun_.split_gso();
      got = tun_.read_whole(into);
    }
    if (!got) {
      on_tun_failed(got.error());
      break;
    }
    if (got->size == 0) break;
    ++read;
    ++stats_.tun_packets_in;
    MutableBytes ip(space.data() + wire::kHeaderSize, got->size);
    // 2. Transparent TCP.
    if (bridge_->on_tun_segment(ip)) continue;
    // 3. Route.
    auto addresses = inner::ip_addresses(ip);
    if (!addresses) {
      ++stats_.not_ip;
      continue;
    }
    SessionEntry* e = sessions_.route(addresses->destination);
    if (e == nullptr) {
      ++stats_.no_route;
      continue;
    }
    // 4. Seal (into a silent peer: a TCP segment is kept for when it is back;
    // to a responder that has not answered yet: held until it does).
    if (!e->session->heard()) {
      hold_until_heard(*e, nullptr, ip);
      continue;
    }
    if (e->session->silent()) keep_stranded(*e, ip);
    if (got->size + wire::kOverhead > e->session->max_datagram()) {
      // Larger than the path carries (§11.10): as FRAGMENTs, sent now.
      send_fragmented(*e, ip);
      arm_session_timer(*e);
      continue;
    }
    auto sealed = e->session->seal_datagram(space, got->size, unix_ms(), now());
    if (!sealed) continue;
    b.set_length(*sealed);
    // 5. Queued: it leaves at the end of the turn.
    if (sealing != nullptr && sealing != e) arm_session_timer(*sealing);
    sealing = e;
    queue_datagram(std::move(b), path_of(*e, 0));
  }
  if (read == 0 && (events & kHangup) != 0 && tun_watched_) {
    // Readable with nothing to read and hung up: the device is gone. Level
    // triggering would wake us for ever.
    on_tun_failed(SysError{EIO, "the TUN device " + tun_.name() + " hung up"});
  }
  if (sealing != nullptr) arm_session_timer(*sealing);
  coalescing_ = false;
  flush_tun();
  // Out of pool buffers with segments of a split read still in the device:
  // they would wait for the next packet to make the descriptor readable (a
  // retransmission, 200 ms or more). Take them in a millisecond, when the
  // buffers in flight are back.
  if (tun_watched_ && tun_.has_pending() && tun_pending_timer_ == kNoTimer) {
    tun_pending_timer_ = loop_.add_timer(milliseconds(1), [this] {
      tun_pending_timer_ = kNoTimer;
      on_tun_readable(0);
    });
  }
}

void Tunnel::on_tun_failed(const SysError& error) {
  ++stats_.tun_read_errors;
  if (error.sys_errno == ENOBUFS || error.sys_errno == ENOMEM) {
    // Short of memory for a moment: the next turn tries again.
    warn_log_.log(now(), "tun.read", spdlog::level::warn, "{}", error.message);
    return;
  }
  // The device is gone or broken; a level-triggered descriptor in that state
  // would wake the loop for ever. Stop watching it and let the owner decide.
  if (!tun_watched_) return;
  loop_.unwatch_fd(tun_.fd());
  tun_watched_ = false;
  spdlog::error("virtual interface {} failed: {}", tun_.name(), error.message);
  if (on_fatal_) on_fatal_(error);
}

Tunnel::Path Tunnel::path_of(SessionEntry& e, std::uint16_t conn) {
  // As responder, along the path the initiator's datagrams opened (§11.6):
  // behind NAT nothing else reaches it. Connections share that path.
  if (e.answer_via != nullptr) return Path{e.answer_via, e.answer_to};
  return Path{e.send_via != nullptr ? e.send_via : discovery_socket_.get(),
              SocketAddress{e.remote.ip, e.session->send_port(unix_ms(), conn)}};
}

void Tunnel::send_sealed(SessionEntry& e, Bytes datagram) {
  const Path path = path_of(e, 0);
  send_one(*path.via, OutgoingDatagram{datagram, path.to, std::nullopt});
  arm_session_timer(e);
}

void Tunnel::send_time_sync_request(SessionEntry& e) {
  std::array<std::uint8_t, 8> random{};
  rng_.fill(random);
  const auto word = [&](std::size_t i) {
    return (std::uint32_t{random[i]} << 24) | (std::uint32_t{random[i + 1]} << 16) |
           (std::uint32_t{random[i + 2]} << 8) | random[i + 3];
  };
  std::array<std::uint8_t, 128> buf;
  // The challenge, and the jitter of a RESYNC's next wait.
  auto n = e.session->make_time_sync_request(buf, word(0), unix_ms(), now(), word(4));
  if (n) send_sealed(e, Bytes(buf.data(), *n));
}

void Tunnel::send_rekey(SessionEntry& e) {
  std::array<std::uint8_t, 192> buf;
  auto n = e.session->make_rekey(buf, rng_, unix_ms(), now());
  if (!n) {
    warn_log_.log(now(), "session.rekey", spdlog::level::warn, "session {}: rekey message: {}",
                  short_id(e.id), n.error().what);
    return;
  }
  if (*n > 0) send_sealed(e, Bytes(buf.data(), *n));
  note_rekeys(e);
}

nlohmann::json Tunnel::request_rekey(std::string_view who) {
  SessionEntry* found = nullptr;
  sessions_.for_each([&](SessionEntry& e) {
    if (found != nullptr) return;
    const bool by_name = e.peer && peers_[*e.peer].config->name == who;
    const bool by_id = fmt::format("{:08x}", e.id >> 32) == who;
    if (by_name || by_id) found = &e;
  });
  if (found == nullptr) {
    std::string why = "no session with a peer named or a session id ";
    why += who.size() <= 64 ? std::string(who) : std::string(who.substr(0, 64)) + "...";
    why += " (buckwild status lists them)";
    return {{"ok", false}, {"error", why}};
  }
  SessionEntry& e = *found;
  const bool under_way = e.session->keys().in_progress();
  e.session->request_rekey(now());
  spdlog::info("session {} with {}: rekey requested on the control socket", short_id(e.id),
               peer_name(e));
  arm_session_timer(e);  // the exchange starts at the session's next expiry: now
  return {{"ok", true},
          {"rekey",
           {{"peer", peer_name(e)},
            {"session", fmt::format("{:08x}", e.id >> 32)},
            {"key_epoch", e.session->keys().epoch()},
            {"already_under_way", under_way}}}};
}

void Tunnel::note_rekeys(SessionEntry& e) {
  const session::SessionKeys& k = e.session->keys();
  while (e.rekeys_logged < k.stats().rekeys) {
    ++e.rekeys_logged;
    ++stats_.rekeys;
    spdlog::info("session {} with {}: rekeyed (key epoch {}, {} rekeys)", short_id(e.id),
                 peer_name(e), k.epoch(), k.stats().rekeys);
    audit("session_rekeyed", e, "info", {{"key_epoch", k.epoch()}, {"rekeys", k.stats().rekeys}});
  }
}

void Tunnel::send_time_sync_response(SessionEntry& e, const wire::TimeSyncRequestBody& request) {
  std::array<std::uint8_t, 128> buf;
  auto n = e.session->make_time_sync_response(buf, request, unix_ms(), now());
  if (n) send_sealed(e, Bytes(buf.data(), *n));
}

void Tunnel::send_path_keepalives() {
  // Mid-window: every initiator session that has sent nothing in this window
  // opens its port pair for it now (§11.6).
  const std::int64_t t = unix_ms();
  sessions_.for_each([&](SessionEntry& e) {
    if (!e.session->path_keepalive_due(t, now())) return;
    std::array<std::uint8_t, 128> buf;
    auto n = e.session->make_path_keepalive(buf, t, now());
    if (!n) return;
    const Path path = path_of(e, 0);
    send_one(*path.via, OutgoingDatagram{Bytes(buf.data(), *n), path.to, std::nullopt});
  });
}

void Tunnel::send_heartbeat(SessionEntry& e, Heartbeat kind) {
  std::array<std::uint8_t, 128> buf;
  auto n = kind == Heartbeat::kAnswer
               ? e.session->make_heartbeat_answer(buf, unix_ms(), now())
               : e.session->make_heartbeat(buf, kind == Heartbeat::kProbe, unix_ms(), now());
  if (n) send_sealed(e, Bytes(buf.data(), *n));
}

void Tunnel::keep_stranded(SessionEntry& e, Bytes ip) {
  const auto seg = inner::parse_tcp(ip);
  if (!seg || seg->has(inner::tcp_flag::kRst)) return;
  if (seg->payload_size == 0 && !seg->has(inner::tcp_flag::kSyn) && !seg->has(inner::tcp_flag::kFin))
    return;  // a bare ACK: the peer's own retransmission asks for it again
  auto same = std::find_if(e.stranded.begin(), e.stranded.end(), [&](const SessionEntry::Stranded& s) {
    return s.source == seg->source && s.destination == seg->destination;
  });
  if (same == e.stranded.end()) {
    if (e.stranded.size() >= kMaxStrandedFlows) e.stranded.erase(e.stranded.begin());  // the oldest flow
    e.stranded.push_back(SessionEntry::Stranded{seg->source, seg->destination, {}});
    same = e.stranded.end() - 1;
  }
  same->packet.assign(ip.begin(), ip.end());
}

void Tunnel::replay_stranded(SessionEntry& e) {
  std::vector<SessionEntry::Stranded> stranded = std::move(e.stranded);
  e.stranded.clear();
  std::size_t replayed = 0;
  for (const SessionEntry::Stranded& s : stranded) {
    PacketPool::Buffer b = acquire_buffer();
    if (!b) {
      ++stats_.pool_exhausted;
      break;
    }
    MutableBytes space = b.space();
    if (s.packet.size() + wire::kOverhead > space.size()) continue;
    std::copy(s.packet.begin(), s.packet.end(), space.begin() + wire::kHeaderSize);
    auto sealed = e.session->seal_datagram(space, s.packet.size(), unix_ms(), now());
    if (!sealed) continue;
    b.set_length(*sealed);
    queue_datagram(std::move(b), path_of(e, 0));
    ++stats_.stranded_replayed;
    ++replayed;
  }
  if (replayed > 0) {
    spdlog::info("session {}: {} packet-mode TCP segment(s) sent into the outage sent again",
                 short_id(e.id), replayed);
  }
  arm_session_timer(e);
}

void Tunnel::send_sequence_confirm(SessionEntry& e) {
  std::array<std::uint8_t, 256> buf;
  wire::Header h;
  h.type = wire::PacketType::kSequenceNeg;
  h.flags = wire::flags::kAck;
  auto body =
      wire::write_body(h, e.session->sequence_confirm(),
                       MutableBytes(buf).subspan(wire::kHeaderSize, wire::kSequenceNegBodySize));
  if (!body) return;
  auto n = e.session->seal(h, buf, *body, unix_ms(), now());
  if (n) send_sealed(e, Bytes(buf.data(), *n));
}

MutableBytes Tunnel::connection_packet_buffer() {
  if (!staged_) staged_ = acquire_buffer();
  if (!staged_) return MutableBytes(unpooled_);
  assert(staged_.capacity() >= wire::kMaxDatagramSize);  // every pool buffer holds the largest datagram
  return staged_.space().first(wire::kMaxDatagramSize);
}

void Tunnel::send_connection_packet(std::uint64_t session, wire::Header& header,
                                    MutableBytes packet, std::size_t body_len) {
  SessionEntry* e = sessions_.find(session);
  if (e == nullptr) return;
  if (!e->session->heard()) {
    hold_until_heard(*e, &header, Bytes(packet.data() + wire::kHeaderSize, body_len));
    return;
  }
  // A SYN travels on the session's own port sequence: the peer cannot listen
  // on the ports of a connection it has not heard of yet (docs/protocol.md §10.3).
  const std::uint16_t port_of = header.type == wire::PacketType::kSyn ? 0 : header.connection_id;
  auto n = e->session->seal(header, packet, body_len, unix_ms(), now());
  if (!n) return;
  const Path path = path_of(*e, port_of);
  if (staged_ && packet.data() == staged_.space().data()) {
    // Built in the pool buffer we handed out: queued as it is, no copy.
    staged_.set_length(*n);
    queue_datagram(std::move(staged_), path);
  } else if (PacketPool::Buffer b = acquire_buffer(); b) {
    // Built elsewhere (a held packet, or unpooled_ while the pool was out).
    assert(*n <= b.capacity());
    std::copy_n(packet.begin(), *n, b.space().begin());
    b.set_length(*n);
    queue_datagram(std::move(b), path);
  } else {
    // Out of buffers: this one goes now, alone, rather than not at all.
    send_one(*path.via, OutgoingDatagram{Bytes(packet.data(), *n), path.to, std::nullopt});
  }
  arm_session_timer(*e);
}

void Tunnel::hold_until_heard(SessionEntry& e, const wire::Header* header, Bytes bytes) {
  if (e.held.size() >= kMaxHeldUntilHeard) {
    ++stats_.held_dropped;
    return;
  }
  e.held.push_back(SessionEntry::Held{header != nullptr ? std::optional(*header) : std::nullopt,
                                      std::vector<std::uint8_t>(bytes.begin(), bytes.end())});
  ++stats_.held_until_heard;
}

void Tunnel::send_held(SessionEntry& e) {
  std::vector<SessionEntry::Held> held = std::move(e.held);
  e.held.clear();
  for (SessionEntry::Held& h : held) {
    if (!h.header) {  // an IP packet, as the TUN path sends it
      if (h.bytes.size() + wire::kOverhead > e.session->max_datagram()) {
        send_fragmented(e, h.bytes);
        continue;
      }
      PacketPool::Buffer b = acquire_buffer();
      if (!b) {
        ++stats_.pool_exhausted;
        continue;
      }
      MutableBytes space = b.space();
      std::copy(h.bytes.begin(), h.bytes.end(), space.begin() + wire::kHeaderSize);
      auto sealed = e.session->seal_datagram(space, h.bytes.size(), unix_ms(), now());
      if (!sealed) continue;
      b.set_length(*sealed);
      queue_datagram(std::move(b), path_of(e, 0));
      continue;
    }
    std::array<std::uint8_t, wire::kMaxDatagramSize> buf;
    if (h.bytes.size() + wire::kOverhead > buf.size()) continue;
    std::copy(h.bytes.begin(), h.bytes.end(), buf.begin() + wire::kHeaderSize);
    send_connection_packet(e.id, *h.header, MutableBytes(buf), h.bytes.size());
  }
  arm_session_timer(e);
}

void Tunnel::send_discovery(Bytes datagram, const SocketAddress& to) {
  send_one(*discovery_socket_, OutgoingDatagram{datagram, to, std::nullopt});
}

void Tunnel::send_one(DatagramSocket& via, const OutgoingDatagram& datagram) {
  flush_sends();  // what was sealed before leaves before
  auto sent = via.send_batch({&datagram, 1});
  if (!sent || *sent == 0) {
    ++stats_.send_errors;
  } else {
    ++stats_.datagrams_sent;
  }
}

}  // namespace buckwild::daemon

// Peers → TUN or connections: a datagram on a hopping port (or the discovery
// port) becomes an application's IP packet or bytes on its TCP connection.
//
//   1. on_socket_readable  a batch of datagrams into pool buffers (recvmmsg);
//                          truncated ones are counted and dropped
//   2. on_datagram         discovery types go to discovery.cc, if they came
//                          to the discovery port; the rest find their session
//                          by the header's session id
//   3. on_session_packet   authenticate and decrypt in place (Session::open)
//   4.                     DATAGRAM: check the inner source is one the peer
//                          may use, write the IP packet to the TUN device;
//                          HEARTBEAT: answer a probe; PATH_CHALLENGE and
//                          _RESPONSE, and any datagram from a new address
//                          of the peer: to roaming.cc;
//                          connection packets: to the stream bridge, which
//                          queues the bytes for the application's socket
//   5.                     after the batch, the bridge writes what the
//                          packets made due (StreamBridge::flush)
#include <spdlog/spdlog.h>

#include <array>

#include "core/hop/time_window.h"
#include "core/inner/ip_packet.h"
#include "core/wire/codec.h"
#include "daemon/net/udp_control.h"
#include "daemon/tunnel/tunnel.h"

namespace buckwild::daemon {
namespace {

constexpr std::size_t kBatch = 64;

std::uint64_t session_id_of(Bytes datagram) {
  std::uint64_t id = 0;
  for (std::size_t i = 0; i < 8; ++i) id = (id << 8) | datagram[4 + i];
  return id;
}

}  // namespace

void Tunnel::on_socket_readable(DatagramSocket& socket, Arrival arrival) {
  // 1. A batch: into pool buffers, or, from a socket whose reads coalesce
  // (UDP GRO), into 64 KiB slots of a receive arena, one arena for each
  // handler running at once (a closing socket drained inside an update inside
  // this handler reads too).
  std::array<PacketPool::Buffer, kBatch> held;
  std::array<ReceivedDatagram, kBatch> batch;
  std::size_t slots = 0;
  const std::size_t depth = receiving_;
  if (socket.coalesces_reads() && depth < kGroArenas) {
    if (gro_arenas_.size() <= depth) gro_arenas_.resize(depth + 1);
    auto& arena = gro_arenas_[depth];
    // Uninitialised: a page costs memory only once a read has reached it.
    if (!arena) arena = std::make_unique_for_overwrite<std::uint8_t[]>(kGroSlots * kGroSlotBytes);
    for (; slots < kGroSlots; ++slots) {
      batch[slots].buffer = MutableBytes(arena.get() + slots * kGroSlotBytes, kGroSlotBytes);
    }
  } else {
    for (; slots < kBatch; ++slots) {
      held[slots] = acquire_buffer();
      if (!held[slots]) break;
      batch[slots].buffer = held[slots].space();
    }
  }
  if (slots == 0) {
    ++stats_.pool_exhausted;
    return;
  }
  auto got = socket.receive_batch(std::span(batch.data(), slots));
  if (!got) return;
  ++receiving_;
  coalescing_ = tun_.takes_gso();
  coalescer_.set_udp(tun_.takes_udp_gso());
  UdpOffloadStats& offload = udp_offload_stats();
  // Each datagram's arrival: our clocks now, less how long it waited in the
  // kernel (a busy daemon, or one just started, reads late; what is measured
  // from a datagram is measured from its arrival).
  BatchClock batch_clock(*this);
  const TimePoint read_at = now();
  const std::int64_t read_unix_ms = unix_ms();
  std::size_t handled = 0;
  for (std::size_t i = 0; i < *got; ++i) {
    if (batch[i].truncated) {
      ++stats_.datagrams_received;
      // Larger than any datagram of ours: a peer with a larger MTU, or junk.
      ++stats_.truncated;
      warn_log_.log(now(), "datagram.truncated", spdlog::level::warn,
                    "datagram from {} larger than {} bytes: dropped", batch[i].source.to_string(),
                    batch[i].buffer.size());
      continue;
    }
    // A coalesced read is split here: each of its datagrams goes on alone,
    // with the read's source, destination and arrival.
    const GroSplit split = split_coalesced(batch[i].length, batch[i].segment_size);
    if (split.count == 0) {
      ++stats_.datagrams_received;
      ++offload.gro_malformed;
      warn_log_.log(now(), "datagram.gro", spdlog::level::warn,
                    "coalesced read from {} with segment size {}: dropped",
                    batch[i].source.to_string(), batch[i].segment_size);
      continue;
    }
    if (batch[i].segment_size != 0) {
      ++offload.gro_reads;
      offload.gro_datagrams += split.count;
    }
    // On the eBPF path the discovery socket receives every hopping port too;
    // only what was sent to the discovery port itself is discovery.
    const SentTo sent_to = arrival == Arrival::kDiscoverySocket &&
                                   batch[i].destination.port == config_->network.discovery_port
                               ? SentTo::kDiscoveryPort
                               : SentTo::kHoppingPort;
    const Duration waited = batch[i].queued_for;
    const MutableBytes read = batch[i].buffer.first(batch[i].length);
    for (std::size_t k = 0; k < split.count; ++k) {
      ++stats_.datagrams_received;
      if (++handled % kBatch == 0) batch_clock.read();  // a large GRO batch takes a while
      on_datagram(split.datagram(read, k), batch[i].source, sent_to, batch[i].destination.port,
                  ArrivedAt{read_at - waited, read_unix_ms - waited / 1000});
    }
  }
  // 5. The batch's packets into the TUN (coalesced where they could be), then
  // what they made due on the applications' connections.
  coalescing_ = false;
  flush_tun();
  bridge_->flush();
  --receiving_;
}

void Tunnel::on_datagram(MutableBytes datagram, const SocketAddress& source, SentTo sent_to,
                         std::uint16_t local_port, const ArrivedAt& at) {
  // 2. Discovery, or a session's.
  if (datagram.size() < wire::kOverhead || datagram[0] != wire::kVersion) {
    ++stats_.rejected;
    audit_drop("packet_rejected", source, "malformed");
    return;
  }
  const auto type = static_cast<wire::PacketType>(datagram[1]);
  if (wire::is_discovery_type(type)) {
    if (sent_to != SentTo::kDiscoveryPort) {
      ++stats_.rejected;
      audit_drop("packet_rejected", source, "discovery_on_a_hopping_port");
      return;
    }
    on_path_activity(source);  // before it is answered: a search waiting to retry goes now
    if (type == wire::PacketType::kDiscovery) on_discovery(datagram, source);
    if (type == wire::PacketType::kDiscoveryResponse) on_response(datagram, source, at);
    if (type == wire::PacketType::kDiscoveryConfirm) on_confirm(datagram, source, at);
    return;
  }
  SessionEntry* e = sessions_.find(session_id_of(datagram));
  if (e == nullptr) {
    ++stats_.no_session;
    audit_drop("packet_rejected", source, "unknown_session");
    on_path_activity(source);
    return;
  }
  on_session_packet(*e, datagram, source, local_port, at);
}

void Tunnel::on_session_packet(SessionEntry& e, MutableBytes datagram, const SocketAddress& source,
                               std::uint16_t local_port, const ArrivedAt& at) {
  // 3. Authenticate and decrypt.
  auto r = e.session->open(datagram, at.unix_ms, at.mono, unix_ms(), now());
  if (!r) {
    ++stats_.rejected;
    audit_drop("packet_rejected", source,
               r.error().code == ErrorCode::kReplayAttack ? "replay" : error_code_name(r.error().code));
    warn_log_.log(now(), "session.rejected", spdlog::level::debug,
                  "datagram for session {} from {} refused: {}", short_id(e.id), source.to_string(),
                  r.error().what);
    return;
  }
  // Any packet under a new key may complete a rekey.
  if (e.session->keys().stats().rekeys != e.rekeys_logged) {
    note_rekeys(e);
    // A completed rekey ends a REKEY (recovered). It never removes the
    // session here: abandoned exchanges are seen where they happen, at the
    // session's timer.
    track_rekey(e);
  }
  // The peer's address moves only to one that answered a path challenge
  // (roaming.cc): a copy of an authentic packet re-sent from elsewhere must
  // not redirect our traffic. A datagram from another address is taken for
  // what it carries, and challenges that address.
  if (e.validation && r->header.type != wire::PacketType::kPathResponse &&
      source.ip.unmapped() != e.validation->peer().unmapped()) {
    challenge_path(e, datagram.size(), source, local_port);
  }
  // The port is learned, as responder: the path the datagram opened through
  // a NAT (§11.6), from what arrived on connection 0's ports (its own packets
  // and SYNs) from the peer's address: those are the ones we answer from. A
  // datagram on the discovery port opened no hopping path.
  const bool had_path = e.answer_via != nullptr;
  if (e.paths && local_port != config_->network.discovery_port &&
      (r->header.connection_id == 0 || r->header.type == wire::PacketType::kSyn) &&
      e.paths->observe(local_port, source, hop::window_at(at.unix_ms)) &&
      (e.answer_via == nullptr || e.answer_port != local_port || e.answer_to != source)) {
    // The eBPF path binds only the ports we send from: bind this one now
    // (the update re-chooses the path), the user-space path has it open.
    if (ebpf_ != nullptr && hop_ports_->socket_for(local_port) == nullptr) {
      hop_ports_->connections_changed();
    } else {
      choose_answer_path(e);
    }
    // The first path: an initiator behind a NAT got nothing of ours before
    // it, and sends nothing else until it hears from us (§6.3 step 9).
    if (!had_path && e.answer_via != nullptr) send_sequence_confirm(e);
  }
  if (r->restored) on_peer_back(e);
  if (r->first) send_held(e);  // the responder has the session now: what waited goes
  // 4. By type.
  switch (r->header.type) {
    case wire::PacketType::kDatagram:
      deliver_datagram(e, r->body);
      return;
    case wire::PacketType::kFragment:
      if (r->header.connection_id != 0) {
        ++stats_.unsupported_type;
        return;
      }
      on_fragment(e, r->header, r->body);
      return;
    case wire::PacketType::kPmtuProbe:
      if (r->answer_pmtu) send_pmtu_ack(e, *r->answer_pmtu);
      return;
    case wire::PacketType::kPmtuAck:
      if (r->pmtu_changed) on_pmtu_changed(e);
      arm_session_timer(e);  // the next probe is due at once
      return;
    case wire::PacketType::kHeartbeat:
      if (r->answer_heartbeat) send_heartbeat(e, Heartbeat::kAnswer);
      return;
    case wire::PacketType::kTimeSyncRequest:
      // The session took the peer's clock reading; answer at once, from the
      // offset it may just have corrected. A RESYNC it set off moved its timer.
      if (r->answer_time_sync) send_time_sync_response(e, *r->answer_time_sync);
      track_time_sync(e);
      arm_session_timer(e);
      return;
    case wire::PacketType::kTimeSyncResponse:
      track_time_sync(e);
      arm_session_timer(e);  // a RESYNC asks again within a second
      return;
    case wire::PacketType::kRekeyRequest:
    case wire::PacketType::kRekeyResponse:
      // The session took the exchange's step (docs/protocol.md §9.5); a
      // CONFIRM is answered by a heartbeat under the new key.
      if (r->send_rekey) send_rekey(e);
      if (r->answer_heartbeat) send_heartbeat(e, Heartbeat::kAnswer);
      note_rekeys(e);
      arm_session_timer(e);
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
    case wire::PacketType::kPathChallenge: {
      auto body = wire::parse_body(r->header, r->body);
      if (!body) {
        ++stats_.rejected;
        return;
      }
      answer_path_challenge(e, *body);
      return;
    }
    case wire::PacketType::kPathResponse: {
      auto body = wire::parse_body(r->header, r->body);
      if (!body || !e.validation) {
        ++(body ? stats_.unsupported_type : stats_.rejected);
        return;
      }
      on_path_response(e, *body, source, local_port);
      return;
    }
    case wire::PacketType::kSequenceNeg: {
      auto body = wire::parse_body(r->header, r->body);
      if (body) on_sequence_confirm(e, *body);
      return;
    }
    default:
      ++stats_.unsupported_type;
      return;
  }
}

void Tunnel::deliver_datagram(SessionEntry& e, Bytes ip_packet) {
  auto addresses = inner::ip_addresses(ip_packet);
  if (!addresses || !sessions_.accept_source(e, addresses->source)) {
    ++stats_.spoofed_source;
    // The reason is one of two words: the inner address is the sender's
    // choice and must not become a key of the audit's counts.
    audit_drop("spoofed_source", e.remote, addresses ? "inner_source_not_allowed" : "not_ip");
    warn_log_.log(now(), "session.spoofed", spdlog::level::warn,
                  "session {}: inner packet from an address the peer may not use: dropped",
                  short_id(e.id));
    return;
  }
  write_tun(ip_packet);
}

void Tunnel::write_tun(Bytes ip_packet) {
  // GRO: in a batch, consecutive in-order segments of one TCP flow become one
  // write (core/offload/gro_coalesce); the rest go out singly, in order.
  if (coalescing_) {
    if (!coalescer_.empty() && coalescer_.append(ip_packet)) return;
    flush_tun();
    if (coalescer_.start(ip_packet)) return;
  }
  write_tun_now(ip_packet, nullptr, 1);
}

void Tunnel::write_tun_gso(const offload::VnetHeader& header, Bytes ip_packet,
                           std::size_t segments) {
  // Stream mode's near leg (a TSO read of a NAT'd flow, rewritten whole):
  // after the segments the coalescer holds, so a flow keeps its order.
  flush_tun();
  if (write_tun_now(ip_packet, &header, segments)) {
    ++stats_.tun_passthrough_writes;
    stats_.tun_passthrough_segments += segments;
  }
}

void Tunnel::flush_tun() {
  if (coalescer_.empty()) return;
  const std::size_t segments = coalescer_.count();
  offload::VnetHeader header;
  const Bytes packet = coalescer_.take(header);
  if (write_tun_now(packet, segments > 1 ? &header : nullptr, segments) && segments > 1) {
    ++stats_.tun_coalesced_writes;
    stats_.tun_coalesced_segments += segments;
  }
}

bool Tunnel::write_tun_now(Bytes packet, const offload::VnetHeader* header, std::size_t segments) {
  auto written = header != nullptr ? tun_.write_gso(*header, packet) : tun_.write_packet(packet);
  if (!written) {
    stats_.tun_write_errors += segments;
    warn_log_.log(now(), "tun.write", spdlog::level::warn, "{}", written.error().message);
    return false;
  }
  stats_.tun_packets_out += segments;
  return true;
}

}  // namespace buckwild::daemon

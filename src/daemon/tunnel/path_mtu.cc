// Path MTU (docs/protocol.md §11.10): the session's probes and their ACKs, what
// a change of the path MTU changes, and DATAGRAMs larger than the path carries
// (sent as FRAGMENTs, §5.13.13, and put back together on arrival).
#include <spdlog/spdlog.h>

#include <array>
#include <cerrno>

#include "core/inner/ip_packet.h"
#include "daemon/tunnel/tunnel.h"

namespace buckwild::daemon {
namespace {

// The path MTU an IP packet of `datagram` bytes of UDP payload needs on the
// underlay: our datagram plus the UDP and IP headers.
std::size_t path_mtu_of(std::size_t datagram, const SocketAddress& remote) {
  return datagram + 8 + (remote.ip.unmapped().is_v4() ? 20 : 40);
}

}  // namespace

void Tunnel::send_pmtu_probe(SessionEntry& e, const session::PmtuSearch::Probe& probe) {
  std::array<std::uint8_t, wire::kMaxDatagramSize> buf;
  auto n = e.session->make_pmtu_probe(MutableBytes(buf).first(probe.size), probe, unix_ms(), now());
  if (!n) return;
  const Path path = path_of(e, 0);
  const OutgoingDatagram d{Bytes(buf.data(), *n), path.to, std::nullopt};
  flush_sends();  // alone, to learn its own errno; after what was sealed before
  auto sent = path.via->send_batch({&d, 1});
  if (sent && *sent == 1) {
    ++stats_.datagrams_sent;
    return;
  }
  ++stats_.send_errors;
  // Larger than an interface on our side allows: that size fails at once.
  if (path.via->last_send_errno() == EMSGSIZE && e.session->on_pmtu_send_failed(probe.id, now())) {
    on_pmtu_changed(e);
  }
}

void Tunnel::send_pmtu_ack(SessionEntry& e, const wire::PmtuAckBody& ack) {
  std::array<std::uint8_t, wire::kOverhead + wire::kPmtuAckBodySize> buf;
  auto n = e.session->make_pmtu_ack(buf, ack, unix_ms(), now());
  if (n) send_sealed(e, Bytes(buf.data(), *n));
}

void Tunnel::on_pmtu_changed(SessionEntry& e) {
  const std::size_t datagram = e.session->max_datagram();
  spdlog::info("session {} with {}: path MTU {} (datagrams of up to {} bytes)", short_id(e.id),
               peer_name(e), path_mtu_of(datagram, e.remote), datagram);
  // Connections opened from now on fill datagrams of this size.
  bridge_->set_send_mss(e.id, std::min<std::size_t>(datagram - wire::kOverhead, mtu_));
}

std::size_t Tunnel::path_mtu(const SessionEntry& e) const {
  return path_mtu_of(e.session->max_datagram(), e.remote);
}

void Tunnel::send_fragmented(SessionEntry& e, Bytes ip) {
  // A DATAGRAM larger than the path carries: FRAGMENTs of the path's size
  // (§5.13.13), so neither the underlay fragments nor the packet is lost.
  const std::size_t piece = e.session->max_datagram() - wire::kOverhead;
  auto plan = e.fragmenter.plan(ip.size(), piece);
  if (!plan) {
    ++stats_.send_errors;
    return;
  }
  ++stats_.datagrams_fragmented;
  const Path path = path_of(e, 0);
  std::array<std::uint8_t, wire::kMaxDatagramSize> buf;
  for (std::uint16_t i = 0; i < plan->total; ++i) {
    const Bytes bytes = conn::Fragmenter::piece(ip, *plan, i);
    wire::Header h;
    conn::Fragmenter::fill_header(h, *plan, i);
    std::copy(bytes.begin(), bytes.end(), buf.begin() + wire::kHeaderSize);
    auto n = e.session->seal(h, buf, bytes.size(), unix_ms(), now());
    if (!n) return;
    send_one(*path.via, OutgoingDatagram{Bytes(buf.data(), *n), path.to, std::nullopt});
  }
}

void Tunnel::on_fragment(SessionEntry& e, const wire::Header& header, Bytes payload) {
  auto whole = e.reassembler.add(header, payload, now());
  if (!whole) {
    ++stats_.rejected;
    return;
  }
  if (*whole) deliver_datagram(e, **whole);
}

}  // namespace buckwild::daemon

// Roaming with path validation (docs/protocol.md §11.6, "Roaming"): the
// responder's peer (an initiator behind a NAT whose mapping or public address
// changed, or one that moved to another network) keeps its session, but our
// traffic follows it only once its new address has proved to be the peer.
//
//   1. challenge_path         an authenticated datagram of the session from an
//                             address other than the peer's: a PATH_CHALLENGE
//                             of fresh random bytes goes from the port it
//                             arrived on to where it came from (rate-limited,
//                             never larger than the datagram: PathValidation)
//   2. answer_path_challenge  as initiator: echo the bytes in a PATH_RESPONSE,
//                             sent as any packet of ours (from where we are)
//   3. on_path_response       the bytes of a live challenge, arriving from the
//                             very address challenged: roam
//   4. roam                   the peer's address, its return paths and the
//                             valid (source, port) pairs move to the new one
//
// A copy of an authentic datagram re-sent from a third host is at most
// challenged: the host cannot seal an answer, and the peer's own answer comes
// from the peer's address, not the third host's. A replay is refused by the
// session's replay window before it gets here.
#include <spdlog/spdlog.h>

#include <array>

#include "core/hop/time_window.h"
#include "core/wire/codec.h"
#include "daemon/tunnel/tunnel.h"

namespace buckwild::daemon {

void Tunnel::challenge_path(SessionEntry& e, std::size_t size, const SocketAddress& source,
                            std::uint16_t local_port) {
  // 1. From the port it arrived on: behind a NAT the mapping the datagram
  // made leads back only from there. Without that socket (it closed while
  // the datagram queued) the next datagram from the address asks again.
  DatagramSocket* via = local_port == config_->network.discovery_port
                            ? discovery_socket_.get()
                            : hop_ports_->socket_for(local_port);
  if (via == nullptr) return;
  const std::uint64_t started = e.validation->stats().started;
  auto data = e.validation->on_datagram(source, size, now(), rng_);
  if (!data) return;
  if (e.validation->stats().started != started) {
    spdlog::info("session {}: datagram from {} (the peer is at {}): challenging the new path",
                 short_id(e.id), source.to_string(), e.remote.ip.to_string());
  }
  std::array<std::uint8_t, 128> buf;
  wire::Header h;
  h.type = wire::PacketType::kPathChallenge;
  h.flags = wire::flags::kAck;
  auto body = wire::write_body(h, wire::PathChallengeBody{*data},
                               MutableBytes(buf).subspan(wire::kHeaderSize, wire::kPathChallengeBodySize));
  if (!body) return;
  auto n = e.session->seal(h, buf, *body, unix_ms(), now());
  if (n) send_one(*via, OutgoingDatagram{Bytes(buf.data(), *n), source, std::nullopt});
}

void Tunnel::answer_path_challenge(SessionEntry& e, const wire::Body& body) {
  // 2. Only a responder challenges; its peer answers, once per challenge
  // (the replay window keeps copies of one out).
  const auto* c = std::get_if<wire::PathChallengeBody>(&body);
  if (c == nullptr || !e.session->initiator()) {
    ++stats_.unsupported_type;
    return;
  }
  std::array<std::uint8_t, 128> buf;
  wire::Header h;
  h.type = wire::PacketType::kPathResponse;
  h.flags = wire::flags::kAck;
  auto out = wire::write_body(h, wire::PathResponseBody{c->data},
                              MutableBytes(buf).subspan(wire::kHeaderSize, wire::kPathResponseBodySize));
  if (!out) return;
  auto n = e.session->seal(h, buf, *out, unix_ms(), now());
  if (n) send_sealed(e, Bytes(buf.data(), *n));
}

void Tunnel::on_path_response(SessionEntry& e, const wire::Body& body, const SocketAddress& source,
                              std::uint16_t local_port) {
  // 3.
  const auto* r = std::get_if<wire::PathResponseBody>(&body);
  if (r == nullptr || !e.validation->on_response(r->data, source, now())) return;
  roam(e, source, local_port);
}

void Tunnel::roam(SessionEntry& e, const SocketAddress& source, std::uint16_t local_port) {
  // 4. The new address is the peer's now: its datagrams open return paths,
  // the kernel filter expects it on our ports, and the old one is a stranger.
  const IpAddress from = e.remote.ip;
  e.remote = source;  // where the answer came from, as discovery's was
  e.paths.emplace(source.ip);
  e.answer_via = nullptr;
  if (local_port != config_->network.discovery_port) {
    e.paths->observe(local_port, source, hop::window_at(unix_ms()));
  }
  ++stats_.roams;
  spdlog::info("session {}: the peer moved from {} to {} (path validated)", short_id(e.id),
               from.to_string(), source.ip.to_string());
  audit("session_roamed", e, "info",
        {{"from_address", from.to_string()}, {"to_address", source.ip.to_string()},
         {"to_port", source.port}});
  // New valid pairs (eBPF) and the path to answer along. The update may be
  // folded into one under way: choose now from what is open already.
  hop_ports_->connections_changed();
  choose_answer_path(e);
}

}  // namespace buckwild::daemon

// The tunnel's part of `buckwild status` (docs/control.md "status"). Read
// only: nothing here changes a port, a timer or a counter.
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "core/conn/bbr.h"
#include "core/discovery/features.h"
#include "core/hop/time_window.h"
#include "daemon/tunnel/tunnel.h"

namespace buckwild::daemon {
namespace {

// The session's negotiated packet protection (docs/protocol.md §6.4).
std::string_view protection_name(std::uint16_t features) {
  const discovery::Protection p = discovery::protection_of(features);
  if (p.mode == crypto::ProtectionMode::kHmac) return "hmac-sha256-128";
  return p.algorithm == crypto::AeadAlgorithm::kAes256Gcm ? "aes-256-gcm" : "chacha20-poly1305";
}

// docs/protocol.md §9.5: the key in force, its age and the exchanges so far.
nlohmann::json rekey_json(const session::Session& ss, TimePoint now) {
  const session::SessionKeys& k = ss.keys();
  const session::RekeyStats& r = k.stats();
  return nlohmann::json{{"key_epoch", k.epoch()},
                        {"key_age_ms", (now - k.key_since()) / 1000},
                        {"packets_under_key", k.sent_under_key()},
                        {"rekeys", r.rekeys},
                        {"requested", r.rekeys_requested},
                        {"retries", r.rekey_retries},
                        {"failures", r.rekey_failures},
                        {"abandoned", r.requests_abandoned},
                        {"invalid", r.rekey_invalid},
                        {"old_key_opened", r.old_key_opened},
                        {"in_progress", k.in_progress()}};
}

}  // namespace
namespace {

using nlohmann::json;

const char* pmtu_state_name(session::PmtuSearch::State s) {
  switch (s) {
    case session::PmtuSearch::State::kBase: return "base";
    case session::PmtuSearch::State::kSearch: return "searching";
    case session::PmtuSearch::State::kComplete: return "complete";
  }
  return "base";
}

double ms_between(TimePoint from, TimePoint to) {
  return static_cast<double>(to - from) / 1000.0;  // TimePoint counts microseconds
}

json optional_ms(std::optional<Duration> d) {
  if (!d) return nullptr;
  return static_cast<double>(*d) / 1000.0;
}

double ms_of(Duration d) { return static_cast<double>(d) / 1000.0; }

const char* bbr_mode_name(conn::Bbr::Mode m) {
  switch (m) {
    case conn::Bbr::Mode::kStartup: return "startup";
    case conn::Bbr::Mode::kDrain: return "drain";
    case conn::Bbr::Mode::kProbeBandwidth: return "probe_bw";
    case conn::Bbr::Mode::kProbeRtt: return "probe_rtt";
  }
  return "startup";
}

// BBR's model (null under another congestion control).
json bbr_json(const conn::CongestionController& cc) {
  const auto* bbr = dynamic_cast<const conn::Bbr*>(&cc);
  if (bbr == nullptr) return nullptr;
  return json{{"mode", bbr_mode_name(bbr->mode())},
              {"bandwidth_bytes_per_second", bbr->bandwidth()},
              {"min_rtt_ms", ms_of(bbr->min_rtt())},
              {"rounds", bbr->rounds()}};
}

// A stream-mode connection's transport state, as `ss -ti` shows a TCP
// socket's: enough to tell a connection held back by its congestion window
// from one held back by the peer's window, its send buffer or its losses.
json connection_json(const StreamBridge::ConnectionView& v) {
  const conn::Connection& c = *v.conn;
  const conn::Sender& s = c.sender();
  const conn::Receiver& r = c.receiver();
  const conn::SenderStats& ss = s.stats();
  const conn::ReceiverStats& rs = r.stats();
  return json{
      {"id", v.id},
      {"side", v.app == nullptr ? json(nullptr) : json(v.client ? "client" : "server")},
      {"application", v.app == nullptr ? json(nullptr) : json(v.app->to_string())},
      {"target", v.target == nullptr ? json(nullptr) : json(v.target->to_string())},
      {"state", conn::state_name(c.state())},
      {"congestion_control", s.congestion().name()},
      {"cwnd_bytes", c.congestion_window()},
      {"pacing_bytes_per_second", s.pacing_rate()},
      {"bytes_in_flight", s.bytes_in_flight()},
      {"peer_window_bytes", s.peer_window()},
      {"send_buffered_bytes", s.buffered()},
      {"send_limit_bytes", s.send_limit()},
      {"receive_space_bytes", r.receive_space()},
      {"receive_readable_bytes", r.readable()},
      {"srtt_ms", ms_of(s.rtt().smoothed())},
      {"rttvar_ms", ms_of(s.rtt().variation())},
      {"min_rtt_ms", ms_of(s.rtt().min_rtt())},
      {"rto_ms", ms_of(s.rtt().rto())},
      {"segments_sent", ss.segments_sent},
      {"retransmissions", ss.retransmissions},
      {"timeouts", ss.timeouts},
      {"tail_loss_probes", ss.tail_loss_probes},
      {"bytes_delivered", ss.bytes_delivered},
      {"segments_in_order", rs.segments_in_order},
      {"segments_out_of_order", rs.segments_out_of_order},
      {"duplicates", rs.duplicates},
      {"segments_dropped", rs.dropped},
      {"receive_window_growths", rs.window_growths},
      {"bbr", bbr_json(s.congestion())},
  };
}

}  // namespace

nlohmann::json Tunnel::status() {
  const std::int64_t t = unix_ms();
  const std::int64_t w = hop::window_at(t);
  const TimePoint n = now();

  json out;
  out["listen"] = {{"address", config_->network.listen_address.to_string()},
                   {"discovery_port", config_->network.discovery_port}};
  out["window"] = {{"index", w},
                   {"hop_interval_ms", hop::kHopIntervalMs},
                   {"remaining_ms", (w + 1) * hop::kHopIntervalMs - t}};

  const TunnelStats& s = stats_;
  out["counters"] = {{"tun_packets_in", s.tun_packets_in},
                     {"tun_packets_out", s.tun_packets_out},
                     {"datagrams_sent", s.datagrams_sent},
                     {"datagrams_received", s.datagrams_received},
                     {"sessions_established", s.sessions_established},
                     {"sessions_lost", s.sessions_lost},
                     {"stranded_replayed", s.stranded_replayed},
                     {"held_until_heard", s.held_until_heard},
                     {"held_dropped", s.held_dropped},
                     {"roams", s.roams},
                     {"rekeys", s.rekeys},
                     {"rekey_recoveries", s.rekey_recoveries},
                     {"rekey_exhausted", s.rekey_exhausted},
                     {"datagrams_fragmented", s.datagrams_fragmented},
                     {"sessions", sessions_.size()}};
  const HopPortStats& h = hop_ports_->stats();
  out["drops"] = {{"no_route", s.no_route},
                  {"not_ip", s.not_ip},
                  {"no_session", s.no_session},
                  {"rejected", s.rejected},
                  {"spoofed_source", s.spoofed_source},
                  {"unsupported_type", s.unsupported_type},
                  {"truncated", s.truncated},
                  {"send_errors", s.send_errors},
                  {"tun_read_errors", s.tun_read_errors},
                  {"tun_write_errors", s.tun_write_errors},
                  {"pool_exhausted", s.pool_exhausted},
                  {"response_wrong_source", s.response_wrong_source},
                  {"audit_errors", audit_ != nullptr ? audit_->stats().write_errors : 0},
                  {"hop_port_bind_failures", h.bind_failures}};
  const TunOffloadStats o = tun_.offload_stats();
  out["tun_offload"] = {{"gso_reads", o.gso_reads},
                        {"gso_segments", o.gso_segments},
                        {"checksums_completed", o.checksums_completed},
                        {"refused", o.refused},
                        {"coalesced_writes", s.tun_coalesced_writes},
                        {"coalesced_segments", s.tun_coalesced_segments},
                        {"passed_through", s.tun_passthrough_writes},
                        {"passed_through_segments", s.tun_passthrough_segments}};
  const UdpOffloadStats& u = udp_offload_stats();
  out["udp_offload"] = {{"gso", u.gso},
                        {"gro", u.gro},
                        {"gso_sends", u.gso_sends},
                        {"gso_datagrams", u.gso_datagrams},
                        {"gso_refused", u.gso_refused},
                        {"gro_reads", u.gro_reads},
                        {"gro_datagrams", u.gro_datagrams},
                        {"gro_malformed", u.gro_malformed},
                        {"batched_sends", s.batched_sends},
                        {"batched_datagrams", s.batched_datagrams}};
  const discovery::ResponderCounters& d = responder_->counters();
  out["discovery"] = {{"responses", d.responses},
                      {"sessions", d.sessions},
                      {"malformed", d.malformed},
                      {"stale", d.stale},
                      {"rate_limited", d.rate_limited},
                      {"overloaded", d.overloaded},
                      {"no_shared_psk", d.no_shared_psk},
                      {"no_common_features", d.no_common_features},
                      {"bad_cookie", d.bad_cookie},
                      {"bad_proof", d.bad_proof},
                      {"replayed", d.replayed}};
  const StreamStats& st = bridge_->stats();
  out["stream"] = {{"flows", bridge_->flow_count()},
                   {"buffered_bytes", bridge_->buffered_bytes()},
                   {"memory_budget_bytes", bridge_->memory().limit()},
                   {"max_window_bytes", bridge_->max_window()},
                   {"memory_charged_bytes", bridge_->memory().used()},
                   {"memory_refusals", bridge_->memory().refusals()},
                   {"opened", st.opened},
                   {"accepted", st.accepted},
                   {"refused", st.refused},
                   {"limit_refusals", st.limit_refusals},
                   {"resets", st.resets},
                   {"completed", st.completed},
                   {"rewritten", st.rewritten},
                   {"rewritten_whole", st.rewritten_whole},
                   {"bytes_up", st.bytes_up},
                   {"bytes_down", st.bytes_down},
                   {"spoofed_targets", st.spoofed_targets},
                   {"ports_reclaimed", st.ports_reclaimed},
                   {"accept_pauses", st.listener.accept_pauses},
                   {"accept_errors", st.listener.accept_errors}};
  if (ebpf_ != nullptr) {
    out["ebpf"] = {{"valid_ports", h.valid_ports},
                   {"valid_port_updates", h.valid_port_updates},
                   {"valid_port_update_failures", h.valid_port_update_failures}};
  } else {
    out["ebpf"] = nullptr;
  }

  // Each session: its block, and its ports into the interface's list.
  std::set<std::uint16_t> listening = {config_->network.discovery_port};
  std::vector<std::uint16_t> ports;
  std::vector<std::uint16_t> conns;
  auto session_block = [&](SessionEntry& e) {
    session::Session& ss = *e.session;
    // Connection 0's ports are the session's own (reported below); each
    // connection's (live, or ended moments ago) add to the interface's list.
    conns.clear();
    bridge_->connection_ids(e.id, conns);
    std::vector<std::uint16_t> conn_ports;
    for (std::uint16_t conn : conns) {
      conn_ports.clear();
      ss.listen_ports(t, conn, conn_ports);
      listening.insert(conn_ports.begin(), conn_ports.end());
    }
    ports.clear();
    ss.listen_ports(t, 0, ports);
    listening.insert(ports.begin(), ports.end());
    const StreamBridge::SessionConnections c = bridge_->session_connections(e.id);
    const session::SessionStats& x = ss.stats();
    const std::optional<std::int32_t> delay = ss.one_way_delay_ms();
    const session::TimeSyncStats& ts = ss.time_sync().stats();
    return json{
        {"id", fmt::format("{:08x}", e.id >> 32)},
        {"role", ss.initiator() ? "initiator" : "responder"},
        {"protection", protection_name(ss.features())},
        {"endpoint", e.remote.to_string()},
        {"psk", e.psk_id},
        {"established_ms_ago", ms_between(e.established_at, n)},
        {"last_received_ms_ago", ms_between(ss.last_received(), n)},
        {"window", w},
        {"send_port", ss.send_port(t)},
        {"listen_ports", ports},
        {"delay_allowance", ss.delay_allowance()},
        {"path_mtu",
         {{"mtu", path_mtu(e)},
          {"datagram", ss.max_datagram()},
          {"state", pmtu_state_name(ss.pmtu().state())},
          {"bound", ss.pmtu().bound()},
          {"peer_max_datagram",
           ss.pmtu().peer_max() ? json(*ss.pmtu().peer_max()) : json(nullptr)},
          {"probes_sent", x.pmtu_probes_sent},
          {"acks_received", x.pmtu_acks_received}}},
        {"clock_offset_ms", ss.clock_offset_ms()},
        {"time_sync",
         {{"measurements", ts.responses_received},
          {"requests_sent", ts.requests_sent},
          {"requests_answered", ts.requests_answered},
          {"resyncs", ts.resyncs},
          {"adopted_from_peer", ts.adopted_from_peer},
          {"resyncing", ss.time_sync().resyncing()},
          {"last_offset_ms", ts.last_offset_ms ? json(*ts.last_offset_ms) : json(nullptr)},
          {"last_rtt_ms", ts.last_rtt_ms ? json(*ts.last_rtt_ms) : json(nullptr)}}},
        {"one_way_delay_ms", delay ? json(*delay) : json(nullptr)},
        {"rtt_ms", optional_ms(c.min_rtt)},
        {"rx_packets", x.received},
        {"tx_packets", x.sent},
        {"rx_bytes", x.received_bytes},
        {"tx_bytes", x.sent_bytes},
        {"rejected", x.rejected},
        {"heartbeats_sent", x.heartbeats_sent},
        {"heartbeats_received", x.heartbeats_received},
        {"path_keepalives_sent", x.path_keepalives_sent},
        {"return_path", e.answer_via != nullptr
                            ? json{{"from_port", e.answer_port}, {"to", e.answer_to.to_string()}}
                            : json(nullptr)},
        {"path_validation", e.validation ? json{{"started", e.validation->stats().started},
                                                 {"succeeded", e.validation->stats().succeeded},
                                                 {"failed", e.validation->stats().failed},
                                                 {"challenges_sent", e.validation->stats().challenges_sent},
                                                 {"pending", e.validation->pending()}}
                                           : json(nullptr)},
        {"connections", c.live},
        {"retransmissions", c.retransmissions},
        {"stream_connections", [&] {
           json list = json::array();
           for (const auto& v : bridge_->connections(e.id)) list.push_back(connection_json(v));
           return list;
         }()},
        {"rekey", rekey_json(ss, n)},
    };
  };

  json peers = json::array();
  for (std::size_t i = 0; i < peers_.size(); ++i) {
    const Peer& p = peers_[i];
    const PeerConfig& pc = *p.config;
    json routes = json::array();
    for (const Cidr& r : pc.routes) routes.push_back(r.to_string());
    SessionEntry* e = p.session_id != 0 ? sessions_.find(p.session_id) : nullptr;
    peers.push_back({{"name", pc.name},
                     {"configured", true},
                     {"admin_state", p.admin_down ? "down" : "up"},
                     {"state",
                      {{"state", session::name(p.state.state())},
                       {"strategy", session::name(p.state.strategy())},
                       {"cause", session::name(p.state.cause())},
                       {"attempts", p.state.attempts()},
                       {"since_ms_ago", ms_between(p.state.since(), n)},
                       {"error", p.error_reason}}},
                     {"unanswered_discovery_attempts", p.discovery_failures},
                     {"endpoint_configured", pc.endpoint ? json(pc.endpoint->to_string()) : json(nullptr)},
                     {"virtual_addresses", json::array({pc.virtual_address.to_string()})},
                     {"routes", routes},
                     {"psk", pc.psk.empty() ? json(nullptr) : json(pc.psk)},
                     {"session", e != nullptr ? session_block(*e) : json(nullptr)}});
  }
  // Sessions with peers that have no entry, in id order.
  std::vector<std::uint64_t> unlisted;
  sessions_.for_each([&](SessionEntry& e) {
    if (!e.peer) unlisted.push_back(e.id);
  });
  std::sort(unlisted.begin(), unlisted.end());
  for (std::uint64_t id : unlisted) {
    SessionEntry& e = *sessions_.find(id);
    json addresses = json::array();
    if (e.claimed) addresses.push_back(e.claimed->to_string());
    peers.push_back({{"name", peer_name(e)},
                     {"configured", false},
                     {"admin_state", "up"},
                     {"state",
                      {{"state", e.session->silent() ? "recovering" : "established"},
                       {"strategy", e.session->silent() ? "emergency" : "none"},
                       {"cause", e.session->silent() ? "peer_silent" : "session_established"},
                       {"attempts", 0},
                       {"since_ms_ago", nullptr},
                       {"error", ""}}},
                     {"unanswered_discovery_attempts", 0},
                     {"endpoint_configured", nullptr},
                     {"virtual_addresses", addresses},
                     {"routes", json::array()},
                     {"psk", nullptr},
                     {"session", session_block(e)}});
  }
  out["peers"] = std::move(peers);
  out["listening_ports"] = json(std::vector<std::uint16_t>(listening.begin(), listening.end()));
  return out;
}

}  // namespace buckwild::daemon

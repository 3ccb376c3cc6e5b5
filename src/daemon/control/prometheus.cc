#include "daemon/control/prometheus.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string_view>
#include <unordered_set>

namespace buckwild::daemon {
namespace {

using Json = nlohmann::json;

enum class Kind : std::uint8_t { kCounter, kGauge };

// Every family, in the order they are written. docs/control.md "Metrics"
// lists the same table for operators: change both together.
enum Family : std::size_t {
  kBuildInfo,
  kTunnelInfo,
  kUptime,
  kReloads,
  kHopInterval,
  kHopWindow,
  kListeningPorts,
  kTunPackets,
  kDatagrams,
  kSessionsEstablished,
  kSessionsLost,
  kRekeyRecoveries,
  kDrops,
  kTunOffload,
  kUdpOffload,
  kDiscoveryResponses,
  kDiscoverySessions,
  kDiscoveryDrops,
  kStreamFlows,
  kStreamBufferedBytes,
  kStreamMemoryBudget,
  kStreamMemoryCharged,
  kStreamMemoryRefusals,
  kStreamOpened,
  kStreamAccepted,
  kStreamRefused,
  kStreamLimitRefusals,
  kStreamResets,
  kStreamCompleted,
  kStreamRewritten,
  kStreamBytes,
  kStreamSpoofedTargets,
  kStreamPortsReclaimed,
  kStreamAcceptPauses,
  kStreamAcceptErrors,
  kEbpfValidPorts,
  kEbpfValidPortUpdates,
  kEbpfValidPortUpdateFailures,
  kEbpfPackets,
  kEbpfStreamNat,
  kPeerInfo,
  kPeerUp,
  kPeerSessionAge,
  kPeerLastReceivedAge,
  kPeerDelayAllowance,
  kPeerClockOffset,
  kPeerOneWayDelay,
  kPeerRtt,
  kPeerReceivePackets,
  kPeerTransmitPackets,
  kPeerReceiveBytes,
  kPeerTransmitBytes,
  kPeerRejected,
  kPeerHeartbeats,
  kPeerConnections,
  kPeerRetransmissions,
  kPeerRekeys,
  kPeerKeyAge,
  kFamilyCount,
};

struct FamilySpec {
  std::string_view name;
  Kind kind;
  std::string_view help;
};

constexpr std::array<FamilySpec, kFamilyCount> kSpecs{{
    {"buckwild_build_info", Kind::kGauge,
     "Buckwild version and wire protocol version of the daemon serving the tunnel; always 1."},
    {"buckwild_tunnel_info", Kind::kGauge,
     "How the tunnel runs: receive path (ebpf or userspace) and TCP mode; always 1."},
    {"buckwild_uptime_seconds", Kind::kGauge, "Seconds since the daemon started."},
    {"buckwild_reloads_total", Kind::kCounter,
     "Configuration reloads, by result (applied or refused)."},
    {"buckwild_hop_interval_seconds", Kind::kGauge, "Length of one port-hopping window."},
    {"buckwild_hop_window", Kind::kGauge, "Index of the current port-hopping window."},
    {"buckwild_listening_ports", Kind::kGauge,
     "UDP ports the daemon receives on now (the discovery port and every session's hopping "
     "ports)."},
    {"buckwild_tun_packets_total", Kind::kCounter,
     "Packets read from (in) and written to (out) the TUN device."},
    {"buckwild_datagrams_total", Kind::kCounter,
     "UDP datagrams sent and received on the underlay."},
    {"buckwild_sessions_established_total", Kind::kCounter, "Sessions established with peers."},
    {"buckwild_sessions_lost_total", Kind::kCounter, "Sessions that ended or were lost."},
    {"buckwild_rekey_recoveries_total", Kind::kCounter,
     "Runs of the recovery strategy REKEY, by outcome: recovered (a rekey completed) or exhausted "
     "(5 attempts spent; EMERGENCY took over)."},
    {"buckwild_drops_total", Kind::kCounter, "Packets and datagrams dropped, by reason."},
    {"buckwild_tun_offload_total", Kind::kCounter,
     "What the TUN offloads did, by event: GSO reads and the segments split from them, checksums "
     "completed, refused reads, coalesced (GRO) writes and their segments, stream-mode reads "
     "passed through whole and their segments."},
    {"buckwild_udp_offload_total", Kind::kCounter,
     "What the UDP offloads did, by event: UDP_SEGMENT sends and their datagrams, GSO sends the "
     "kernel refused, UDP_GRO reads and the datagrams split from them, malformed coalesced "
     "reads, the send queue's batched sends and their datagrams."},
    {"buckwild_discovery_responses_total", Kind::kCounter,
     "DISCOVERY_RESPONSE messages sent as responder."},
    {"buckwild_discovery_sessions_total", Kind::kCounter,
     "Sessions established as discovery responder."},
    {"buckwild_discovery_drops_total", Kind::kCounter,
     "Discovery messages dropped by the responder, by reason."},
    {"buckwild_stream_flows", Kind::kGauge, "Transparent TCP flows open now."},
    {"buckwild_stream_buffered_bytes", Kind::kGauge,
     "Bytes buffered by transparent TCP flows now."},
    {"buckwild_stream_memory_budget_bytes", Kind::kGauge,
     "The budget for transparent TCP connections' buffers past each one's guaranteed 64 KiB."},
    {"buckwild_stream_memory_charged_bytes", Kind::kGauge,
     "Bytes of transparent TCP connections' buffers charged to the budget now."},
    {"buckwild_stream_memory_refusals_total", Kind::kCounter,
     "Out-of-order segments dropped because the memory budget was spent."},
    {"buckwild_stream_flows_opened_total", Kind::kCounter,
     "Transparent TCP flows started by an application on this side."},
    {"buckwild_stream_flows_accepted_total", Kind::kCounter,
     "Transparent TCP flows the peer asked for and this side connected."},
    {"buckwild_stream_flows_refused_total", Kind::kCounter,
     "Transparent TCP flows refused here or by the far side."},
    {"buckwild_stream_flow_limit_refusals_total", Kind::kCounter,
     "Transparent TCP flows refused by the flow limits."},
    {"buckwild_stream_flows_reset_total", Kind::kCounter,
     "Transparent TCP flows that ended in a reset."},
    {"buckwild_stream_flows_completed_total", Kind::kCounter,
     "Transparent TCP flows that ended with both FINs."},
    {"buckwild_stream_segments_rewritten_total", Kind::kCounter,
     "TCP segments rewritten and written back by the transparent TCP bridge."},
    {"buckwild_stream_bytes_total", Kind::kCounter,
     "Transparent TCP payload bytes, up (local sockets into connections) and down."},
    {"buckwild_stream_spoofed_targets_total", Kind::kCounter,
     "TCP SYNs naming a source address the peer may not use."},
    {"buckwild_stream_ports_reclaimed_total", Kind::kCounter,
     "NAT ports taken back early from transparent TCP flows that were over (all ports were held)."},
    {"buckwild_stream_accept_pauses_total", Kind::kCounter,
     "Times accept() ran out of descriptors or memory and accepting paused."},
    {"buckwild_stream_accept_errors_total", Kind::kCounter,
     "accept() calls that failed for one connection."},
    {"buckwild_ebpf_valid_ports", Kind::kGauge,
     "(peer, port) pairs the eBPF receive path steers to the daemon now."},
    {"buckwild_ebpf_valid_port_updates_total", Kind::kCounter,
     "Rewrites of the eBPF valid-port set."},
    {"buckwild_ebpf_valid_port_update_failures_total", Kind::kCounter,
     "Rewrites of the eBPF valid-port set that failed."},
    {"buckwild_ebpf_packets_total", Kind::kCounter,
     "Packets seen by the eBPF programs, by program (hook) and verdict."},
    {"buckwild_ebpf_stream_nat_segments_total", Kind::kCounter,
     "TCP segments leaving the virtual interface, by what the kernel's stream NAT did with them."},
    {"buckwild_peer_info", Kind::kGauge,
     "A peer: whether it is configured ([[peer]]) and its PSK id; always 1."},
    {"buckwild_peer_up", Kind::kGauge, "1 while the peer has a session, 0 without one."},
    {"buckwild_peer_session_age_seconds", Kind::kGauge,
     "Seconds since the peer's current session was established."},
    {"buckwild_peer_last_received_age_seconds", Kind::kGauge,
     "Seconds since a packet of the peer's session was last received."},
    {"buckwild_peer_delay_allowance_windows", Kind::kGauge,
     "Hop windows either side of the current one the session accepts packets in."},
    {"buckwild_peer_clock_offset_seconds", Kind::kGauge,
     "Estimate of the peer's clock minus ours, made in discovery."},
    {"buckwild_peer_one_way_delay_seconds", Kind::kGauge,
     "Median of the measured one-way delays from the peer."},
    {"buckwild_peer_rtt_seconds", Kind::kGauge,
     "Smallest smoothed round-trip time of the session's connections (stream mode)."},
    {"buckwild_peer_receive_packets_total", Kind::kCounter,
     "Packets received in the peer's current session (resets with a new session)."},
    {"buckwild_peer_transmit_packets_total", Kind::kCounter,
     "Packets sent in the peer's current session (resets with a new session)."},
    {"buckwild_peer_receive_bytes_total", Kind::kCounter,
     "Bytes received in the peer's current session (resets with a new session)."},
    {"buckwild_peer_transmit_bytes_total", Kind::kCounter,
     "Bytes sent in the peer's current session (resets with a new session)."},
    {"buckwild_peer_rejected_packets_total", Kind::kCounter,
     "Packets of the peer's current session that failed authentication, replay, timestamp or "
     "header checks (resets with a new session)."},
    {"buckwild_peer_heartbeats_total", Kind::kCounter,
     "Heartbeats sent and received in the peer's current session (resets with a new session)."},
    {"buckwild_peer_connections", Kind::kGauge, "Live Buckwild connections of the peer's session."},
    {"buckwild_peer_retransmissions_total", Kind::kCounter,
     "Segments resent by the session's connections (resets with a new session)."},
    {"buckwild_peer_rekeys_total", Kind::kCounter,
     "Rekeys the peer's current session completed (resets with a new session)."},
    {"buckwild_peer_key_age_seconds", Kind::kGauge,
     "Age of the packet key the peer's session sends under (since its last rekey)."},
}};

struct Label {
  std::string_view name;
  std::string_view value;
};

// A sample value: the document's integers are written exactly; anything
// divided into base units, and floats, as the shortest text that reads back
// as the same double.
enum class Unit : std::uint8_t {
  kAsIs,
  kMilliseconds,  // the document's *_ms: written as seconds
};

std::optional<std::string> number_text(const Json* v, Unit unit) {
  if (v == nullptr || !v->is_number()) return std::nullopt;
  std::array<char, 64> buf{};
  std::to_chars_result r{};
  if (unit == Unit::kAsIs && v->is_number_unsigned()) {
    r = std::to_chars(buf.data(), buf.data() + buf.size(), v->get<std::uint64_t>());
  } else if (unit == Unit::kAsIs && v->is_number_integer()) {
    r = std::to_chars(buf.data(), buf.data() + buf.size(), v->get<std::int64_t>());
  } else {
    double d = v->get<double>();
    if (unit == Unit::kMilliseconds) d /= 1000.0;
    // JSON has no NaN or infinity, but a document built in memory can; the
    // exposition spells them differently, and none of ours means anything.
    if (!std::isfinite(d)) return std::nullopt;
    // Fixed notation for people reading a textfile (0.0004, not 4e-04);
    // scientific only when that does not fit the buffer.
    r = std::to_chars(buf.data(), buf.data() + buf.size(), d, std::chars_format::fixed);
    if (r.ec != std::errc{}) r = std::to_chars(buf.data(), buf.data() + buf.size(), d);
  }
  if (r.ec != std::errc{}) return std::nullopt;
  return std::string(buf.data(), r.ptr);
}

// `key` of `object`, or nullptr when `object` is not an object or lacks it.
// Null values count as missing.
const Json* field(const Json* object, std::string_view key) {
  if (object == nullptr || !object->is_object()) return nullptr;
  auto it = object->find(key);
  if (it == object->end() || it->is_null()) return nullptr;
  return &*it;
}

std::string_view string_or_empty(const Json* v) {
  return v != nullptr && v->is_string() ? std::string_view(v->get_ref<const std::string&>())
                                        : std::string_view();
}

// Label values escape backslash, double quote and newline; HELP text
// backslash and newline (exposition format 0.0.4).
void append_escaped(std::string& out, std::string_view text, bool quote_too) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote_too) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

class Exposition {
 public:
  // One sample of `family`. Left out when `value` is empty or when the same
  // label set is already in the family.
  void add(Family family, std::initializer_list<Label> labels, std::optional<std::string> value) {
    if (!value) return;
    std::string label_text;
    if (labels.size() != 0) {
      label_text += '{';
      bool first = true;
      for (const Label& l : labels) {
        if (!first) label_text += ',';
        first = false;
        label_text += l.name;
        label_text += "=\"";
        append_escaped(label_text, l.value, true);
        label_text += '"';
      }
      label_text += '}';
    }
    Samples& s = samples_[family];
    if (!s.label_sets.insert(label_text).second) return;
    s.lines += kSpecs[family].name;
    s.lines += label_text;
    s.lines += ' ';
    s.lines += *value;
    s.lines += '\n';
  }

  std::string text() const {
    std::string out;
    for (std::size_t f = 0; f < kFamilyCount; ++f) {
      if (samples_[f].lines.empty()) continue;
      const FamilySpec& spec = kSpecs[f];
      out += "# HELP ";
      out += spec.name;
      out += ' ';
      append_escaped(out, spec.help, false);
      out += "\n# TYPE ";
      out += spec.name;
      out += spec.kind == Kind::kCounter ? " counter\n" : " gauge\n";
      out += samples_[f].lines;
    }
    return out;
  }

 private:
  struct Samples {
    std::string lines;
    std::unordered_set<std::string> label_sets;
  };
  std::array<Samples, kFamilyCount> samples_;
};

const std::string kOne = "1";

// A counter or gauge straight from `object[key]`, labelled by device only.
void add_plain(Exposition& out, Family family, std::string_view device, const Json* object,
               std::string_view key, Unit unit = Unit::kAsIs) {
  out.add(family, {{"device", device}}, number_text(field(object, key), unit));
}

// Every numeric member of `object` as one sample of `family` with
// label_name=<key>, except the keys in `skip`. New reasons the daemon adds
// appear without a change here.
void add_by_key(Exposition& out, Family family, std::string_view device, const Json* object,
                std::string_view label_name, std::initializer_list<std::string_view> skip = {}) {
  if (object == nullptr || !object->is_object()) return;
  for (const auto& [key, value] : object->items()) {
    bool skipped = false;
    for (std::string_view s : skip) skipped = skipped || key == s;
    if (skipped) continue;
    out.add(family, {{"device", device}, {label_name, key}}, number_text(&value, Unit::kAsIs));
  }
}

void add_tunnel(Exposition& out, const Json& doc, std::string_view device) {
  if (const Json* version = field(&doc, "version"); version != nullptr && version->is_string()) {
    std::optional<std::string> protocol = number_text(field(&doc, "protocol_version"), Unit::kAsIs);
    out.add(kBuildInfo,
            {{"device", device},
             {"version", string_or_empty(version)},
             {"protocol", protocol ? std::string_view(*protocol) : std::string_view()}},
            kOne);
  }
  const Json* receive_path = field(&doc, "receive_path");
  std::string_view path_kind = string_or_empty(field(receive_path, "kind"));
  std::string_view tcp_mode = string_or_empty(field(&doc, "tcp_mode"));
  if (!path_kind.empty() || !tcp_mode.empty()) {
    out.add(kTunnelInfo, {{"device", device}, {"receive_path", path_kind}, {"tcp_mode", tcp_mode}},
            kOne);
  }
  add_plain(out, kUptime, device, &doc, "uptime_ms", Unit::kMilliseconds);
  const Json* reloads = field(&doc, "reloads");
  for (std::string_view result : {"applied", "refused"}) {
    out.add(kReloads, {{"device", device}, {"result", result}},
            number_text(field(reloads, result), Unit::kAsIs));
  }
  const Json* window = field(&doc, "window");
  add_plain(out, kHopInterval, device, window, "hop_interval_ms", Unit::kMilliseconds);
  add_plain(out, kHopWindow, device, window, "index");
  if (const Json* ports = field(&doc, "listening_ports"); ports != nullptr && ports->is_array()) {
    out.add(kListeningPorts, {{"device", device}}, std::to_string(ports->size()));
  }

  const Json* counters = field(&doc, "counters");
  out.add(kTunPackets, {{"device", device}, {"direction", "in"}},
          number_text(field(counters, "tun_packets_in"), Unit::kAsIs));
  out.add(kTunPackets, {{"device", device}, {"direction", "out"}},
          number_text(field(counters, "tun_packets_out"), Unit::kAsIs));
  out.add(kDatagrams, {{"device", device}, {"direction", "sent"}},
          number_text(field(counters, "datagrams_sent"), Unit::kAsIs));
  out.add(kDatagrams, {{"device", device}, {"direction", "received"}},
          number_text(field(counters, "datagrams_received"), Unit::kAsIs));
  add_plain(out, kSessionsEstablished, device, counters, "sessions_established");
  add_plain(out, kSessionsLost, device, counters, "sessions_lost");
  out.add(kRekeyRecoveries, {{"device", device}, {"outcome", "recovered"}},
          number_text(field(counters, "rekey_recoveries"), Unit::kAsIs));
  out.add(kRekeyRecoveries, {{"device", device}, {"outcome", "exhausted"}},
          number_text(field(counters, "rekey_exhausted"), Unit::kAsIs));
  add_by_key(out, kDrops, device, field(&doc, "drops"), "reason");
  add_by_key(out, kTunOffload, device, field(&doc, "tun_offload"), "event");
  add_by_key(out, kUdpOffload, device, field(&doc, "udp_offload"), "event");

  const Json* discovery = field(&doc, "discovery");
  add_plain(out, kDiscoveryResponses, device, discovery, "responses");
  add_plain(out, kDiscoverySessions, device, discovery, "sessions");
  add_by_key(out, kDiscoveryDrops, device, discovery, "reason", {"responses", "sessions"});

  const Json* stream = field(&doc, "stream");
  add_plain(out, kStreamFlows, device, stream, "flows");
  add_plain(out, kStreamBufferedBytes, device, stream, "buffered_bytes");
  add_plain(out, kStreamMemoryBudget, device, stream, "memory_budget_bytes");
  add_plain(out, kStreamMemoryCharged, device, stream, "memory_charged_bytes");
  add_plain(out, kStreamMemoryRefusals, device, stream, "memory_refusals");
  add_plain(out, kStreamOpened, device, stream, "opened");
  add_plain(out, kStreamAccepted, device, stream, "accepted");
  add_plain(out, kStreamRefused, device, stream, "refused");
  add_plain(out, kStreamLimitRefusals, device, stream, "limit_refusals");
  add_plain(out, kStreamResets, device, stream, "resets");
  add_plain(out, kStreamCompleted, device, stream, "completed");
  add_plain(out, kStreamRewritten, device, stream, "rewritten");
  out.add(kStreamBytes, {{"device", device}, {"direction", "up"}},
          number_text(field(stream, "bytes_up"), Unit::kAsIs));
  out.add(kStreamBytes, {{"device", device}, {"direction", "down"}},
          number_text(field(stream, "bytes_down"), Unit::kAsIs));
  add_plain(out, kStreamSpoofedTargets, device, stream, "spoofed_targets");
  add_plain(out, kStreamPortsReclaimed, device, stream, "ports_reclaimed");
  add_plain(out, kStreamAcceptPauses, device, stream, "accept_pauses");
  add_plain(out, kStreamAcceptErrors, device, stream, "accept_errors");

  // null on the user-space path: no eBPF samples at all.
  const Json* ebpf = field(&doc, "ebpf");
  add_plain(out, kEbpfValidPorts, device, ebpf, "valid_ports");
  add_plain(out, kEbpfValidPortUpdates, device, ebpf, "valid_port_updates");
  add_plain(out, kEbpfValidPortUpdateFailures, device, ebpf, "valid_port_update_failures");
  if (const Json* hooks = field(ebpf, "hooks"); hooks != nullptr && hooks->is_object()) {
    for (const auto& [hook, verdicts] : hooks->items()) {
      if (!verdicts.is_object()) continue;
      for (const auto& [verdict, count] : verdicts.items()) {
        out.add(kEbpfPackets, {{"device", device}, {"hook", hook}, {"verdict", verdict}},
                number_text(&count, Unit::kAsIs));
      }
    }
  }
  if (const Json* nat = field(ebpf, "stream_nat"); nat != nullptr && nat->is_object()) {
    for (const auto& [outcome, count] : nat->items()) {
      out.add(kEbpfStreamNat, {{"device", device}, {"outcome", outcome}}, number_text(&count, Unit::kAsIs));
    }
  }
}

void add_peer(Exposition& out, const Json& peer, std::string_view device) {
  const Json* name = field(&peer, "name");
  if (name == nullptr || !name->is_string()) return;  // nothing to tell it apart by
  std::string_view p = string_or_empty(name);
  if (const Json* configured = field(&peer, "configured");
      configured != nullptr && configured->is_boolean()) {
    out.add(kPeerInfo,
            {{"device", device},
             {"peer", p},
             {"configured", configured->get<bool>() ? "true" : "false"},
             {"psk", string_or_empty(field(&peer, "psk"))}},
            kOne);
  }
  // "session" present and null: no session (up 0); absent: not known, no sample.
  auto session_it = peer.find("session");
  if (session_it == peer.end()) return;
  const Json* session = session_it->is_object() ? &*session_it : nullptr;
  if (session == nullptr && !session_it->is_null()) return;
  out.add(kPeerUp, {{"device", device}, {"peer", p}}, session != nullptr ? "1" : "0");
  if (session == nullptr) return;

  auto add = [&](Family family, std::string_view key, Unit unit) {
    out.add(family, {{"device", device}, {"peer", p}}, number_text(field(session, key), unit));
  };
  add(kPeerSessionAge, "established_ms_ago", Unit::kMilliseconds);
  add(kPeerLastReceivedAge, "last_received_ms_ago", Unit::kMilliseconds);
  add(kPeerDelayAllowance, "delay_allowance", Unit::kAsIs);
  add(kPeerClockOffset, "clock_offset_ms", Unit::kMilliseconds);
  add(kPeerOneWayDelay, "one_way_delay_ms", Unit::kMilliseconds);
  add(kPeerRtt, "rtt_ms", Unit::kMilliseconds);
  add(kPeerReceivePackets, "rx_packets", Unit::kAsIs);
  add(kPeerTransmitPackets, "tx_packets", Unit::kAsIs);
  add(kPeerReceiveBytes, "rx_bytes", Unit::kAsIs);
  add(kPeerTransmitBytes, "tx_bytes", Unit::kAsIs);
  add(kPeerRejected, "rejected", Unit::kAsIs);
  out.add(kPeerHeartbeats, {{"device", device}, {"peer", p}, {"direction", "sent"}},
          number_text(field(session, "heartbeats_sent"), Unit::kAsIs));
  out.add(kPeerHeartbeats, {{"device", device}, {"peer", p}, {"direction", "received"}},
          number_text(field(session, "heartbeats_received"), Unit::kAsIs));
  add(kPeerConnections, "connections", Unit::kAsIs);
  add(kPeerRetransmissions, "retransmissions", Unit::kAsIs);
  const Json* rekey = field(session, "rekey");
  out.add(kPeerRekeys, {{"device", device}, {"peer", p}},
          number_text(field(rekey, "rekeys"), Unit::kAsIs));
  out.add(kPeerKeyAge, {{"device", device}, {"peer", p}},
          number_text(field(rekey, "key_age_ms"), Unit::kMilliseconds));
}

}  // namespace

std::string render_prometheus(std::span<const nlohmann::json> tunnels) {
  Exposition out;
  for (const Json& doc : tunnels) {
    if (!doc.is_object()) continue;
    std::string_view device = string_or_empty(field(&doc, "device"));
    add_tunnel(out, doc, device);
    if (const Json* peers = field(&doc, "peers"); peers != nullptr && peers->is_array()) {
      for (const Json& peer : *peers) add_peer(out, peer, device);
    }
  }
  return out.text();
}

}  // namespace buckwild::daemon

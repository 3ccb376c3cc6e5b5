#include "daemon/snmp/mib_view.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/common/socket_address.h"
#include "daemon/snmp/mib_oids.h"

namespace buckwild::daemon::snmp {
namespace {

using nlohmann::json;

// DisplayString objects are at most 255 octets (the MIB's SIZE).
constexpr std::size_t kMaxDisplayString = 255;

// doc[key] when doc is an object that has it, else null.
const json& field(const json& doc, std::string_view key) {
  static const json kNull;
  if (!doc.is_object()) return kNull;
  auto it = doc.find(key);
  return it == doc.end() ? kNull : *it;
}

std::uint64_t u64(const json& v) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer()) return static_cast<std::uint64_t>(std::max<std::int64_t>(0, v.get<std::int64_t>()));
  if (v.is_number_float()) {
    const double d = v.get<double>();
    return d > 0 && d < 1.8e19 ? static_cast<std::uint64_t>(d) : 0;
  }
  return 0;
}

std::int64_t i64(const json& v) {
  if (v.is_number_unsigned()) {
    return static_cast<std::int64_t>(std::min<std::uint64_t>(v.get<std::uint64_t>(), std::numeric_limits<std::int64_t>::max()));
  }
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    return std::isfinite(d) && std::fabs(d) < 9e18 ? static_cast<std::int64_t>(d) : 0;
  }
  return 0;
}

std::uint32_t clamp32(std::uint64_t v) {
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(v, std::numeric_limits<std::uint32_t>::max()));
}

std::int32_t clamp_i32(std::int64_t v) {
  return static_cast<std::int32_t>(std::clamp<std::int64_t>(v, std::numeric_limits<std::int32_t>::min(),
                                                            std::numeric_limits<std::int32_t>::max()));
}

std::string text(const json& v) {
  std::string s = v.is_string() ? v.get<std::string>() : std::string();
  if (s.size() > kMaxDisplayString) s.resize(kMaxDisplayString);
  return s;
}

// TimeTicks from milliseconds.
TimeTicks ticks(const json& ms) {
  return TimeTicks{clamp32(u64(ms) / 10)};
}

Oid root() {
  return Oid(std::begin(kBuckwildEnterpriseOid), std::end(kBuckwildEnterpriseOid));
}

}  // namespace

Oid scalar_oid(std::uint32_t group, std::uint32_t item) {
  Oid oid = root();
  oid.insert(oid.end(), {kObjects, group, item, 0});
  return oid;
}

Oid peer_cell_oid(std::uint32_t column, std::string_view name) {
  Oid oid = root();
  oid.insert(oid.end(), {kObjects, kPeers, kPeerTable, kPeerEntry, column,
                         static_cast<std::uint32_t>(name.size())});
  for (char c : name) oid.push_back(static_cast<unsigned char>(c));
  return oid;
}

class MibViewBuilder {
 public:
  explicit MibViewBuilder(MibView& view) : view_(view) {}

  void scalar(std::uint32_t group, std::uint32_t item, MibValue value) {
    view_.values_.emplace(scalar_oid(group, item), std::move(value));
  }
  // Counter64 scalars ITEM = first.. from `names`, read from `section`.
  void counters(std::uint32_t group, const json& section, std::initializer_list<std::string_view> names,
                std::uint32_t first = 1) {
    std::uint32_t item = first;
    for (std::string_view name : names) scalar(group, item++, Counter64{u64(field(section, name))});
  }
  void cell(PeerColumn column, std::string_view name, MibValue value) {
    view_.values_.emplace(peer_cell_oid(static_cast<std::uint32_t>(column), name), std::move(value));
  }

  void peer(const json& p) {
    const json& name_field = field(p, "name");
    if (!name_field.is_string()) return;
    const std::string name = name_field.get<std::string>();
    // bwPeerName is SIZE (1..64): a longer name has no row.
    if (name.empty() || name.size() > kMaxPeerNameLength) return;
    if (view_.values_.contains(peer_cell_oid(static_cast<std::uint32_t>(PeerColumn::kConfigured), name))) {
      return;  // a name seen already (the first row stands)
    }
    const json& s = field(p, "session");
    const bool up = s.is_object();
    cell(PeerColumn::kConfigured, name, Integer32{field(p, "configured") == true ? 1 : 2});
    cell(PeerColumn::kState, name, Integer32{up ? 2 : 1});
    cell(PeerColumn::kAdminState, name, Integer32{field(p, "admin_state") == "down" ? 2 : 1});
    cell(PeerColumn::kSessionId, name, OctetString{text(field(s, "id")).substr(0, 8)});
    std::int32_t endpoint_type = 0;  // InetAddressType unknown(0)
    std::string endpoint;
    std::uint32_t endpoint_port = 0;
    if (const json& e = field(s, "endpoint"); e.is_string()) {
      if (auto at = SocketAddress::parse(e.get<std::string>(), 0)) {
        endpoint_type = at->ip.is_v4() ? 1 : 2;  // ipv4(1), ipv6(2)
        const auto bytes = at->ip.bytes();
        endpoint.assign(bytes.begin(), bytes.end());
        endpoint_port = at->port;
      }
    }
    cell(PeerColumn::kEndpointType, name, Integer32{endpoint_type});
    cell(PeerColumn::kEndpoint, name, OctetString{std::move(endpoint)});
    cell(PeerColumn::kEndpointPort, name, Gauge32{endpoint_port});
    cell(PeerColumn::kSendPort, name, Gauge32{clamp32(u64(field(s, "send_port")))});
    std::string ports;
    if (const json& l = field(s, "listen_ports"); l.is_array()) {
      for (const json& port : l) {
        // Appended, not operator+: g++ 12 at -O3 reports a false -Wrestrict.
        const std::string number = std::to_string(u64(port));
        const std::size_t comma = ports.empty() ? 0 : 1;
        if (ports.size() + comma + number.size() > kMaxDisplayString) break;
        if (comma != 0) ports.push_back(',');
        ports.append(number);
      }
    }
    cell(PeerColumn::kListenPorts, name, OctetString{std::move(ports)});
    cell(PeerColumn::kSessionUptime, name, ticks(field(s, "established_ms_ago")));
    cell(PeerColumn::kClockOffset, name, Integer32{clamp_i32(i64(field(s, "clock_offset_ms")))});
    cell(PeerColumn::kOneWayDelay, name, Integer32{clamp_i32(i64(field(s, "one_way_delay_ms")))});
    // rtt_ms is fractional; the MIB has microseconds.
    double rtt_us = 0;
    if (const json& r = field(s, "rtt_ms"); r.is_number()) rtt_us = r.get<double>() * 1000.0;
    cell(PeerColumn::kRtt, name,
         Gauge32{std::isfinite(rtt_us) && rtt_us > 0 ? clamp32(static_cast<std::uint64_t>(std::min(rtt_us, 4.2e9))) : 0});
    cell(PeerColumn::kRxOctets, name, Counter64{u64(field(s, "rx_bytes"))});
    cell(PeerColumn::kTxOctets, name, Counter64{u64(field(s, "tx_bytes"))});
    cell(PeerColumn::kRxPackets, name, Counter64{u64(field(s, "rx_packets"))});
    cell(PeerColumn::kTxPackets, name, Counter64{u64(field(s, "tx_packets"))});
    cell(PeerColumn::kRejected, name, Counter64{u64(field(s, "rejected"))});
    cell(PeerColumn::kRetransmits, name, Counter64{u64(field(s, "retransmissions"))});
    cell(PeerColumn::kConnections, name, Gauge32{clamp32(u64(field(s, "connections")))});
  }

 private:
  MibView& view_;
};

MibView MibView::from_status(const json& status) {
  MibView view;
  MibViewBuilder b(view);

  // bwDaemon
  b.scalar(kDaemon, 1, OctetString{text(field(status, "version")).substr(0, 64)});
  b.scalar(kDaemon, 2, Gauge32{clamp32(u64(field(status, "protocol_version")))});
  b.scalar(kDaemon, 3, OctetString{text(field(status, "device"))});
  b.scalar(kDaemon, 4, ticks(field(status, "uptime_ms")));
  const json& path = field(status, "receive_path");
  const bool ebpf = field(path, "kind") == "ebpf";
  b.scalar(kDaemon, 5, Integer32{ebpf ? 1 : 2});
  b.scalar(kDaemon, 6, OctetString{text(field(path, ebpf ? "detail" : "why"))});
  const json& reloads = field(status, "reloads");
  b.scalar(kDaemon, 7, Counter64{u64(field(reloads, "applied"))});
  b.scalar(kDaemon, 8, Counter64{u64(field(reloads, "refused"))});

  // bwTraffic
  const json& counters = field(status, "counters");
  b.scalar(kTraffic, 1, Gauge32{clamp32(u64(field(counters, "sessions")))});
  b.scalar(kTraffic, 2, Counter64{u64(field(counters, "sessions_established"))});
  b.scalar(kTraffic, 3, Counter64{u64(field(counters, "sessions_lost"))});
  b.scalar(kTraffic, 4, Counter64{u64(field(counters, "tun_packets_in"))});
  b.scalar(kTraffic, 5, Counter64{u64(field(counters, "tun_packets_out"))});
  b.scalar(kTraffic, 6, Counter64{u64(field(counters, "datagrams_sent"))});
  b.scalar(kTraffic, 7, Counter64{u64(field(counters, "datagrams_received"))});

  b.counters(kDrops, field(status, "drops"),
             {"no_route", "not_ip", "no_session", "rejected", "spoofed_source", "unsupported_type",
              "truncated", "send_errors", "tun_read_errors", "tun_write_errors", "pool_exhausted",
              "audit_errors", "hop_port_bind_failures"});
  b.counters(kDiscovery, field(status, "discovery"),
             {"responses", "sessions", "malformed", "stale", "rate_limited", "overloaded",
              "no_shared_psk", "no_common_features", "bad_cookie", "bad_proof", "replayed"});

  // bwFilter: a packet is dropped by at most one program, so drops add up
  // over the hooks; it passes several, so passes are the entry program's
  // (xdp or tc: one of the two is attached).
  const json& e = field(status, "ebpf");
  std::uint64_t passed = 0;
  std::uint64_t bad_port = 0;
  std::uint64_t malformed = 0;
  std::uint64_t rate_limited = 0;
  std::uint64_t discovery = 0;
  if (const json& hooks = field(e, "hooks"); hooks.is_object()) {
    for (const auto& [hook, verdicts] : hooks.items()) {
      const bool entry = hook == "xdp" || hook == "tc";
      if (entry) {
        for (std::string_view k : {"pass", "pass_discovery", "pass_unparsed", "pass_foreign", "pass_fragment"}) {
          passed += u64(field(verdicts, k));
        }
      }
      bad_port += u64(field(verdicts, "drop_bad_port"));
      for (std::string_view k : {"drop_bad_version", "drop_unknown_type", "drop_bad_header",
                                 "drop_truncated", "drop_bad_length"}) {
        malformed += u64(field(verdicts, k));
      }
      rate_limited += u64(field(verdicts, "drop_rate_limited"));
      discovery += u64(field(verdicts, "drop_discovery_rate")) + u64(field(verdicts, "drop_discovery_total"));
    }
  }
  b.scalar(kFilter, 1, Gauge32{clamp32(u64(field(e, "valid_ports")))});
  b.scalar(kFilter, 2, Counter64{passed});
  b.scalar(kFilter, 3, Counter64{bad_port});
  b.scalar(kFilter, 4, Counter64{malformed});
  b.scalar(kFilter, 5, Counter64{rate_limited});
  b.scalar(kFilter, 6, Counter64{discovery});

  // bwOffload: the TUN's and the UDP sockets' offloads.
  b.counters(kOffload, field(status, "tun_offload"),
             {"gso_reads", "gso_segments", "checksums_completed", "refused", "coalesced_writes",
              "coalesced_segments", "passed_through", "passed_through_segments"});
  const json& udp = field(status, "udp_offload");
  b.scalar(kOffload, 9, OctetString{text(field(udp, "gso"))});
  b.scalar(kOffload, 10, OctetString{text(field(udp, "gro"))});
  b.counters(kOffload, udp,
             {"gso_sends", "gso_datagrams", "gso_refused", "gro_reads", "gro_datagrams", "gro_malformed",
              "batched_sends", "batched_datagrams"},
             11);

  if (const json& peers = field(status, "peers"); peers.is_array()) {
    for (const json& p : peers) b.peer(p);
  }

  // bwControl: the writable settings' values in force.
  const json& settings = field(status, "settings");
  const std::string level = text(field(settings, "log_level"));
  std::int32_t level_value = 0;
  for (std::size_t i = 0; i < kLogLevelNames.size(); ++i) {
    if (kLogLevelNames[i] == level) level_value = static_cast<std::int32_t>(i + 1);
  }
  if (level_value != 0) b.scalar(kControl, kLogLevelItem, Integer32{level_value});
  b.scalar(kControl, kDiscoveryRateLimitItem,
           Gauge32{clamp32(u64(field(settings, "discovery_work_per_second")))});
  return view;
}

const MibValue* MibView::get(std::span<const std::uint32_t> oid) const {
  auto it = values_.find(Oid(oid.begin(), oid.end()));
  return it == values_.end() ? nullptr : &it->second;
}

const std::pair<const Oid, MibValue>* MibView::next(std::span<const std::uint32_t> oid) const {
  auto it = values_.upper_bound(Oid(oid.begin(), oid.end()));
  return it == values_.end() ? nullptr : &*it;
}

}  // namespace buckwild::daemon::snmp

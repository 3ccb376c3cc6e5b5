#include "daemon/config/config_diff.h"

#include <algorithm>
#include <functional>
#include <string_view>

namespace buckwild::daemon {
namespace {

// One scalar key: its name, whether a running daemon can take a new value,
// and whether two configurations agree on it.
struct KeyDiff {
  std::string_view name;
  bool changeable;
  std::function<bool(const Config&, const Config&)> same;
};

template <auto Section, auto Field>
KeyDiff key(std::string_view name, bool changeable) {
  return {name, changeable,
          [](const Config& a, const Config& b) { return (a.*Section).*Field == (b.*Section).*Field; }};
}

constexpr bool kFixed = false;
constexpr bool kLive = true;

// Every scalar key of the single-instance sections. The keys config_keys.cc
// refuses ("not in this version") never reach a Config and are not here.
const std::vector<KeyDiff>& scalar_keys() {
  static const std::vector<KeyDiff> keys = {
      key<&Config::network, &NetworkConfig::interface>("network.interface", kFixed),
      key<&Config::network, &NetworkConfig::listen_address>("network.listen_address", kFixed),
      key<&Config::network, &NetworkConfig::discovery_port>("network.discovery_port", kFixed),
      key<&Config::network, &NetworkConfig::virtual_device>("network.virtual_device", kFixed),
      key<&Config::network, &NetworkConfig::tun_offload>("network.tun_offload", kFixed),
      key<&Config::network, &NetworkConfig::udp_offload>("network.udp_offload", kFixed),
      key<&Config::network, &NetworkConfig::workers>("network.workers", kFixed),
      key<&Config::network, &NetworkConfig::virtual_address>("network.virtual_address", kFixed),
      key<&Config::network, &NetworkConfig::virtual_address6>("network.virtual_address6", kFixed),
      key<&Config::network, &NetworkConfig::mtu>("network.mtu", kFixed),
      key<&Config::network, &NetworkConfig::ebpf>("network.ebpf", kFixed),
      key<&Config::network, &NetworkConfig::ebpf_attach>("network.ebpf_attach", kFixed),
      key<&Config::network, &NetworkConfig::ebpf_allow_fragments>("network.ebpf_allow_fragments", kFixed),
      key<&Config::protocol, &ProtocolConfig::hop_interval_ms>("protocol.hop_interval_ms", kFixed),
      key<&Config::protocol, &ProtocolConfig::heartbeat_interval_ms>("protocol.heartbeat_interval_ms", kFixed),
      key<&Config::protocol, &ProtocolConfig::heartbeat_timeout_ms>("protocol.heartbeat_timeout_ms", kFixed),
      key<&Config::protocol, &ProtocolConfig::path_keepalive>("protocol.path_keepalive", kFixed),
      key<&Config::protocol, &ProtocolConfig::delay_allowance>("protocol.delay_allowance", kFixed),
      key<&Config::protocol, &ProtocolConfig::tcp_mode>("protocol.tcp_mode", kFixed),
      key<&Config::protocol, &ProtocolConfig::congestion_control>("protocol.congestion_control", kFixed),
      key<&Config::protocol, &ProtocolConfig::max_window_mb>("protocol.max_window_mb", kFixed),
      key<&Config::security, &SecurityConfig::max_connections>("security.max_connections", kLive),
      key<&Config::security, &SecurityConfig::max_connections_per_source>(
          "security.max_connections_per_source", kLive),
      key<&Config::security, &SecurityConfig::stream_memory_mb>("security.stream_memory_mb", kLive),
      key<&Config::security, &SecurityConfig::rate_limit_packets_per_second>(
          "security.rate_limit_packets_per_second", kLive),
      key<&Config::security, &SecurityConfig::discovery_work_per_second>(
          "security.discovery_work_per_second", kLive),
      key<&Config::security, &SecurityConfig::peer_rate_limit_packets_per_second>(
          "security.peer_rate_limit_packets_per_second", kLive),
      key<&Config::security, &SecurityConfig::entropy_requirement_bits>(
          "security.entropy_requirement_bits", kLive),
      key<&Config::security, &SecurityConfig::attack_filter_drops_per_second>(
          "security.attack_filter_drops_per_second", kLive),
      key<&Config::security, &SecurityConfig::attack_discovery_refusals_per_second>(
          "security.attack_discovery_refusals_per_second", kLive),
      key<&Config::crypto, &CryptoConfig::protection>("crypto.protection", kFixed),
      key<&Config::crypto, &CryptoConfig::aead>("crypto.aead", kFixed),
      key<&Config::crypto, &CryptoConfig::forward_secrecy>("crypto.forward_secrecy", kFixed),
      key<&Config::crypto, &CryptoConfig::key_rotation_interval_hours>(
          "crypto.key_rotation_interval_hours", kFixed),
      key<&Config::logging, &LoggingConfig::level>("logging.level", kLive),
      key<&Config::logging, &LoggingConfig::format>("logging.format", kLive),
      key<&Config::logging, &LoggingConfig::syslog>("logging.syslog", kLive),
      key<&Config::logging, &LoggingConfig::syslog_facility>("logging.syslog_facility", kLive),
      key<&Config::logging, &LoggingConfig::audit_log_path>("logging.audit_log_path", kLive),
      key<&Config::control, &ControlConfig::socket>("control.socket", kFixed),
      key<&Config::control, &ControlConfig::group>("control.group", kFixed),
      key<&Config::control, &ControlConfig::reload_on_change>("control.reload_on_change", kFixed),
      key<&Config::metrics, &MetricsConfig::listen>("metrics.listen", kFixed),
      key<&Config::protocol, &ProtocolConfig::time_sync_tolerance_ms>("protocol.time_sync_tolerance_ms", kFixed),
      key<&Config::ntp, &NtpConfig::enabled>("ntp.enabled", kFixed),
      key<&Config::ntp, &NtpConfig::servers>("ntp.servers", kFixed),
      key<&Config::ntp, &NtpConfig::validation_timeout_ms>("ntp.validation_timeout_ms", kFixed),
      key<&Config::ntp, &NtpConfig::drift_threshold_ms>("ntp.drift_threshold_ms", kFixed),
      key<&Config::snmp, &SnmpConfig::enabled>("snmp.enabled", kFixed),
      key<&Config::snmp, &SnmpConfig::agentx_socket>("snmp.agentx_socket", kFixed),
      key<&Config::testing, &TestingConfig::clock_offset_ms>("testing.clock_offset_ms", kLive),
      key<&Config::testing, &TestingConfig::clock_drift_ppm>("testing.clock_drift_ppm", kFixed),
      key<&Config::testing, &TestingConfig::rekey_interval_seconds>("testing.rekey_interval_seconds",
                                                                     kFixed),
  };
  return keys;
}

template <typename T, typename Name, typename Same>
void diff_entries(const std::vector<T>& running, const std::vector<T>& next, Name name, Same same,
                  std::vector<std::string>& added, std::vector<std::string>& removed,
                  std::vector<std::string>& changed) {
  for (const T& r : running) {
    auto it = std::find_if(next.begin(), next.end(), [&](const T& n) { return name(n) == name(r); });
    if (it == next.end()) {
      removed.push_back(name(r));
    } else if (!same(r, *it)) {
      changed.push_back(name(r));
    }
  }
  for (const T& n : next) {
    auto it = std::find_if(running.begin(), running.end(), [&](const T& r) { return name(r) == name(n); });
    if (it == running.end()) added.push_back(name(n));
  }
}

}  // namespace

bool same_peer(const PeerConfig& a, const PeerConfig& b) {
  return a.name == b.name && a.endpoint == b.endpoint && a.virtual_address == b.virtual_address &&
         a.routes == b.routes && a.psk == b.psk && a.initiate == b.initiate;
}

bool same_psk_key(const PskConfig& a, const PskConfig& b) {
  return a.key.size() == b.key.size() && a.key.equals(b.key.view());
}

bool same_psk(const PskConfig& a, const PskConfig& b) {
  return a.id == b.id && a.allowed_prefixes == b.allowed_prefixes && same_psk_key(a, b);
}

ConfigDiff diff_config(const Config& running, const Config& next) {
  ConfigDiff d;
  for (const KeyDiff& k : scalar_keys()) {
    if (k.same(running, next)) continue;
    (k.changeable ? d.settings : d.fixed).emplace_back(k.name);
  }
  diff_entries(
      running.psks, next.psks, [](const PskConfig& p) { return p.id; }, same_psk, d.psks_added,
      d.psks_removed, d.psks_changed);
  diff_entries(
      running.peers, next.peers, [](const PeerConfig& p) { return p.name; }, same_peer,
      d.peers_added, d.peers_removed, d.peers_changed);
  return d;
}

std::vector<std::string> fixed_key_problems(const ConfigDiff& diff) {
  std::vector<std::string> out;
  for (const std::string& k : diff.fixed) {
    out.push_back(k + " cannot change while running; restart buckwild to change it");
  }
  return out;
}

}  // namespace buckwild::daemon

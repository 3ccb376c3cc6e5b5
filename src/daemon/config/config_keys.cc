#include "daemon/config/config_keys.h"

#include <algorithm>
#include <array>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "daemon/config/ntp_servers.h"

namespace buckwild::daemon {
namespace {

using Scalar = ConfigScalar;
using Kind = ConfigKind;
using KeySpec = ConfigKey;

std::string range_problem(std::int64_t value, std::int64_t lo, std::int64_t hi) {
  return "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
         std::to_string(value);
}

template <auto Section, auto Field, std::int64_t Lo, std::int64_t Hi>
std::string set_integer(Config& c, const Scalar& v) {
  std::int64_t n = std::get<std::int64_t>(v);
  if (n < Lo || n > Hi) return range_problem(n, Lo, Hi);
  auto& field = (c.*Section).*Field;
  field = static_cast<std::remove_reference_t<decltype(field)>>(n);
  return {};
}

template <auto Section, auto Field>
std::string set_bool(Config& c, const Scalar& v) {
  (c.*Section).*Field = std::get<bool>(v);
  return {};
}

template <typename E, std::size_t N>
std::string set_choice(E& out, const Scalar& v,
                       const std::array<std::pair<std::string_view, E>, N>& choices) {
  const auto& s = std::get<std::string>(v);
  for (const auto& [name, value] : choices) {
    if (s == name) {
      out = value;
      return {};
    }
  }
  std::string list;
  for (const auto& [name, value] : choices) {
    if (!list.empty()) list += ", ";
    list += in_quotes(name);
  }
  return "must be one of " + list + ", got " + in_quotes(s);
}

constexpr std::array<std::pair<std::string_view, LogLevel>, 7> kLogLevels = {{
    {"trace", LogLevel::kTrace},
    {"debug", LogLevel::kDebug},
    {"info", LogLevel::kInfo},
    {"warn", LogLevel::kWarn},
    {"error", LogLevel::kError},
    {"critical", LogLevel::kCritical},
    {"off", LogLevel::kOff},
}};

constexpr std::array<std::pair<std::string_view, SyslogFacility>, 10> kFacilities = {{
    {"daemon", SyslogFacility::kDaemon},
    {"user", SyslogFacility::kUser},
    {"local0", SyslogFacility::kLocal0},
    {"local1", SyslogFacility::kLocal1},
    {"local2", SyslogFacility::kLocal2},
    {"local3", SyslogFacility::kLocal3},
    {"local4", SyslogFacility::kLocal4},
    {"local5", SyslogFacility::kLocal5},
    {"local6", SyslogFacility::kLocal6},
    {"local7", SyslogFacility::kLocal7},
}};

// Linux interface names: 1..15 bytes (IFNAMSIZ - 1). The virtual device is
// ours to name, so it gets a conservative alphabet; the underlay interface
// exists already and only has to be a name the kernel could have given.
std::string check_device_name(const std::string& s) {
  if (s.empty() || s.size() > 15)
    return "must be 1..15 characters, got " + std::to_string(s.size());
  for (char ch : s) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-';
    if (!ok) return "may contain only letters, digits, '_', '.' and '-', got " + in_quotes(s);
  }
  if (s == "." || s == "..") return "cannot be " + in_quotes(s);
  return {};
}

std::string check_underlay_name(const std::string& s) {
  if (s.empty()) return {};
  if (s.size() > 15) return "an interface name has at most 15 characters, got " + in_quotes(s);
  for (char ch : s) {
    if (ch == '/' || ch == ':' || static_cast<unsigned char>(ch) <= ' ' || ch == 0x7f) {
      return "is not a valid interface name: " + in_quotes(s);
    }
  }
  if (s == "." || s == "..") return "is not a valid interface name: " + in_quotes(s);
  return {};
}

std::string set_interface(Config& c, const Scalar& v) {
  const auto& s = std::get<std::string>(v);
  if (auto p = check_underlay_name(s); !p.empty()) return p;
  c.network.interface = s;
  return {};
}

std::string set_listen_address(Config& c, const Scalar& v) {
  const auto& s = std::get<std::string>(v);
  auto ip = IpAddress::parse(s);
  if (!ip) return "must be an IPv4 or IPv6 address literal, got " + in_quotes(s);
  c.network.listen_address = *ip;
  return {};
}

std::string set_virtual_device(Config& c, const Scalar& v) {
  const auto& s = std::get<std::string>(v);
  if (auto p = check_device_name(s); !p.empty()) return p;
  c.network.virtual_device = s;
  return {};
}

std::string set_virtual_address(Config& c, const Scalar& v) {
  const auto& s = std::get<std::string>(v);
  if (s.empty())
    return "must be this host's IPv4 address on the tunnel with its prefix, such as "
           "\"10.77.0.1/24\"";
  auto cidr = validate_interface_address(s, IpFamily::kV4);
  if (!cidr) return cidr.error() + " (in " + in_quotes(s) + ")";
  c.network.virtual_address = *cidr;
  return {};
}

std::string set_virtual_address6(Config& c, const Scalar& v) {
  const auto& s = std::get<std::string>(v);
  if (s.empty()) {
    c.network.virtual_address6.reset();
    return {};
  }
  auto cidr = validate_interface_address(s, IpFamily::kV6);
  if (!cidr) return cidr.error() + " (in " + in_quotes(s) + ")";
  c.network.virtual_address6 = *cidr;
  return {};
}

std::string set_mtu(Config& c, const Scalar& v) {
  std::int64_t n = std::get<std::int64_t>(v);
  if (n != 0 && (n < 576 || n > 9000)) {
    return "must be 0 (derive from the underlay) or between 576 and 9000, got " + std::to_string(n);
  }
  c.network.mtu = static_cast<std::uint32_t>(n);
  return {};
}

std::string set_hop_interval(Config& c, const Scalar& v) {
  std::int64_t n = std::get<std::int64_t>(v);
  if (n != 250) {
    return "protocol v1 hops every 250 ms and supports no other interval, got " + std::to_string(n);
  }
  c.protocol.hop_interval_ms = 250;
  return {};
}

std::string set_delay_allowance(Config& c, const Scalar& v) {
  if (const auto* s = std::get_if<std::string>(&v)) {
    if (*s == "auto") {
      c.protocol.delay_allowance.reset();
      return {};
    }
    return "must be \"auto\" or a number of windows 1..16, got " + in_quotes(*s);
  }
  std::int64_t n = std::get<std::int64_t>(v);
  if (n < 1 || n > 16)
    return "must be \"auto\" or a number of windows 1..16, got " + std::to_string(n);
  c.protocol.delay_allowance = static_cast<std::uint8_t>(n);
  return {};
}

std::string set_workers(Config& c, const Scalar& v) {
  if (const auto* s = std::get_if<std::string>(&v)) {
    if (*s == "auto") {
      c.network.workers.reset();
      return {};
    }
    return "must be \"auto\" or a number of workers 1..64, got " + in_quotes(*s);
  }
  const std::int64_t n = std::get<std::int64_t>(v);
  if (n < 1 || n > 64) return "must be \"auto\" or a number of workers 1..64, got " + std::to_string(n);
  c.network.workers = static_cast<std::uint32_t>(n);
  return {};
}

std::string set_tcp_mode(Config& c, const Scalar& v) {
  static constexpr std::array<std::pair<std::string_view, TcpMode>, 2> kModes = {{
      {"stream", TcpMode::kStream},
      {"packet", TcpMode::kPacket},
  }};
  return set_choice(c.protocol.tcp_mode, v, kModes);
}

std::string set_congestion_control(Config& c, const Scalar& v) {
  static constexpr std::array<std::pair<std::string_view, conn::CongestionAlgorithm>, 2>
      kAlgorithms = {{
          {"bbr", conn::CongestionAlgorithm::kBbr},
          {"newreno", conn::CongestionAlgorithm::kNewReno},
      }};
  return set_choice(c.protocol.congestion_control, v, kAlgorithms);
}

std::string set_ebpf_attach(Config& c, const Scalar& v) {
  static constexpr std::array<std::pair<std::string_view, EbpfAttach>, 4> kHooks = {{
      {"auto", EbpfAttach::kAuto},
      {"xdp-driver", EbpfAttach::kXdpDriver},
      {"xdp-generic", EbpfAttach::kXdpGeneric},
      {"tc-ingress", EbpfAttach::kTcIngress},
  }};
  return set_choice(c.network.ebpf_attach, v, kHooks);
}

std::string set_protection(Config& c, const Scalar& v) {
  static constexpr std::array<std::pair<std::string_view, crypto::ProtectionMode>, 2> kModes = {{
      {"aead", crypto::ProtectionMode::kAead},
      {"hmac", crypto::ProtectionMode::kHmac},
  }};
  return set_choice(c.crypto.protection, v, kModes);
}

std::string set_aead(Config& c, const Scalar& v) {
  static constexpr std::array<std::pair<std::string_view, AeadChoice>, 3> kAlgs = {{
      {"auto", AeadChoice::kAuto},
      {"chacha20-poly1305", AeadChoice::kChaCha20Poly1305},
      {"aes-256-gcm", AeadChoice::kAes256Gcm},
  }};
  return set_choice(c.crypto.aead, v, kAlgs);
}

std::string set_level(Config& c, const Scalar& v) {
  return set_choice(c.logging.level, v, kLogLevels);
}

std::string set_log_format(Config& c, const Scalar& v) {
  static constexpr std::array<std::pair<std::string_view, LogFormat>, 2> kFormats = {{
      {"text", LogFormat::kText},
      {"json", LogFormat::kJson},
  }};
  return set_choice(c.logging.format, v, kFormats);
}

std::string set_facility(Config& c, const Scalar& v) {
  return set_choice(c.logging.syslog_facility, v, kFacilities);
}

std::string set_audit_log_path(Config& c, const Scalar& v) {
  const auto& s = std::get<std::string>(v);
  if (!s.empty() && s.front() != '/')
    return "must be \"\" or an absolute path, got " + in_quotes(s);
  if (s.find('\0') != std::string::npos) return "must not contain NUL characters";
  c.logging.audit_log_path = s;
  return {};
}

std::string set_control_socket(Config& c, const Scalar& v) {
  const auto& s = std::get<std::string>(v);
  if (s.empty() || s.front() != '/') return "must be an absolute path, got " + in_quotes(s);
  if (s.find('\0') != std::string::npos) return "must not contain NUL characters";
  // sockaddr_un::sun_path holds 108 bytes with the terminating NUL.
  if (s.size() > 107) return "must be at most 107 bytes (a Unix socket path), got " + std::to_string(s.size());
  if (s.back() == '/') return "must name a file, not a directory, got " + in_quotes(s);
  c.control.socket = s;
  return {};
}

// A POSIX portable user/group name (whether it exists is checked at start).
std::string set_control_group(Config& c, const Scalar& v) {
  const auto& s = std::get<std::string>(v);
  const bool ok = s.size() <= 32 && (s.empty() || s.front() != '-') &&
                  std::all_of(s.begin(), s.end(), [](char ch) {
                    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                           (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
                  });
  if (!ok) return "must be a group name (letters, digits, '_', '.', '-'; at most 32), got " + in_quotes(s);
  c.control.group = s;
  return {};
}

std::string set_metrics_listen(Config& c, const Scalar& v) {
  const auto& s = std::get<std::string>(v);
  if (s.empty()) {
    c.metrics.listen.reset();
    return {};
  }
  auto at = SocketAddress::parse(s, 0);
  if (!at || at->port == 0) {
    return "must be \"\" (no endpoint) or ADDRESS:PORT such as \"127.0.0.1:9586\" or "
           "\"[::1]:9586\", got " + in_quotes(s);
  }
  c.metrics.listen = *at;
  return {};
}

// The master agent's AgentX socket: a Unix socket path (net-snmp's default
// /var/agentx/master, or snmpd.conf's agentXSocket).
std::string set_agentx_socket(Config& c, const Scalar& v) {
  const auto& s = std::get<std::string>(v);
  if (s.empty() || s.front() != '/') return "must be an absolute path, got " + in_quotes(s);
  if (s.size() > 107) {
    return "must be at most 107 bytes (a Unix socket path), got " + std::to_string(s.size());
  }
  if (s.back() == '/') return "must name a socket, not a directory, got " + in_quotes(s);
  c.snmp.agentx_socket = s;
  return {};
}

// Keys of the design document that this version does not implement: refused
// with what governs the behaviour instead, so an operator's old or copied file
// says why rather than seeming to work.
template <const char* kWhy>
std::string not_in_this_version(Config&, const Scalar&) {
  return std::string("not in this version of buckwild: ") + kWhy + "; remove the key";
}
constexpr char kNoPacketLifetime[] =
    "a packet is accepted while its timestamp is within 30 s of this daemon's clock "
    "(docs/protocol.md, packet protection)";
constexpr char kNoReplayWindow[] =
    "each session refuses a replayed packet by its number (a 4096-packet window) and a stale "
    "one by its timestamp (30 s)";

// Keys of the design document with one meaningful value in protocol v1:
// accepted with it, refused with any other.
template <const char* kOnly, const char* kWhat>
std::string only_value(Config&, const Scalar& v) {
  const auto& s = std::get<std::string>(v);
  if (s == kOnly) return {};
  return std::string("must be ") + in_quotes(kOnly) + " (" + kWhat + "), got " + in_quotes(s);
}
constexpr char kSha256[] = "sha256";
constexpr char kSha256Why[] =
    "protocol v1 uses HMAC-SHA256 for the port schedule, discovery and HMAC-only packets";
constexpr char kHkdf[] = "hkdf-sha256";
constexpr char kHkdfWhy[] = "protocol v1 derives every key with HKDF-SHA256";

std::string set_entropy_requirement(Config& c, const Scalar& v) {
  const std::int64_t n = std::get<std::int64_t>(v);
  if (n < 128 || n > 512 || n % 8 != 0) {
    return "must be a multiple of 8 between 128 and 512 (a PSK is 16..64 bytes), got " +
           std::to_string(n);
  }
  c.security.entropy_requirement_bits = static_cast<std::uint32_t>(n);
  return {};
}

std::string set_ntp_servers(Config& c, const Scalar& v) {
  return parse_ntp_servers(std::get<std::vector<std::string>>(v), c.ntp.servers);
}

constexpr std::array kNetworkKeys = {
    KeySpec{"interface", Kind::kString, set_interface},
    KeySpec{"listen_address", Kind::kString, set_listen_address},
    KeySpec{"discovery_port", Kind::kInteger,
            set_integer<&Config::network, &NetworkConfig::discovery_port, 1, 65535>},
    KeySpec{"virtual_device", Kind::kString, set_virtual_device},
    KeySpec{"virtual_address", Kind::kString, set_virtual_address},
    KeySpec{"virtual_address6", Kind::kString, set_virtual_address6},
    KeySpec{"mtu", Kind::kInteger, set_mtu},
    KeySpec{"ebpf", Kind::kBool, set_bool<&Config::network, &NetworkConfig::ebpf>},
    KeySpec{"ebpf_attach", Kind::kString, set_ebpf_attach},
    KeySpec{"ebpf_allow_fragments", Kind::kBool,
            set_bool<&Config::network, &NetworkConfig::ebpf_allow_fragments>},
    KeySpec{"tun_offload", Kind::kBool, set_bool<&Config::network, &NetworkConfig::tun_offload>},
    KeySpec{"udp_offload", Kind::kBool, set_bool<&Config::network, &NetworkConfig::udp_offload>},
    KeySpec{"workers", Kind::kAutoOrInteger, set_workers},
};

constexpr std::array kProtocolKeys = {
    KeySpec{"hop_interval_ms", Kind::kInteger, set_hop_interval},
    KeySpec{"time_sync_tolerance_ms", Kind::kInteger,
            set_integer<&Config::protocol, &ProtocolConfig::time_sync_tolerance_ms, 5, 1000>},
    KeySpec{
        "heartbeat_interval_ms", Kind::kInteger,
        set_integer<&Config::protocol, &ProtocolConfig::heartbeat_interval_ms, 1000, 3'600'000>},
    KeySpec{
        "heartbeat_timeout_ms", Kind::kInteger,
        set_integer<&Config::protocol, &ProtocolConfig::heartbeat_timeout_ms, 2000, 10'800'000>},
    KeySpec{"path_keepalive", Kind::kBool,
            set_bool<&Config::protocol, &ProtocolConfig::path_keepalive>},
    KeySpec{"max_packet_lifetime_ms", Kind::kInteger, not_in_this_version<kNoPacketLifetime>},
    KeySpec{"delay_allowance", Kind::kAutoOrInteger, set_delay_allowance},
    KeySpec{"tcp_mode", Kind::kString, set_tcp_mode},
    KeySpec{"congestion_control", Kind::kString, set_congestion_control},
    KeySpec{"max_window_mb", Kind::kInteger,
            set_integer<&Config::protocol, &ProtocolConfig::max_window_mb, 1, 512>},
};

constexpr std::array kSecurityKeys = {
    KeySpec{"max_connections", Kind::kInteger,
            set_integer<&Config::security, &SecurityConfig::max_connections, 1, 65536>},
    KeySpec{"max_connections_per_source", Kind::kInteger,
            set_integer<&Config::security, &SecurityConfig::max_connections_per_source, 1, 65536>},
    KeySpec{"stream_memory_mb", Kind::kInteger,
            set_integer<&Config::security, &SecurityConfig::stream_memory_mb, 16, 1'048'576>},
    KeySpec{"rate_limit_packets_per_second", Kind::kInteger,
            set_integer<&Config::security, &SecurityConfig::rate_limit_packets_per_second, 1,
                        10'000'000>},
    KeySpec{
        "discovery_work_per_second", Kind::kInteger,
        set_integer<&Config::security, &SecurityConfig::discovery_work_per_second, 1, 1'000'000>},
    KeySpec{"entropy_requirement_bits", Kind::kInteger, set_entropy_requirement},
    KeySpec{"peer_rate_limit_packets_per_second", Kind::kInteger,
            set_integer<&Config::security, &SecurityConfig::peer_rate_limit_packets_per_second, 0,
                        100'000'000>},
    KeySpec{"attack_filter_drops_per_second", Kind::kInteger,
            set_integer<&Config::security, &SecurityConfig::attack_filter_drops_per_second, 0,
                        100'000'000>},
    KeySpec{"attack_discovery_refusals_per_second", Kind::kInteger,
            set_integer<&Config::security, &SecurityConfig::attack_discovery_refusals_per_second, 0,
                        100'000'000>},
    KeySpec{"replay_window_ms", Kind::kInteger, not_in_this_version<kNoReplayWindow>},
};

constexpr std::array kCryptoKeys = {
    KeySpec{"protection", Kind::kString, set_protection},
    KeySpec{"aead", Kind::kString, set_aead},
    KeySpec{"forward_secrecy", Kind::kBool,
            set_bool<&Config::crypto, &CryptoConfig::forward_secrecy>},
    KeySpec{"key_rotation_interval_hours", Kind::kInteger,
            set_integer<&Config::crypto, &CryptoConfig::key_rotation_interval_hours, 0, 8760>},
    KeySpec{"hmac_algorithm", Kind::kString, only_value<kSha256, kSha256Why>},
    KeySpec{"key_derivation_algorithm", Kind::kString, only_value<kHkdf, kHkdfWhy>},
};

constexpr std::array kLoggingKeys = {
    KeySpec{"level", Kind::kString, set_level},
    KeySpec{"format", Kind::kString, set_log_format},
    KeySpec{"syslog", Kind::kBool, set_bool<&Config::logging, &LoggingConfig::syslog>},
    KeySpec{"syslog_facility", Kind::kString, set_facility},
    KeySpec{"audit_log_path", Kind::kString, set_audit_log_path},
};

constexpr std::array kControlKeys = {
    KeySpec{"socket", Kind::kString, set_control_socket},
    KeySpec{"group", Kind::kString, set_control_group},
    KeySpec{"reload_on_change", Kind::kBool,
            set_bool<&Config::control, &ControlConfig::reload_on_change>},
};

constexpr std::array kMetricsKeys = {
    KeySpec{"listen", Kind::kString, set_metrics_listen},
};

constexpr std::array kSnmpKeys = {
    KeySpec{"enabled", Kind::kBool, set_bool<&Config::snmp, &SnmpConfig::enabled>},
    KeySpec{"agentx_socket", Kind::kString, set_agentx_socket},
};

constexpr std::array kNtpKeys = {
    KeySpec{"enabled", Kind::kBool, set_bool<&Config::ntp, &NtpConfig::enabled>},
    KeySpec{"servers", Kind::kStringList, set_ntp_servers},
    KeySpec{"validation_timeout_ms", Kind::kInteger,
            set_integer<&Config::ntp, &NtpConfig::validation_timeout_ms, 100, 60'000>},
    KeySpec{"drift_threshold_ms", Kind::kInteger,
            set_integer<&Config::ntp, &NtpConfig::drift_threshold_ms, 1, 86'400'000>},
};

constexpr std::array kTestingKeys = {
    KeySpec{
        "clock_offset_ms", Kind::kInteger,
        set_integer<&Config::testing, &TestingConfig::clock_offset_ms, -86'400'000, 86'400'000>},
    KeySpec{"clock_drift_ppm", Kind::kInteger,
            set_integer<&Config::testing, &TestingConfig::clock_drift_ppm, -100'000, 100'000>},
    KeySpec{"rekey_interval_seconds", Kind::kInteger,
            set_integer<&Config::testing, &TestingConfig::rekey_interval_seconds, 0, 86'400>},
};

constexpr std::array<ConfigSection, 10> kSections = {{
    {"network", kNetworkKeys},
    {"protocol", kProtocolKeys},
    {"security", kSecurityKeys},
    {"crypto", kCryptoKeys},
    {"logging", kLoggingKeys},
    {"control", kControlKeys},
    {"metrics", kMetricsKeys},
    {"snmp", kSnmpKeys},
    {"ntp", kNtpKeys},
    {"testing", kTestingKeys},
}};

}  // namespace

std::span<const ConfigSection> config_sections() {
  return kSections;
}

const ConfigSection* find_config_section(std::string_view name) {
  for (const auto& s : kSections) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const ConfigKey* find_config_key(const ConfigSection& section, std::string_view name) {
  for (const auto& k : section.keys) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

const char* config_kind_name(ConfigKind kind) {
  switch (kind) {
    case ConfigKind::kInteger:
      return "an integer";
    case ConfigKind::kBool:
      return "a boolean (true or false)";
    case ConfigKind::kString:
      return "a string";
    case ConfigKind::kAutoOrInteger:
      return "\"auto\" or an integer";
    case ConfigKind::kStringList:
      return "an array of strings";
  }
  return "a value";
}

const char* log_level_name(LogLevel level) {
  for (const auto& [name, value] : kLogLevels) {
    if (value == level) return name.data();
  }
  return "?";
}

const char* syslog_facility_name(SyslogFacility facility) {
  for (const auto& [name, value] : kFacilities) {
    if (value == facility) return name.data();
  }
  return "?";
}

}  // namespace buckwild::daemon

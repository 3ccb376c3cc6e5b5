// The daemon configuration: a TOML file plus BUCKWILD_<SECTION>_<KEY>
// environment overrides, checked completely before the daemon touches anything.
//
// The schema, its defaults and ranges are documented key by key in
// packaging/buckwild.toml. Loading never throws and reports every problem it
// finds, each as one line "FILE:LINE:COL: key: problem" (or "env NAME: problem"
// for an environment variable, "FILE: key: missing" when a required key is
// absent and there is no section to point at). Key paths are dotted, with
// 0-based indices for array entries: "network.mtu", "psk[1].key_file".
//
// Secrets: PSK bytes are decoded straight into crypto::SecretBytes (locked,
// zeroed on destruction). No error message contains key text. The TOML text of
// an inline `key = "..."` unavoidably passes through the parser's own heap
// strings; those copies in the parsed document are overwritten before it is
// freed. `key_file` avoids even that and is what production configs should use.
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/conn/congestion_control.h"
#include "core/crypto/aead.h"
#include "core/crypto/packet_protection.h"
#include "core/crypto/secret_bytes.h"
#include "core/common/cidr.h"
#include "core/common/ip_address.h"
#include "core/common/socket_address.h"

namespace buckwild::daemon {

enum class LogLevel : std::uint8_t { kTrace, kDebug, kInfo, kWarn, kError, kCritical, kOff };
enum class SyslogFacility : std::uint8_t {
  kDaemon,
  kUser,
  kLocal0,
  kLocal1,
  kLocal2,
  kLocal3,
  kLocal4,
  kLocal5,
  kLocal6,
  kLocal7
};
// How stderr lines look: text for a terminal, JSON lines for a log shipper
// (docs/architecture.md "The main log as JSON").
enum class LogFormat : std::uint8_t { kText, kJson };
enum class TcpMode : std::uint8_t { kStream, kPacket };

// Where the eBPF frame filter attaches on the underlay interfaces: the first
// of XDP in the driver, generic XDP and TC ingress that an interface accepts,
// or only the one named.
enum class EbpfAttach : std::uint8_t { kAuto, kXdpDriver, kXdpGeneric, kTcIngress };

struct NetworkConfig {
  std::string interface;  // "" = the interface that routes to the first peer
  IpAddress listen_address = IpAddress::any(IpFamily::kV4);
  std::uint16_t discovery_port = 1025;
  std::string virtual_device = "bw0";
  Cidr virtual_address;                  // required, IPv4 host address with its prefix
  std::optional<Cidr> virtual_address6;  // optional IPv6 host address with its prefix
  std::uint32_t mtu = 0;                 // 0 = derive from the underlay MTU
  bool ebpf = true;
  EbpfAttach ebpf_attach = EbpfAttach::kAuto;
  // IP fragments of datagrams to the hopping range or the discovery port pass
  // the eBPF frame filter (to the kernel's reassembly) instead of being dropped.
  bool ebpf_allow_fragments = false;
  // TUN offloads (IFF_VNET_HDR, TSO/USO and checksum offload), where the
  // kernel accepts them.
  bool tun_offload = true;
  // UDP offloads on the underlay: runs of equal datagrams sent with
  // UDP_SEGMENT (GSO), coalesced reads (UDP_GRO), where the kernel takes them.
  bool udp_offload = true;
  // Data-path workers: threads that each serve their share of the sessions
  // with their own TUN queue and sockets (docs/architecture.md "Workers").
  // nullopt = "auto": one per CPU the daemon may run on, up to 64. More
  // than one needs the eBPF receive path, which steers each datagram to its
  // worker; without it the daemon runs one and says why.
  std::optional<std::uint32_t> workers;
};

struct ProtocolConfig {
  std::uint32_t hop_interval_ms = 250;
  std::uint32_t heartbeat_interval_ms = 30'000;
  std::uint32_t heartbeat_timeout_ms = 180'000;  // the dead-peer timeout
  // The initiator sends a path keepalive in every hop window it has nothing
  // else to send in, so a NAT in front of it keeps a mapping the responder
  // can answer along (docs/protocol.md §11.6).
  bool path_keepalive = true;
  std::optional<std::uint8_t> delay_allowance;  // nullopt = "auto" (adaptive, 1..16)
  TcpMode tcp_mode = TcpMode::kStream;
  // A peer clock offset that moves this far from the one in use sets off a
  // re-measurement (RESYNC) before the new one is adopted.
  std::uint32_t time_sync_tolerance_ms = 50;
  // Congestion control of the transparent-TCP connections between the daemons.
  conn::CongestionAlgorithm congestion_control = conn::CongestionAlgorithm::kBbr;
  // The largest send and receive window of one transparent-TCP connection,
  // MiB: windows start at 256 KiB and grow with the path (core/conn/receiver.h).
  std::uint32_t max_window_mb = 32;
};

struct SecurityConfig {
  std::uint32_t max_connections = 4096;
  std::uint32_t max_connections_per_source = 100;
  // Transparent TCP: the MiB all connections' buffers may hold past the
  // 64 KiB each of their stream buffers may always hold (core/conn/memory_budget.h).
  std::uint32_t stream_memory_mb = 512;
  std::uint32_t rate_limit_packets_per_second = 1000;
  std::uint32_t discovery_work_per_second = 200;
  // Datagrams per second from one peer address to its valid hopping ports,
  // enforced in the kernel on the eBPF path; 0 = no limit.
  std::uint32_t peer_rate_limit_packets_per_second = 1'000'000;
  // The least strength, in bits, every PSK must have (its length: PSKs are
  // random bytes, buckwild genpsk's 256 bits).
  std::uint32_t entropy_requirement_bits = 128;
  // An attack is reported (log, audit, SNMP bwAttackDetected) when the eBPF
  // filter drops, or the discovery responder refuses, more than this many
  // datagrams per second (log/attack_watch.h); 0 = not watched.
  std::uint32_t attack_filter_drops_per_second = 1000;
  std::uint32_t attack_discovery_refusals_per_second = 100;
};

// `[crypto] aead`: one algorithm, or "auto", the faster of the two on this CPU
// by a measurement at start-up (daemon/tunnel/aead_choice.h).
enum class AeadChoice : std::uint8_t { kAuto, kChaCha20Poly1305, kAes256Gcm };

struct CryptoConfig {
  crypto::ProtectionMode protection = crypto::ProtectionMode::kAead;
  AeadChoice aead = AeadChoice::kAuto;
  bool forward_secrecy = true;
  // Each session rekeys (fresh X25519 exchange, docs/protocol.md §9.5) when its
  // key is this old; 0 = only at the AEAD's packet bound and on request.
  std::uint32_t key_rotation_interval_hours = 24;
};

struct LoggingConfig {
  LogLevel level = LogLevel::kInfo;
  LogFormat format = LogFormat::kText;
  bool syslog = true;
  SyslogFacility syslog_facility = SyslogFacility::kDaemon;
  std::string audit_log_path;  // "" = no audit log; otherwise an absolute path
};

// The control socket (docs/control.md): `buckwild status`, `reload`, `stop`.
struct ControlConfig {
  std::string socket;  // absolute path; "" in the file = /run/buckwild/<virtual_device>.sock
  std::string group;   // "" = root only (mode 0600); else this group too (0660)
  bool reload_on_change = true;  // a change to the file reloads it (inotify)
};

// The Prometheus endpoint: GET /metrics on this address; nullopt = none.
struct MetricsConfig {
  std::optional<SocketAddress> listen;
};

// The built-in NTP client (docs/architecture.md "Time").
inline constexpr std::size_t kMaxNtpServers = 8;
struct NtpServer {
  std::string host;  // a name or an address
  std::uint16_t port = 123;
  friend bool operator==(const NtpServer&, const NtpServer&) = default;
};
struct NtpConfig {
  bool enabled = false;
  std::vector<NtpServer> servers;
  // How long a request waits for its answer; at start-up, how long the daemon
  // waits for a validated time before it starts discovery on the system clock.
  std::uint32_t validation_timeout_ms = 5000;
  // The system clock and the NTP estimate differing by more than this, or the
  // estimate jumping by more, is a warning and an audit event.
  std::uint32_t drift_threshold_ms = 100;
};

// The SNMP AgentX subagent (src/daemon/snmp/): off unless enabled.
struct SnmpConfig {
  bool enabled = false;
  std::string agentx_socket = "/var/agentx/master";  // the master agent's Unix socket
};

struct TestingConfig {
  std::int64_t clock_offset_ms = 0;  // TEST AID: added to this daemon's UTC clock
  // TEST AID: this daemon's clock runs fast (positive) or slow by this many
  // parts per million from its start, as a drifting oscillator would.
  std::int64_t clock_drift_ppm = 0;
  // TEST AID: every session rekeys when its key is this many seconds old
  // (0 = off); overrides crypto.key_rotation_interval_hours.
  std::uint32_t rekey_interval_seconds = 0;
};

struct PskConfig {
  std::string id;
  crypto::SecretBytes key;             // 16..64 bytes
  std::vector<Cidr> allowed_prefixes;  // what an initiator without a [[peer]] may claim
};

struct PeerConfig {
  std::string name;
  std::optional<SocketAddress> endpoint;  // underlay address; port defaults to
                                          // network.discovery_port; nullopt = the peer
                                          // only ever initiates (then initiate = false)
  IpAddress virtual_address;
  std::vector<Cidr> routes;
  // The PskConfig::id of the one PSK this peer proves: a peer is known by its
  // credential, never by the address it sends from. "" in a file with a
  // single [[psk]] means that one (the loader writes its id here).
  std::string psk;
  bool initiate = true;
};

// A new member is copied by clone_config (config.cc) too.
struct Config {
  std::string source_path;  // the file it was loaded from
  NetworkConfig network;
  ProtocolConfig protocol;
  SecurityConfig security;
  CryptoConfig crypto;
  LoggingConfig logging;
  ControlConfig control;
  MetricsConfig metrics;
  NtpConfig ntp;
  SnmpConfig snmp;
  TestingConfig testing;
  std::vector<PskConfig> psks;
  std::vector<PeerConfig> peers;
};

// The index in config.psks of the PSK `peer` proves: the one its `psk`
// names, or the only one when it names none. nullopt: it names no PSK of
// `config`, or none while there are several.
std::optional<std::size_t> peer_psk_index(const Config& config, const PeerConfig& peer);

// Environment variables considered for overrides, by name. Tests pass their
// own; the daemon passes buckwild_environment().
using Environment = std::map<std::string, std::string, std::less<>>;

// The process environment's BUCKWILD_* variables.
Environment buckwild_environment();

// Loads and checks the configuration at `path`, then applies overrides from
// `env`: BUCKWILD_<SECTION>_<KEY> sets a scalar key of a single-instance
// section (network, protocol, security, crypto, logging, control, metrics,
// snmp, ntp, testing) and is
// parsed with that key's type (booleans: true/false/1/0). A variable whose
// SECTION is one of those but whose KEY is unknown is an error; other
// BUCKWILD_* variables are not ours and are ignored. `key_file` paths that are
// relative are resolved against the directory of `path`.
// Returns the Config, or every problem found, in file order, then environment
// problems, then cross-key problems.
std::expected<Config, std::vector<std::string>> load_config(const std::string& path,
                                                            const Environment& env);

// A copy of `config`, its PSKs copied into locked memory of their own. For a
// change of one setting at run time (Reloader::set): the copy is changed,
// checked and put in force, the original stays until then.
Config clone_config(const Config& config);

// Names for logs and messages: "info", "daemon", "stream".
const char* log_level_name(LogLevel level);
const char* syslog_facility_name(SyslogFacility facility);

}  // namespace buckwild::daemon

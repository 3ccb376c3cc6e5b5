// The eBPF receive path: loads the kernel filter (src/bpf/filter.bpf.c)
// through its libbpf skeleton, attaches it to underlay interfaces, the
// daemon's sockets and the network namespace, and keeps its maps current.
//
//   XDP / TC ingress   drop datagrams to the hopping range whose port is not
//                      valid for their source now, malformed headers and
//                      sources over their rate, before the kernel stack
//   socket filter      only well-formed Buckwild datagrams reach a socket
//   sk_lookup          datagrams for every valid (source, port) go to one socket
//
// Everything attached is detached when the EbpfPrograms is destroyed (links
// are closed, TC filters removed, socket filters taken off), so a crashed
// daemon leaves no XDP program behind either: links die with the process.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "bpf/filter_abi.h"
#include "core/wire/messages.h"
#include "core/common/cidr.h"
#include "core/common/ip_address.h"
#include "daemon/ebpf/ebpf_path.h"
#include "daemon/os/sys_error.h"
#include "daemon/os/unique_fd.h"

struct buckwild_filter;  // the generated skeleton (bpf/filter.skel.h)
struct ring_buffer;      // libbpf

namespace buckwild::daemon {

// Where the frame filter runs on one interface. By default XDP in the driver,
// else TC ingress, else generic XDP: TC ingress sees a GSO packet's segment
// size and judges its first datagram for all (a veth passes a sender's
// UDP_SEGMENT packet on whole), where generic XDP sees the same packet as one
// datagram whose length disagrees with its header, and drops it.
enum class AttachMode : std::uint8_t { kXdpDriver, kXdpGeneric, kTcIngress };
inline constexpr std::array<AttachMode, 3> kDefaultAttachOrder = {
    AttachMode::kXdpDriver, AttachMode::kTcIngress, AttachMode::kXdpGeneric};
// "xdp-driver", "xdp-generic", "tc-ingress".
std::string_view attach_mode_name(AttachMode mode);

struct InterfaceAttachment {
  std::string interface;
  int ifindex = 0;
  AttachMode mode = AttachMode::kXdpDriver;
  // Why the modes tried before `mode` failed ("xdp-driver: Operation not
  // supported"), "; "-separated; empty when the first one worked.
  std::string fallback_reason;
};

// One token bucket: a sustained rate and the burst allowed above it.
struct RateLimit {
  std::uint32_t packets_per_second = 0;  // 0 = unlimited
  std::uint32_t burst = 1;               // packets; 0 is taken as 1
};

struct BpfFilterConfig {
  // The hopping range (inclusive) and the discovery port: UDP to any other
  // port passes the frame filter untouched.
  std::uint16_t port_low = wire::kMinPort;
  std::uint16_t port_high = wire::kMaxPort;
  std::uint16_t discovery_port = wire::kDiscoveryPort;
  // Per source, datagrams to ports valid for it.
  RateLimit data_per_source{0, 1};
  // Per source and for all sources together, datagrams to the discovery port
  // that are not valid session traffic.
  RateLimit discovery_per_source{10, 20};
  RateLimit discovery_total{1000, 2000};
  // Per source, connection-0 datagrams to a port valid for another source:
  // roaming candidates (docs/protocol.md §11.6), for the daemon to
  // authenticate. A roaming peer's keepalives and path responses need ~5 a
  // second.
  RateLimit roam_per_source{32, 32};
  // Security events: all together, and at most one per source per gap.
  RateLimit events{100, 100};
  std::chrono::milliseconds event_source_gap{1000};
  // IP fragments of datagrams to the hopping range or the discovery port:
  // dropped unless this is set ([network] ebpf_allow_fragments).
  bool pass_fragments = false;
};

// The hooks and verdicts of filter_abi.h, as C++ enums with the same values.
enum class BpfHook : std::uint8_t {
  kXdp = BW_HOOK_XDP,
  kTc = BW_HOOK_TC,
  kSocket = BW_HOOK_SOCKET,
  kSkLookup = BW_HOOK_SK_LOOKUP,
};
inline constexpr std::size_t kBpfHookCount = BW_HOOK_COUNT;

enum class BpfCounter : std::uint8_t {
  kPass = BW_CTR_PASS,
  kPassDiscovery = BW_CTR_PASS_DISCOVERY,
  kNotOurs = BW_CTR_NOT_OURS,
  kPassUnparsed = BW_CTR_PASS_UNPARSED,
  kPassForeign = BW_CTR_PASS_FOREIGN,
  kPassRoam = BW_CTR_PASS_ROAM,
  kDropBadPort = BW_CTR_DROP_BAD_PORT,
  kDropBadVersion = BW_CTR_DROP_BAD_VERSION,
  kDropUnknownType = BW_CTR_DROP_UNKNOWN_TYPE,
  kDropBadHeader = BW_CTR_DROP_BAD_HEADER,
  kDropTruncated = BW_CTR_DROP_TRUNCATED,
  kDropBadLength = BW_CTR_DROP_BAD_LENGTH,
  kDropRateLimited = BW_CTR_DROP_RATE_LIMITED,
  kDropDiscoveryRate = BW_CTR_DROP_DISCOVERY_RATE,
  kDropDiscoveryTotal = BW_CTR_DROP_DISCOVERY_TOTAL,
  kDropRoamRate = BW_CTR_DROP_ROAM_RATE,
  kDropFragment = BW_CTR_DROP_FRAGMENT,
  kDropFragmentTail = BW_CTR_DROP_FRAGMENT_TAIL,
  kSteerFailed = BW_CTR_STEER_FAILED,
  kPassFragment = BW_CTR_PASS_FRAGMENT,
  kEventsSent = BW_CTR_EVENTS_SENT,
  kEventsSuppressed = BW_CTR_EVENTS_SUPPRESSED,
  kEventsLost = BW_CTR_EVENTS_LOST,
};
inline constexpr std::size_t kBpfCounterCount = BW_COUNTER_COUNT;

// "xdp", "tc", "socket", "sk_lookup".
std::string_view bpf_hook_name(BpfHook hook);
// "pass", "drop_bad_port", ... (the enum names in snake case).
std::string_view bpf_counter_name(BpfCounter counter);

// Counter values summed over CPUs, per hook.
class BpfCounters {
 public:
  std::uint64_t get(BpfHook hook, BpfCounter counter) const {
    return values_[BW_COUNTER_INDEX(hook, counter)];
  }
  // Over all hooks.
  std::uint64_t total(BpfCounter counter) const;
  void set(BpfHook hook, BpfCounter counter, std::uint64_t value) {
    values_[BW_COUNTER_INDEX(hook, counter)] = value;
  }

 private:
  std::array<std::uint64_t, BW_COUNTER_ENTRIES> values_{};
};

// A security event from the kernel (rate-limit trip, malformed datagram,
// discovery flood, datagram to a port not valid now).
struct SecurityEvent {
  BpfHook hook = BpfHook::kXdp;
  BpfCounter reason = BpfCounter::kDropBadPort;  // the drop verdict
  IpAddress source;                              // v4-mapped addresses unmapped
  std::uint16_t source_port = 0;
  std::uint16_t destination_port = 0;
  std::uint32_t ifindex = 0;       // 0 when the hook does not know it
  std::uint8_t packet_type = 0;    // the header's type byte, 0 when not read
  std::uint64_t suppressed = 0;    // events about this source not sent before this one
  std::uint64_t monotonic_ns = 0;  // CLOCK_MONOTONIC of the drop
};

struct BpfLoadOptions {
  // Capacity of the valid-port map: sessions × connections × (2d + 1).
  std::uint32_t max_valid_ports = BW_VALID_PORTS_DEFAULT;
  // Receiving sockets, one per worker (socket map slots 0..workers-1),
  // 1..BW_MAX_WORKERS.
  std::uint32_t workers = 1;
};

// What the kernel measured of one program: how often it ran and how long it
// took in all. Both stay 0 unless the kernel collects program statistics
// (sysctl kernel.bpf_stats_enabled=1); they count from that moment on.
struct ProgramRunStats {
  std::uint64_t runs = 0;
  std::uint64_t run_time_ns = 0;
};

class EbpfPrograms {
 public:
  // Checks that the kernel can run the filter, loads it and writes `config`.
  // Attaches nothing. The TC program is not loaded yet: only an interface that
  // needs it (attach_interface in kTcIngress mode) or tc_program() loads it,
  // so a host filtering with XDP does not pay its verification at start-up.
  // The error says why, for "receive path: user space because …":
  //   EPERM / EACCES  no permission (needs root, or CAP_BPF + CAP_NET_ADMIN),
  //   ENOSYS          the kernel has no bpf() system call,
  //   EOPNOTSUPP      the kernel lacks a program or map type (names it and the
  //                   Linux version that added it),
  //   EINVAL ...      the verifier rejected a program (with its last words),
  //                   or `config` is invalid (port_low > port_high, port 0).
  static SysResult<std::unique_ptr<EbpfPrograms>> load(const BpfFilterConfig& config,
                                                      const BpfLoadOptions& options = {});
  ~EbpfPrograms();
  EbpfPrograms(const EbpfPrograms&) = delete;
  EbpfPrograms& operator=(const EbpfPrograms&) = delete;

  // Replaces the configuration; takes effect for the next packet. Errors:
  // EINVAL for an invalid config (the running one stays).
  SysResult<void> set_config(const BpfFilterConfig& config);

  // Attaches the frame filter to `interface`, trying `order` until one mode
  // works, and records where. Errors: ENODEV no such interface, EEXIST already
  // attached here, EOPNOTSUPP a link type the filter cannot parse (neither
  // Ethernet nor bare IP), or the last mode's errno with every mode's reason.
  SysResult<InterfaceAttachment> attach_interface(
      std::string_view interface, std::span<const AttachMode> order = kDefaultAttachOrder);
  std::vector<InterfaceAttachment> attachments() const;

  // Puts `udp_fd` (a bound UDP socket) in the socket map at worker `slot`'s
  // place and, the first time, attaches sk_lookup to the calling thread's
  // network namespace, so that datagrams to every valid (source, port) the
  // worker owns are delivered to this socket (and with several workers, the
  // discovery messages bw_sk_lookup hands that worker). A later call for the
  // slot replaces its socket. IPv4 datagrams need an AF_INET or a dual-stack
  // AF_INET6 socket. Errors: EBADF / ENOTSOCK not a socket, EPROTOTYPE not a
  // UDP socket, EINVAL a slot beyond the workers loaded for, or the kernel's
  // refusal.
  SysResult<void> steer_to_socket(int udp_fd, std::uint32_t slot = 0);

  // Attaches the socket filter to `fd` (SO_ATTACH_BPF): only well-formed
  // Buckwild datagrams are queued on it. Detached in the destructor if `fd`
  // is still the same socket then.
  SysResult<void> attach_socket_filter(int fd);

  // Makes the valid-port map equal to `next`, make-before-break: entries of
  // `next` are written first (new ones added, changed ones updated), then
  // entries not in `next` are deleted, so a pair valid in both the old and new
  // set is never missing. When the old and new entries together would not fit,
  // the leaving ones are deleted first (a pair in both sets is still never
  // missing). When `next` alone exceeds the map's capacity, its entries
  // farthest from their group's middle window (group: session and connection)
  // are left out until it fits, and valid_ports_trimmed() says how many: the
  // windows in force now stay valid whatever the delay allowances. Returns the
  // time the map updates took. Errors: the kernel's errno (the map then holds
  // part of the change, and valid_port_count() says how many entries).
  SysResult<std::chrono::nanoseconds> update_valid_ports(const std::vector<ValidPort>& next);
  std::size_t valid_port_count() const { return current_.size(); }
  // Entries of the last update's set left out because the map was full.
  std::size_t valid_ports_trimmed() const { return trimmed_; }

  // Makes the set of the daemon's own local ports exactly `ports`. A datagram
  // to a port not valid for its source passes the frame filter when a socket
  // would receive it, unless that socket's port is one of these (then it is
  // ours, and the datagram is dropped as usual). Errors: E2BIG beyond
  // BW_OWN_PORTS_MAX ports (nothing changed), or the kernel's errno.
  // Each port with the worker that bound it (the roaming candidates
  // bw_sk_lookup steers with several workers); a port listed twice keeps its
  // first worker.
  SysResult<void> set_owned_ports(const std::vector<std::pair<std::uint16_t, std::uint16_t>>& ports);
  SysResult<void> set_own_ports(const std::vector<std::uint16_t>& ports);
  // Makes the peer-source map exactly `sources`: their discovery messages
  // skip the all-sources discovery rate, and with several workers go to the
  // worker each is paired with. Errors: E2BIG beyond BW_PEER_SOURCES_MAX
  // addresses (nothing changed), or the kernel's errno.
  SysResult<void> set_served_peer_sources(
      const std::vector<std::pair<IpAddress, std::uint16_t>>& sources);
  SysResult<void> set_peer_sources(const std::vector<IpAddress>& sources);
  // Makes the TUN steering map exactly `routes`: each prefix with the worker
  // that serves it (bw_tun_steer). Errors: E2BIG beyond BW_TUN_ROUTES_MAX,
  // or the kernel's errno.
  SysResult<void> set_tun_routes(const std::vector<std::pair<Cidr, std::uint16_t>>& routes);
  // The TUN queue steering program, for TUNSETSTEERINGEBPF.
  int tun_steering_program() const;
  std::uint32_t workers() const { return workers_; }

  // Stream mode's NAT in the kernel (bw_tun_nat, docs/architecture.md
  // "Transparent TCP"): the program at TC egress of the virtual interface
  // `ifindex`, taken off when this object goes (or with the device). Errors:
  // the kernel's errno.
  SysResult<void> attach_tun_nat(int ifindex);
  bool tun_nat_attached() const { return tun_nat_ifindex_ != 0; }
  // Segments leaving the virtual interface from `source` to `destination`
  // are rewritten to (`new_source`, `new_destination`) and handed back in.
  // Errors: E2BIG when BW_TUN_NAT_MAX rules are held, else the kernel's errno.
  SysResult<void> set_nat_rule(const SocketAddress& source, const SocketAddress& destination,
                               const SocketAddress& new_source, const SocketAddress& new_destination);
  // Removes the rule for (`source`, `destination`); none is not an error.
  SysResult<void> erase_nat_rule(const SocketAddress& source, const SocketAddress& destination);
  // bw_tun_nat's descriptor (for BPF_PROG_TEST_RUN).
  int tun_nat_program() const;
  // bw_tun_nat's counters (enum bw_nat_counter), summed over CPUs.
  SysResult<std::array<std::uint64_t, BW_NAT_COUNTER_COUNT>> nat_counters() const;

  // Counter values, summed over CPUs.
  SysResult<BpfCounters> counters() const;

  // A descriptor that becomes readable when security events are waiting (for
  // EventLoop::watch_fd); then call drain_events.
  int events_fd() const;
  // Calls `on_event` for every waiting event; returns how many.
  SysResult<std::size_t> drain_events(const std::function<void(const SecurityEvent&)>& on_event);
  // Drops the filter counted against a source but has not reported yet (its
  // next event would have carried them), taken out of the per-source state:
  // `on_drops(source, reason of the latest, count)` for each source with any.
  // For a daemon that stops, after drain_events. Returns how many sources.
  SysResult<std::size_t> take_unreported(
      const std::function<void(const IpAddress&, BpfCounter, std::uint64_t)>& on_drops);

  // The kernel's run statistics of the program at `hook` (zeros for the TC
  // program while it is not loaded: it never ran). Errors: the kernel's errno
  // when it will not describe the program.
  SysResult<ProgramRunStats> run_stats(BpfHook hook) const;

  // The TC program's descriptor, loading it on the first call: a second
  // instance of the object in which only bw_tc_ingress loads, on this
  // instance's maps (the same valid ports, counters, buckets, events and
  // .bss). Errors: the verifier's refusal, as load() words it.
  SysResult<int> tc_program();

  // The program descriptors, for BPF_PROG_TEST_RUN; -1 for the TC program
  // while it is not loaded (tc_program()).
  int program_fd(BpfHook hook) const;
  // The valid-port map's descriptor, for inspection in tests.
  int valid_ports_fd() const;

 private:
  struct PortKeyHash {
    std::size_t operator()(const bw_port_key& key) const noexcept;
  };
  struct PortKeyEqual {
    bool operator()(const bw_port_key& a, const bw_port_key& b) const noexcept;
  };
  using PortMap = std::unordered_map<bw_port_key, bw_port_value, PortKeyHash, PortKeyEqual>;

  struct SocketFilter {
    int fd = -1;
    std::uint64_t cookie = 0;
  };
  struct Interface {
    InterfaceAttachment attachment;
    UniqueFd xdp_link;  // XDP modes
    bool tc = false;    // TC mode
    bool created_tc_hook = false;
    bool l3_device = false;
  };

  EbpfPrograms(buckwild_filter* skel, std::uint32_t max_valid_ports, std::uint32_t workers);
  SysResult<void> try_attach(Interface& iface, AttachMode mode);
  void detach_interface(Interface& iface);
  void detach_tun_nat();
  static int on_ring_sample(void* ctx, void* data, std::size_t size);

  buckwild_filter* skel_;
  buckwild_filter* tc_skel_ = nullptr;  // only bw_tc_ingress loaded, on skel_'s maps
  int tun_nat_ifindex_ = 0;             // where bw_tun_nat is attached; 0: nowhere
  bool tun_nat_created_hook_ = false;   // its clsact qdisc is ours to remove
  std::uint32_t max_valid_ports_;
  ring_buffer* ring_ = nullptr;
  std::vector<Interface> interfaces_;
  UniqueFd sk_lookup_link_;
  std::vector<SocketFilter> socket_filters_;
  PortMap current_;
  std::size_t trimmed_ = 0;
  std::uint32_t workers_;
  std::unordered_map<std::uint16_t, std::uint16_t> own_ports_;  // port -> worker
  std::vector<std::pair<IpAddress, std::uint16_t>> peer_sources_;  // sorted, unique addresses
  using RouteKey = std::pair<IpAddress, std::uint8_t>;  // a network and its prefix length
  std::map<RouteKey, std::uint16_t> tun_routes_;        // the map's contents
  const std::function<void(const SecurityEvent&)>* on_event_ = nullptr;
};

}  // namespace buckwild::daemon

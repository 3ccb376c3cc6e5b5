// The eBPF receive path in the running daemon. At start-up it decides whether
// the path can be used (or says why not) and attaches the frame filter (XDP,
// else TC ingress) to the underlay interfaces. Each worker's tunnel gets an
// EbpfPath of its own (worker()): its valid (peer, port) pairs, own ports,
// peer addresses and TUN routes, merged with the other workers' into the
// kernel's maps, each pair steered to the socket of the worker it belongs to. While running it logs
// the kernel's security events, rate-limited; its counters go to the log at
// shutdown and on SIGUSR1, and a summary into the service status.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/ebpf/ebpf_programs.h"
#include "daemon/config/config.h"
#include "daemon/os/event_loop.h"
#include "daemon/net/netlink.h"
#include "daemon/ebpf/ebpf_path.h"
#include "daemon/log/rate_limited_log.h"
#include "daemon/log/security_audit.h"

namespace buckwild::daemon {

// The filter's settings for `config`: the hopping range, the discovery port
// and the rates of [security].
BpfFilterConfig filter_config(std::uint16_t discovery_port, bool allow_fragments,
                              const SecurityConfig& security);
inline BpfFilterConfig filter_config(const Config& config) {
  return filter_config(config.network.discovery_port, config.network.ebpf_allow_fragments,
                       config.security);
}

// Capacity of the valid-port map for `config`: every connection's 2d + 1 ports
// for d up to 4, twice over (make-before-break holds old and new together).
std::uint32_t valid_port_capacity(const Config& config);

// The interfaces to filter: [network] interface when set; otherwise each
// interface that routes to a peer's endpoint and the one holding a specific
// listen_address; when that finds none (a responder listening on every
// address), every interface that is up except loopback and `virtual_device`.
SysResult<std::vector<std::string>> underlay_interfaces(const Config& config, Netlink& netlink);

class KernelEbpfPath final {
 public:
  // Loads the filter and attaches it to `interfaces`. On failure returns why
  // the user-space path must be used instead, in words for the start-up log
  // ("no permission to load eBPF programs (needs root, or CAP_BPF and
  // CAP_NET_ADMIN)"). An interface where no mode attaches is skipped with a
  // warning; none at all is a failure.
  // `workers` receiving sockets (1..BW_MAX_WORKERS), one per worker.
  static SysResult<std::unique_ptr<KernelEbpfPath>> start(
      const Config& config, const std::vector<std::string>& interfaces, EventLoop& loop,
      std::uint32_t workers = 1);
  ~KernelEbpfPath();
  KernelEbpfPath(const KernelEbpfPath&) = delete;
  KernelEbpfPath& operator=(const KernelEbpfPath&) = delete;

  // Worker `w`'s EbpfPath (w < workers()): steer_to puts its socket in the
  // socket map at slot w (sk_lookup) and attaches the socket filter to it;
  // its sets are its own, the kernel's maps hold all workers'. Callable from
  // the worker's thread while others use theirs (a mutex guards the maps'
  // mirrors; it is taken at window changes, never per packet).
  EbpfPath& worker(std::uint32_t w);
  std::uint32_t workers() const { return static_cast<std::uint32_t>(views_.size()); }
  // The TUN queue steering program (TUNSETSTEERINGEBPF).
  int tun_steering_program() const { return path_->tun_steering_program(); }
  // Stream mode's NAT in the kernel at TC egress of the virtual interface
  // `ifindex` (bw_tun_nat): from then on the workers' set_nat_rule() takes.
  SysResult<void> attach_tun_nat(int ifindex) { return path_->attach_tun_nat(ifindex); }
  bool tun_nat_attached() const { return path_->tun_nat_attached(); }
  // bw_tun_nat's counters (enum bw_nat_counter); nullopt when the kernel
  // refused to say.
  std::optional<std::array<std::uint64_t, BW_NAT_COUNTER_COUNT>> nat_counters() const;
  // The audit trail the kernel's security events are counted into (per
  // source and reason); null for none.
  void set_audit(SecurityAudit* audit) { audit_ = audit; }
  // For a daemon that stops: reads the waiting security events, then counts
  // in the audit trail the drops the filter had not reported yet (those a
  // source's next event would have carried), so none is missing from it.
  void count_unreported();
  // Rewrites the filter's configuration map with the new rates.
  SysResult<void> set_limits(const SecurityConfig& security);
  // True when the frame filter is XDP in the driver on every interface.
  bool filters_before_gro() const;

  // "xdp-driver on eth0, tc-ingress on eth1 (xdp-driver: ...; xdp-generic: ...)".
  std::string where() const;
  // One line per hook in use: every verdict by name, "name=value"; and, while
  // the kernel times BPF programs (kernel.bpf_stats_enabled), each program's
  // mean run time.
  void log_counters() const;
  // "kernel dropped N (bad port N, malformed N, over rate N, fragments N)" for STATUS=.
  std::string summary() const;
  // Every counter summed over CPUs; nullopt when the kernel refused to say.
  std::optional<BpfCounters> counters() const;

 private:
  class View;
  // What each worker asked for last; the kernel's maps hold their union.
  struct WorkerSets {
    std::vector<ValidPort> valid;
    std::vector<std::uint16_t> own_ports;
    std::vector<IpAddress> peer_sources;
    std::vector<Cidr> tun_routes;
  };
  KernelEbpfPath(std::unique_ptr<EbpfPrograms> path, EventLoop& loop, std::uint16_t discovery_port,
                 bool allow_fragments, std::uint32_t workers);
  void on_events();
  SysResult<std::chrono::nanoseconds> write_valid_ports(std::uint32_t w,
                                                        const std::vector<ValidPort>& ports);

  std::unique_ptr<EbpfPrograms> path_;
  std::mutex mutex_;  // sets_, trimming_, and every write to the maps through path_
  std::vector<WorkerSets> sets_;
  std::vector<std::unique_ptr<View>> views_;
  std::uint16_t discovery_port_;
  bool allow_fragments_;
  SecurityAudit* audit_ = nullptr;
  bool trimming_ = false;  // the last valid-port update left pairs out
  EventLoop& loop_;
  bool watching_events_ = false;
  RateLimitedLog events_log_;
  std::uint64_t events_ = 0;
};

}  // namespace buckwild::daemon

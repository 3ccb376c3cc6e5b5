// Loading the frame filter through its skeleton, its configuration, the
// sockets it serves (sk_lookup steering and the socket filter), counters and
// security events, and taking everything off again on destruction. Attaching
// to interfaces is in ebpf_attach.cc, the port maps in ebpf_valid_ports.cc.
#include "daemon/ebpf/ebpf_programs.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

#include "bpf/filter.skel.h"
#include "daemon/ebpf/ebpf_probe.h"
#include "daemon/ebpf/libbpf_log.h"

namespace buckwild::daemon {
namespace {

// ---- Configuration ----------------------------------------------------------

bw_rate to_rate(const RateLimit& limit) {
  bw_rate r{};
  if (limit.packets_per_second == 0) return r;  // unlimited
  r.interval_ns = std::max<__u64>(1, 1'000'000'000ull / limit.packets_per_second);
  r.tolerance_ns = (std::max<__u64>(limit.burst, 1) - 1) * r.interval_ns;
  return r;
}

SysResult<bw_config> to_kernel_config(const BpfFilterConfig& c) {
  if (c.port_low == 0 || c.port_low > c.port_high) {
    return sys_fail_plain(EINVAL, "invalid hopping range " + std::to_string(c.port_low) + "-" +
                                      std::to_string(c.port_high));
  }
  if (c.discovery_port == 0) return sys_fail_plain(EINVAL, "invalid discovery port 0");
  if (c.event_source_gap.count() < 0) {
    return sys_fail_plain(EINVAL, "negative security-event gap");
  }
  bw_config k{};
  k.flags = BW_CONFIG_ENABLED | (c.pass_fragments ? BW_CONFIG_PASS_FRAGMENTS : 0u);
  k.port_low = c.port_low;
  k.port_high = c.port_high;
  k.discovery_port = c.discovery_port;
  k.data = to_rate(c.data_per_source);
  k.discovery = to_rate(c.discovery_per_source);
  k.discovery_total = to_rate(c.discovery_total);
  k.events = to_rate(c.events);
  k.roam = to_rate(c.roam_per_source);
  k.event_source_gap_ns = static_cast<__u64>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(c.event_source_gap).count());
  return k;
}

std::uint64_t socket_cookie(int fd) {
  std::uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  if (::getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0) return 0;
  return cookie;
}

}  // namespace

// ---- Names ------------------------------------------------------------------

namespace {

// Indexed by the enum values (filter_abi.h order).
constexpr std::array<std::string_view, 3> kAttachModeNames = {"xdp-driver", "xdp-generic",
                                                              "tc-ingress"};
constexpr std::array<std::string_view, kBpfHookCount> kHookNames = {"xdp", "tc", "socket",
                                                                    "sk_lookup"};
constexpr std::array<std::string_view, kBpfCounterCount> kCounterNames = {
    "pass",
    "pass_discovery",
    "not_ours_passed",
    "pass_unparsed",
    "pass_foreign",
    "pass_roam",
    "drop_bad_port",
    "drop_bad_version",
    "drop_unknown_type",
    "drop_bad_header",
    "drop_truncated",
    "drop_bad_length",
    "drop_rate_limited",
    "drop_discovery_rate",
    "drop_discovery_total",
    "drop_roam_rate",
    "drop_fragment",
    "drop_fragment_tail",
    "steer_failed",
    "pass_fragment",
    "events_sent",
    "events_suppressed",
    "events_lost",
};
static_assert(static_cast<std::size_t>(BpfCounter::kEventsLost) + 1 == kCounterNames.size());

template <std::size_t N, typename E>
std::string_view name_of(const std::array<std::string_view, N>& names, E value) {
  const auto i = static_cast<std::size_t>(value);
  return i < N ? names[i] : "?";
}

}  // namespace

std::string_view attach_mode_name(AttachMode mode) {
  return name_of(kAttachModeNames, mode);
}

std::string_view bpf_hook_name(BpfHook hook) {
  return name_of(kHookNames, hook);
}

std::string_view bpf_counter_name(BpfCounter counter) {
  return name_of(kCounterNames, counter);
}

std::uint64_t BpfCounters::total(BpfCounter counter) const {
  std::uint64_t sum = 0;
  for (std::size_t h = 0; h < kBpfHookCount; ++h) {
    sum += values_[BW_COUNTER_INDEX(h, counter)];
  }
  return sum;
}

// ---- Loading ------------------------------------------------------------------

EbpfPrograms::EbpfPrograms(buckwild_filter* skel, std::uint32_t max_valid_ports,
                           std::uint32_t workers)
    : skel_(skel), max_valid_ports_(max_valid_ports), workers_(workers) {}

SysResult<std::unique_ptr<EbpfPrograms>> EbpfPrograms::load(const BpfFilterConfig& config,
                                                            const BpfLoadOptions& options) {
  auto kernel_config = to_kernel_config(config);
  if (!kernel_config) return std::unexpected(kernel_config.error());
  if (options.max_valid_ports == 0) {
    return sys_fail_plain(EINVAL, "the valid-port map needs room for at least one entry");
  }
  if (options.workers == 0 || options.workers > BW_MAX_WORKERS) {
    return sys_fail_plain(EINVAL, "the filter steers to 1.." + std::to_string(BW_MAX_WORKERS) +
                                      " workers, not " + std::to_string(options.workers));
  }
  if (auto probed = probe_bpf_support(); !probed) return std::unexpected(probed.error());

  LibbpfLogCapture log;
  buckwild_filter* skel = buckwild_filter__open();
  if (skel == nullptr) {
    int err = errno;
    return sys_fail(err, "cannot open the embedded eBPF object (" + log.summary() + ")");
  }
  std::unique_ptr<EbpfPrograms> path(
      new EbpfPrograms(skel, options.max_valid_ports, options.workers));
  if (int err = bpf_map__set_max_entries(skel->maps.valid_ports, options.max_valid_ports);
      err != 0) {
    return sys_fail(-err, "cannot size the valid-port map");
  }
  if (int err = bpf_map__set_max_entries(skel->maps.sock_map, options.workers); err != 0) {
    return sys_fail(-err, "cannot size the socket map");
  }
  // Most interfaces take XDP (generic XDP attaches anywhere no other program
  // holds the slot): the TC program, whose verification is about a fifth of
  // the start-up, loads only when an interface needs it (tc_program()).
  if (int err = bpf_program__set_autoload(skel->progs.bw_tc_ingress, false); err != 0) {
    return sys_fail(-err, "cannot defer loading the TC program");
  }
  if (int err = buckwild_filter__load(skel); err != 0) {
    // The probes passed, so this is the verifier or a missing feature newer
    // than they test for (atomic compare-and-swap needs Linux 5.12).
    return sys_fail_plain(-err, "the kernel (" + kernel_release() + ") rejected the eBPF filter: " +
                                    errno_text(-err) + " (" + log.summary() + ")");
  }
  if (auto set = path->set_config(config); !set) return std::unexpected(set.error());
  path->ring_ = ring_buffer__new(bpf_map__fd(skel->maps.events), &EbpfPrograms::on_ring_sample,
                                 path.get(), nullptr);
  if (path->ring_ == nullptr) {
    int err = errno;
    return sys_fail(err, "cannot map the security-event ring buffer");
  }
  return path;
}

EbpfPrograms::~EbpfPrograms() {
  if (ring_ != nullptr) ring_buffer__free(ring_);
  for (const SocketFilter& f : socket_filters_) {
    // Only if the descriptor still names the socket we attached to: it may
    // have been closed and reused for something else since.
    if (f.cookie != 0 && socket_cookie(f.fd) == f.cookie) {
      int unused = 0;
      ::setsockopt(f.fd, SOL_SOCKET, SO_DETACH_BPF, &unused, sizeof unused);
    }
  }
  sk_lookup_link_.reset();
  for (Interface& iface : interfaces_) detach_interface(iface);
  detach_tun_nat();
  if (tc_skel_ != nullptr) buckwild_filter__destroy(tc_skel_);
  buckwild_filter__destroy(skel_);
}

SysResult<int> EbpfPrograms::tc_program() {
  if (tc_skel_ != nullptr) return bpf_program__fd(tc_skel_->progs.bw_tc_ingress);
  LibbpfLogCapture log;
  buckwild_filter* tc = buckwild_filter__open();
  if (tc == nullptr) {
    int err = errno;
    return sys_fail(err, "cannot open the embedded eBPF object (" + log.summary() + ")");
  }
  // Every map of the second instance is the first's: same object, so the
  // maps come in the same order with the same names.
  auto fail = [&](int err, const std::string& what) {
    buckwild_filter__destroy(tc);
    return sys_fail_plain(err, what);
  };
  bpf_map* ours = nullptr;
  bpf_map* theirs = nullptr;
  while ((ours = bpf_object__next_map(skel_->obj, ours)) != nullptr) {
    theirs = bpf_object__next_map(tc->obj, theirs);
    if (theirs == nullptr || std::strcmp(bpf_map__name(ours), bpf_map__name(theirs)) != 0) {
      return fail(EINVAL, "the TC program's object has other maps than the filter's");
    }
    if (int err = bpf_map__reuse_fd(theirs, bpf_map__fd(ours)); err != 0) {
      return fail(-err, std::string("cannot share the map ") + bpf_map__name(ours) +
                            " with the TC program: " + errno_text(-err));
    }
  }
  bpf_program* prog = nullptr;
  while ((prog = bpf_object__next_program(tc->obj, prog)) != nullptr) {
    bpf_program__set_autoload(prog, prog == tc->progs.bw_tc_ingress);
  }
  if (int err = buckwild_filter__load(tc); err != 0) {
    return fail(-err, "the kernel (" + kernel_release() + ") rejected the eBPF TC program: " +
                          errno_text(-err) + " (" + log.summary() + ")");
  }
  tc_skel_ = tc;
  return bpf_program__fd(tc_skel_->progs.bw_tc_ingress);
}

SysResult<void> EbpfPrograms::set_config(const BpfFilterConfig& config) {
  auto k = to_kernel_config(config);
  if (!k) return std::unexpected(k.error());
  k->workers = workers_;
  __u32 key = 0;
  if (int err =
          bpf_map__update_elem(skel_->maps.config_map, &key, sizeof key, &*k, sizeof *k, BPF_ANY);
      err != 0) {
    return sys_fail(-err, "cannot write the eBPF filter configuration");
  }
  return {};
}

SysResult<ProgramRunStats> EbpfPrograms::run_stats(BpfHook hook) const {
  if (program_fd(hook) < 0) return ProgramRunStats{};  // the TC program, not loaded: never ran
  bpf_prog_info info{};
  __u32 length = sizeof info;
  if (int err = bpf_obj_get_info_by_fd(program_fd(hook), &info, &length); err != 0) {
    return sys_fail(
        -err, "cannot read the statistics of the " + std::string(bpf_hook_name(hook)) + " program");
  }
  return ProgramRunStats{info.run_cnt, info.run_time_ns};
}

int EbpfPrograms::program_fd(BpfHook hook) const {
  switch (hook) {
    case BpfHook::kXdp:
      return bpf_program__fd(skel_->progs.bw_xdp);
    case BpfHook::kTc:
      return tc_skel_ != nullptr ? bpf_program__fd(tc_skel_->progs.bw_tc_ingress) : -1;
    case BpfHook::kSocket:
      return bpf_program__fd(skel_->progs.bw_socket_filter);
    case BpfHook::kSkLookup:
      return bpf_program__fd(skel_->progs.bw_sk_lookup);
  }
  return -1;
}

int EbpfPrograms::tun_steering_program() const {
  return bpf_program__fd(skel_->progs.bw_tun_steer);
}

int EbpfPrograms::valid_ports_fd() const {
  return bpf_map__fd(skel_->maps.valid_ports);
}

// ---- Sockets ------------------------------------------------------------------

SysResult<void> EbpfPrograms::steer_to_socket(int udp_fd, std::uint32_t slot) {
  if (slot >= workers_) {
    return sys_fail_plain(EINVAL, "socket map slot " + std::to_string(slot) + " beyond the " +
                                      std::to_string(workers_) + " workers loaded for");
  }
  int type = 0;
  int protocol = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(udp_fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
    return sys_fail(errno, "cannot steer to descriptor " + std::to_string(udp_fd));
  }
  len = sizeof protocol;
  if (::getsockopt(udp_fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) != 0) {
    return sys_fail(errno, "cannot steer to descriptor " + std::to_string(udp_fd));
  }
  if (type != SOCK_DGRAM || protocol != IPPROTO_UDP) {
    return sys_fail_plain(EPROTOTYPE, "sk_lookup can only steer to a UDP socket");
  }
  __u64 value = static_cast<__u64>(udp_fd);
  if (int err = bpf_map__update_elem(skel_->maps.sock_map, &slot, sizeof slot, &value, sizeof value,
                                     BPF_ANY);
      err != 0) {
    return sys_fail(-err, "cannot put the receiving socket in the socket map");
  }
  if (sk_lookup_link_) return {};
  UniqueFd netns(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!netns) return sys_fail(errno, "cannot open this network namespace");
  int link = bpf_link_create(bpf_program__fd(skel_->progs.bw_sk_lookup), netns.get(), BPF_SK_LOOKUP,
                             nullptr);
  if (link < 0) return sys_fail(-link, "cannot attach sk_lookup to this network namespace");
  sk_lookup_link_.reset(link);
  return {};
}

SysResult<void> EbpfPrograms::attach_socket_filter(int fd) {
  int prog = bpf_program__fd(skel_->progs.bw_socket_filter);
  if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_BPF, &prog, sizeof prog) != 0) {
    return sys_fail(errno, "cannot attach the socket filter to descriptor " + std::to_string(fd));
  }
  socket_filters_.push_back({fd, socket_cookie(fd)});
  return {};
}

// ---- Counters and events ------------------------------------------------------------

SysResult<BpfCounters> EbpfPrograms::counters() const {
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return sys_fail(-cpus, "cannot count the possible CPUs");
  std::vector<__u64> per_cpu(static_cast<std::size_t>(cpus));
  BpfCounters out;
  for (std::size_t h = 0; h < kBpfHookCount; ++h) {
    for (std::size_t c = 0; c < kBpfCounterCount; ++c) {
      __u32 key = BW_COUNTER_INDEX(h, c);
      if (int err = bpf_map__lookup_elem(skel_->maps.counters, &key, sizeof key, per_cpu.data(),
                                         per_cpu.size() * sizeof(__u64), 0);
          err != 0) {
        return sys_fail(-err, "cannot read the eBPF counters");
      }
      std::uint64_t sum = 0;
      for (__u64 v : per_cpu) sum += v;
      out.set(static_cast<BpfHook>(h), static_cast<BpfCounter>(c), sum);
    }
  }
  return out;
}

int EbpfPrograms::events_fd() const {
  return ring_buffer__epoll_fd(ring_);
}

int EbpfPrograms::on_ring_sample(void* ctx, void* data, std::size_t size) {
  auto* self = static_cast<EbpfPrograms*>(ctx);
  if (self->on_event_ == nullptr || size < sizeof(bw_event)) return 0;
  bw_event raw{};
  std::memcpy(&raw, data, sizeof raw);
  if (raw.hook >= kBpfHookCount || raw.reason >= kBpfCounterCount) return 0;
  std::array<std::uint8_t, 16> bytes{};
  std::memcpy(bytes.data(), raw.source.bytes, bytes.size());
  SecurityEvent event;
  event.hook = static_cast<BpfHook>(raw.hook);
  event.reason = static_cast<BpfCounter>(raw.reason);
  event.source = IpAddress::v6(bytes).unmapped();
  event.source_port = raw.source_port;
  event.destination_port = raw.dest_port;
  event.ifindex = raw.ifindex;
  event.packet_type = raw.packet_type;
  event.suppressed = raw.suppressed;
  event.monotonic_ns = raw.timestamp_ns;
  (*self->on_event_)(event);
  return 0;
}

SysResult<std::size_t> EbpfPrograms::drain_events(
    const std::function<void(const SecurityEvent&)>& on_event) {
  on_event_ = &on_event;
  int n = ring_buffer__consume(ring_);
  on_event_ = nullptr;
  if (n < 0) return sys_fail(-n, "cannot read security events");
  return static_cast<std::size_t>(n);
}

SysResult<std::size_t> EbpfPrograms::take_unreported(
    const std::function<void(const IpAddress&, BpfCounter, std::uint64_t)>& on_drops) {
  bpf_map* map = skel_->maps.event_sources;
  std::size_t sources = 0;
  bw_addr key{};
  bw_addr next{};
  const void* previous = nullptr;
  // The map holds at most BW_EVENT_SOURCES_MAX keys; the bound also ends the
  // walk if the kernel keeps inserting while we read.
  for (std::uint32_t i = 0; i < BW_EVENT_SOURCES_MAX; ++i) {
    if (int err = bpf_map__get_next_key(map, previous, &next, sizeof next); err != 0) {
      if (err == -ENOENT) break;
      return sys_fail(-err, "cannot walk the eBPF event sources");
    }
    key = next;
    previous = &key;
    bw_event_source value{};
    if (bpf_map__lookup_elem(map, &key, sizeof key, &value, sizeof value, 0) != 0) continue;
    if (value.suppressed == 0) continue;
    const std::uint64_t count = value.suppressed;
    value.suppressed = 0;  // taken: a second call does not count them again
    (void)bpf_map__update_elem(map, &key, sizeof key, &value, sizeof value, BPF_EXIST);
    const BpfCounter reason = value.latest_reason < kBpfCounterCount
                                  ? static_cast<BpfCounter>(value.latest_reason)
                                  : BpfCounter::kDropBadPort;
    std::array<std::uint8_t, 16> bytes{};
    std::memcpy(bytes.data(), key.bytes, bytes.size());
    on_drops(IpAddress::v6(bytes).unmapped(), reason, count);
    ++sources;
  }
  return sources;
}

}  // namespace buckwild::daemon

#include "daemon/ebpf/ebpf_programs.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
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

// Our TC filter's place at the ingress hook. BPF_TC_F_REPLACE with a fixed
// handle and priority means a daemon restarted after a crash replaces its own
// stale filter instead of stacking a second one.
constexpr std::uint32_t kTcHandle = 0xB3D;
constexpr std::uint32_t kTcPriority = 1;

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
  k.flags = BW_CONFIG_ENABLED;
  k.port_low = c.port_low;
  k.port_high = c.port_high;
  k.discovery_port = c.discovery_port;
  k.data = to_rate(c.data_per_source);
  k.discovery = to_rate(c.discovery_per_source);
  k.discovery_total = to_rate(c.discovery_total);
  k.events = to_rate(c.events);
  k.event_source_gap_ns = static_cast<__u64>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(c.event_source_gap).count());
  return k;
}

// ---- Interfaces -------------------------------------------------------------

// True when frames on `name` start at the IP header (tun, wireguard), false
// for an Ethernet header (including loopback). Other link types are refused.
SysResult<bool> bare_ip_link(const std::string& name) {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return sys_fail(errno, "cannot create a socket to query " + name);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFHWADDR, &ifr) != 0) {
    return sys_fail(errno, "cannot read the link type of " + name);
  }
  switch (ifr.ifr_hwaddr.sa_family) {
    case ARPHRD_ETHER:
    case ARPHRD_LOOPBACK:
      return false;
    case ARPHRD_NONE:
    case ARPHRD_RAWIP:
      return true;
    default:
      return sys_fail_plain(EOPNOTSUPP, "interface " + name + " has link type " +
                                            std::to_string(ifr.ifr_hwaddr.sa_family) +
                                            ", which the eBPF filter cannot parse");
  }
}

std::uint32_t program_id(int prog_fd) {
  bpf_prog_info info{};
  __u32 len = sizeof info;
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) return 0;
  return info.id;
}

bpf_tc_hook ingress_hook(int ifindex) {
  bpf_tc_hook hook{};
  hook.sz = sizeof hook;
  hook.ifindex = ifindex;
  hook.attach_point = BPF_TC_INGRESS;
  return hook;
}

bpf_tc_opts our_tc_filter() {
  bpf_tc_opts opts{};
  opts.sz = sizeof opts;
  opts.handle = kTcHandle;
  opts.priority = kTcPriority;
  return opts;
}

std::uint64_t socket_cookie(int fd) {
  std::uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  if (::getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0) return 0;
  return cookie;
}

bw_port_key make_key(const IpAddress& source, std::uint16_t port) {
  bw_port_key key{};
  IpAddress mapped = source.mapped_v6();
  std::memcpy(key.source.bytes, mapped.bytes().data(), sizeof key.source.bytes);
  key.port = port;
  return key;
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
    "drop_bad_port",
    "drop_bad_version",
    "drop_unknown_type",
    "drop_bad_header",
    "drop_truncated",
    "drop_bad_length",
    "drop_rate_limited",
    "drop_discovery_rate",
    "drop_discovery_total",
    "steer_failed",
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

std::size_t EbpfPrograms::PortKeyHash::operator()(const bw_port_key& key) const noexcept {
  return std::hash<std::string_view>{}(
      std::string_view(reinterpret_cast<const char*>(&key), sizeof key));
}

bool EbpfPrograms::PortKeyEqual::operator()(const bw_port_key& a,
                                           const bw_port_key& b) const noexcept {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

EbpfPrograms::EbpfPrograms(buckwild_filter* skel, std::uint32_t max_valid_ports)
    : skel_(skel), max_valid_ports_(max_valid_ports) {}

SysResult<std::unique_ptr<EbpfPrograms>> EbpfPrograms::load(const BpfFilterConfig& config,
                                                          const BpfLoadOptions& options) {
  auto kernel_config = to_kernel_config(config);
  if (!kernel_config) return std::unexpected(kernel_config.error());
  if (options.max_valid_ports == 0) {
    return sys_fail_plain(EINVAL, "the valid-port map needs room for at least one entry");
  }
  if (auto probed = probe_bpf_support(); !probed) return std::unexpected(probed.error());

  LibbpfLogCapture log;
  buckwild_filter* skel = buckwild_filter__open();
  if (skel == nullptr) {
    int err = errno;
    return sys_fail(err, "cannot open the embedded eBPF object (" + log.summary() + ")");
  }
  std::unique_ptr<EbpfPrograms> path(new EbpfPrograms(skel, options.max_valid_ports));
  if (int err = bpf_map__set_max_entries(skel->maps.valid_ports, options.max_valid_ports);
      err != 0) {
    return sys_fail(-err, "cannot size the valid-port map");
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
  buckwild_filter__destroy(skel_);
}

SysResult<void> EbpfPrograms::set_config(const BpfFilterConfig& config) {
  auto k = to_kernel_config(config);
  if (!k) return std::unexpected(k.error());
  __u32 key = 0;
  if (int err =
          bpf_map__update_elem(skel_->maps.config_map, &key, sizeof key, &*k, sizeof *k, BPF_ANY);
      err != 0) {
    return sys_fail(-err, "cannot write the eBPF filter configuration");
  }
  return {};
}

SysResult<ProgramRunStats> EbpfPrograms::run_stats(BpfHook hook) const {
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
      return bpf_program__fd(skel_->progs.bw_tc_ingress);
    case BpfHook::kSocket:
      return bpf_program__fd(skel_->progs.bw_socket_filter);
    case BpfHook::kSkLookup:
      return bpf_program__fd(skel_->progs.bw_sk_lookup);
  }
  return -1;
}

int EbpfPrograms::valid_ports_fd() const {
  return bpf_map__fd(skel_->maps.valid_ports);
}

// ---- Interfaces ---------------------------------------------------------------

std::vector<InterfaceAttachment> EbpfPrograms::attachments() const {
  std::vector<InterfaceAttachment> out;
  out.reserve(interfaces_.size());
  for (const Interface& iface : interfaces_) out.push_back(iface.attachment);
  return out;
}

SysResult<InterfaceAttachment> EbpfPrograms::attach_interface(std::string_view interface,
                                                             std::span<const AttachMode> order) {
  std::string name(interface);
  if (order.empty()) return sys_fail_plain(EINVAL, "no attach mode to try on " + name);
  unsigned index = ::if_nametoindex(name.c_str());
  if (index == 0) return sys_fail_plain(ENODEV, "no network interface named \"" + name + "\"");
  const int ifindex = static_cast<int>(index);
  for (const Interface& iface : interfaces_) {
    if (iface.attachment.ifindex == ifindex) {
      return sys_fail_plain(EEXIST, "the eBPF filter is already attached to " + name);
    }
  }
  auto bare_ip = bare_ip_link(name);
  if (!bare_ip) return std::unexpected(bare_ip.error());

  Interface iface;
  iface.attachment.interface = name;
  iface.attachment.ifindex = ifindex;
  iface.l3_device = *bare_ip;
  __u32 key = index;
  if (iface.l3_device) {
    __u8 one = 1;
    if (int err = bpf_map__update_elem(skel_->maps.l3_devices, &key, sizeof key, &one, sizeof one,
                                       BPF_ANY);
        err != 0) {
      return sys_fail(-err, "cannot mark " + name + " as a bare-IP interface");
    }
  }
  std::string reasons;
  int last_errno = 0;
  for (AttachMode mode : order) {
    auto attached = try_attach(iface, mode);
    if (attached) {
      iface.attachment.mode = mode;
      iface.attachment.fallback_reason = reasons;
      InterfaceAttachment result = iface.attachment;
      interfaces_.push_back(std::move(iface));
      return result;
    }
    if (!reasons.empty()) reasons += "; ";
    reasons += std::string(attach_mode_name(mode)) + ": " + attached.error().message;
    last_errno = attached.error().sys_errno;
  }
  if (iface.l3_device) bpf_map__delete_elem(skel_->maps.l3_devices, &key, sizeof key, 0);
  return sys_fail_plain(last_errno,
                        "cannot attach the eBPF filter to " + name + " (" + reasons + ")");
}

SysResult<void> EbpfPrograms::try_attach(Interface& iface, AttachMode mode) {
  const int ifindex = iface.attachment.ifindex;
  if (mode == AttachMode::kXdpDriver || mode == AttachMode::kXdpGeneric) {
    // A link, not a netlink attachment: it goes away with the last descriptor,
    // so a daemon that dies cannot leave the interface filtered.
    bpf_link_create_opts opts{};
    opts.sz = sizeof opts;
    opts.flags = mode == AttachMode::kXdpDriver ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
    int fd = bpf_link_create(bpf_program__fd(skel_->progs.bw_xdp), ifindex, BPF_XDP, &opts);
    if (fd < 0) return sys_fail_plain(-fd, errno_text(-fd));
    iface.xdp_link.reset(fd);
    return {};
  }

  bpf_tc_hook hook = ingress_hook(ifindex);
  int err = bpf_tc_hook_create(&hook);  // the clsact qdisc
  if (err != 0 && err != -EEXIST) return sys_fail_plain(-err, errno_text(-err));
  const bool created = err == 0;
  bpf_tc_opts opts = our_tc_filter();
  opts.prog_fd = bpf_program__fd(skel_->progs.bw_tc_ingress);
  opts.flags = BPF_TC_F_REPLACE;
  err = bpf_tc_attach(&hook, &opts);
  if (err != 0) {
    if (created) {
      hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
      bpf_tc_hook_destroy(&hook);
    }
    return sys_fail_plain(-err, errno_text(-err));
  }
  iface.tc = true;
  iface.created_tc_hook = created;
  return {};
}

void EbpfPrograms::detach_interface(Interface& iface) {
  iface.xdp_link.reset();
  if (!iface.tc) return;
  bpf_tc_hook hook = ingress_hook(iface.attachment.ifindex);
  bpf_tc_opts query = our_tc_filter();
  // Remove the filter only if it is still ours (not replaced by another
  // daemon since).
  if (bpf_tc_query(&hook, &query) == 0 &&
      query.prog_id == program_id(bpf_program__fd(skel_->progs.bw_tc_ingress))) {
    bpf_tc_opts ours = our_tc_filter();
    bpf_tc_detach(&hook, &ours);
  }
  if (iface.created_tc_hook) {
    hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
    bpf_tc_hook_destroy(&hook);
  }
  iface.tc = false;
}

// ---- Sockets ------------------------------------------------------------------

SysResult<void> EbpfPrograms::steer_to_socket(int udp_fd) {
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
  __u32 slot = BW_SOCKMAP_SLOT;
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

// ---- Valid ports ----------------------------------------------------------------

SysResult<std::chrono::nanoseconds> EbpfPrograms::update_valid_ports(
    const std::vector<ValidPort>& next) {
  PortMap wanted;
  wanted.reserve(next.size());
  for (const ValidPort& p : next) {
    bw_port_value value{};
    value.session_id = p.session_id;
    value.window = p.window;
    value.connection_id = p.connection_id;
    wanted[make_key(p.source, p.port)] = value;
  }

  std::vector<bw_port_key> add_keys;
  std::vector<bw_port_value> add_values;
  std::size_t new_keys = 0;
  for (const auto& [key, value] : wanted) {
    auto it = current_.find(key);
    if (it != current_.end() && std::memcmp(&it->second, &value, sizeof value) == 0) continue;
    if (it == current_.end()) ++new_keys;
    add_keys.push_back(key);
    add_values.push_back(value);
  }
  std::vector<bw_port_key> remove_keys;
  for (const auto& entry : current_) {
    if (!wanted.contains(entry.first)) remove_keys.push_back(entry.first);
  }
  // Make-before-break holds old and new together for a moment.
  if (current_.size() + new_keys > max_valid_ports_) {
    return sys_fail_plain(E2BIG, "the valid-port map holds " + std::to_string(max_valid_ports_) +
                                     " entries; the old and new sets together need " +
                                     std::to_string(current_.size() + new_keys));
  }

  const int fd = bpf_map__fd(skel_->maps.valid_ports);
  bpf_map_batch_opts opts{};
  opts.sz = sizeof opts;
  opts.elem_flags = BPF_ANY;
  // valid_port_bits, shared with the programs through the mapping of .bss: a
  // new port's bit is set before its entries exist, and bits are cleared only
  // once the map has lost a port's last entry (a set bit just means "look").
  __u64* bits = skel_->bss->valid_port_bits;
  const auto start = std::chrono::steady_clock::now();
  for (const bw_port_key& key : add_keys) {
    __atomic_fetch_or(&bits[key.port >> 6], __u64{1} << (key.port & 63), __ATOMIC_RELEASE);
  }
  if (!add_keys.empty()) {
    auto count = static_cast<__u32>(add_keys.size());
    if (int err = bpf_map_update_batch(fd, add_keys.data(), add_values.data(), &count, &opts);
        err != 0) {
      for (__u32 i = 0; i < count && i < add_keys.size(); ++i)
        current_[add_keys[i]] = add_values[i];
      return sys_fail(-err, "cannot add to the valid-port map");
    }
  }
  if (!remove_keys.empty()) {
    bpf_map_batch_opts del{};
    del.sz = sizeof del;
    auto count = static_cast<__u32>(remove_keys.size());
    if (int err = bpf_map_delete_batch(fd, remove_keys.data(), &count, &del); err != 0) {
      for (const auto& [key, value] : wanted) current_[key] = value;
      for (__u32 i = 0; i < count && i < remove_keys.size(); ++i) current_.erase(remove_keys[i]);
      return sys_fail(-err, "cannot remove from the valid-port map");
    }
  }
  std::array<__u64, BW_PORT_BIT_WORDS> now_valid{};
  for (const auto& entry : wanted)
    now_valid[entry.first.port >> 6] |= __u64{1} << (entry.first.port & 63);
  for (std::size_t i = 0; i < now_valid.size(); ++i) {
    if (__atomic_load_n(&bits[i], __ATOMIC_RELAXED) != now_valid[i]) {
      __atomic_store_n(&bits[i], now_valid[i], __ATOMIC_RELEASE);
    }
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  current_ = std::move(wanted);
  return std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed);
}

SysResult<void> EbpfPrograms::set_own_ports(const std::vector<std::uint16_t>& ports) {
  const std::unordered_set<std::uint16_t> wanted(ports.begin(), ports.end());
  if (wanted.size() > BW_OWN_PORTS_MAX) {
    return sys_fail_plain(E2BIG, "the daemon's own-port map holds " +
                                     std::to_string(BW_OWN_PORTS_MAX) + " ports; " +
                                     std::to_string(wanted.size()) + " asked");
  }
  const std::uint8_t one = 1;
  // Add first: a port of ours must never look like another application's.
  for (std::uint16_t port : wanted) {
    if (own_ports_.contains(port)) continue;
    if (int err = bpf_map__update_elem(skel_->maps.own_ports, &port, sizeof port, &one, sizeof one,
                                       BPF_ANY);
        err != 0) {
      return sys_fail(-err, "cannot add to the own-port map");
    }
    own_ports_.insert(port);
  }
  for (auto it = own_ports_.begin(); it != own_ports_.end();) {
    if (wanted.contains(*it)) {
      ++it;
      continue;
    }
    std::uint16_t port = *it;
    if (int err = bpf_map__delete_elem(skel_->maps.own_ports, &port, sizeof port, 0);
        err != 0 && err != -ENOENT) {
      return sys_fail(-err, "cannot remove from the own-port map");
    }
    it = own_ports_.erase(it);
  }
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

}  // namespace buckwild::daemon

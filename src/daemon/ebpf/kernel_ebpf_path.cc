#include "daemon/ebpf/kernel_ebpf_path.h"

#include <net/if.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <span>

#include "core/wire/messages.h"

namespace buckwild::daemon {
namespace {

// The verdicts in log order (events statistics after them).
constexpr std::array kVerdicts = {
    BpfCounter::kPass,           BpfCounter::kPassDiscovery,    BpfCounter::kNotOurs,
    BpfCounter::kPassUnparsed,   BpfCounter::kPassForeign,      BpfCounter::kPassRoam,
    BpfCounter::kDropBadPort,      BpfCounter::kDropBadVersion,
    BpfCounter::kDropUnknownType, BpfCounter::kDropBadHeader,   BpfCounter::kDropTruncated,
    BpfCounter::kDropBadLength,  BpfCounter::kDropRateLimited,  BpfCounter::kDropDiscoveryRate,
    BpfCounter::kDropDiscoveryTotal, BpfCounter::kDropRoamRate, BpfCounter::kDropFragment,
    BpfCounter::kDropFragmentTail, BpfCounter::kSteerFailed,     BpfCounter::kPassFragment,
    BpfCounter::kEventsSent,
    BpfCounter::kEventsSuppressed, BpfCounter::kEventsLost};
constexpr std::array kMalformed = {BpfCounter::kDropBadVersion, BpfCounter::kDropUnknownType,
                                   BpfCounter::kDropBadHeader, BpfCounter::kDropTruncated,
                                   BpfCounter::kDropBadLength};
constexpr std::array kOverRate = {BpfCounter::kDropRateLimited, BpfCounter::kDropDiscoveryRate,
                                  BpfCounter::kDropDiscoveryTotal, BpfCounter::kDropRoamRate};
constexpr std::array kHooks = {BpfHook::kXdp, BpfHook::kTc, BpfHook::kSocket, BpfHook::kSkLookup};

RateLimit rate(std::uint64_t per_second, std::uint64_t burst) {
  if (per_second == 0) return RateLimit{0, 1};
  return RateLimit{static_cast<std::uint32_t>(std::min<std::uint64_t>(per_second, UINT32_MAX)),
                   static_cast<std::uint32_t>(std::clamp<std::uint64_t>(burst, 1, UINT32_MAX))};
}

std::string interface_name(std::uint32_t ifindex) {
  if (ifindex == 0) return "";
  std::array<char, IF_NAMESIZE> name{};
  if (::if_indextoname(ifindex, name.data()) == nullptr) return std::string(1, '#').append(std::to_string(ifindex));
  return name.data();
}

void add_unique(std::vector<std::string>& names, const std::string& name) {
  if (!name.empty() && std::find(names.begin(), names.end(), name) == names.end()) {
    names.push_back(name);
  }
}

// The modes to try on each interface for [network] ebpf_attach.
std::span<const AttachMode> attach_order(EbpfAttach attach) {
  static constexpr std::array kXdpDriverOnly = {AttachMode::kXdpDriver};
  static constexpr std::array kXdpGenericOnly = {AttachMode::kXdpGeneric};
  static constexpr std::array kTcIngressOnly = {AttachMode::kTcIngress};
  switch (attach) {
    case EbpfAttach::kXdpDriver:
      return kXdpDriverOnly;
    case EbpfAttach::kXdpGeneric:
      return kXdpGenericOnly;
    case EbpfAttach::kTcIngress:
      return kTcIngressOnly;
    case EbpfAttach::kAuto:
      break;
  }
  return kDefaultAttachOrder;
}

}  // namespace

BpfFilterConfig filter_config(std::uint16_t discovery_port, bool allow_fragments,
                              const SecurityConfig& s) {
  BpfFilterConfig f;
  f.pass_fragments = allow_fragments;
  f.port_low = wire::kMinPort;
  f.port_high = wire::kMaxPort;
  f.discovery_port = discovery_port;
  // A peer may burst a tenth of a second above its rate (at least 64 datagrams).
  f.data_per_source = rate(s.peer_rate_limit_packets_per_second,
                           std::max<std::uint64_t>(s.peer_rate_limit_packets_per_second / 10, 64));
  // Unauthenticated traffic to the discovery port: per source as the
  // responder's own limit, and in total ten times the public-key work budget
  // (the responder turns away what it cannot afford cheaply, with cookies).
  f.discovery_per_source =
      rate(s.rate_limit_packets_per_second, 2 * std::uint64_t{s.rate_limit_packets_per_second});
  const std::uint64_t total =
      std::max<std::uint64_t>(10 * std::uint64_t{s.discovery_work_per_second}, s.rate_limit_packets_per_second);
  f.discovery_total = rate(total, 2 * total);
  return f;
}

std::uint32_t valid_port_capacity(const Config& config) {
  // Every connection (and each session's connection 0, 64 sessions assumed) at
  // the largest delay allowance a peer may advertise: 2 * 16 + 1 windows, plus
  // one for the window arriving while the leaving one is still there. Past the
  // cap, the map narrows the farthest windows (update_valid_ports).
  const std::uint64_t per_connection = 2 * std::uint64_t{wire::kDelayAllowanceMax} + 2;
  const std::uint64_t wanted = (std::uint64_t{config.security.max_connections} + 64) * per_connection;
  return static_cast<std::uint32_t>(std::clamp<std::uint64_t>(wanted, BW_VALID_PORTS_DEFAULT, 1u << 20));
}

SysResult<std::vector<std::string>> underlay_interfaces(const Config& config, Netlink& netlink) {
  std::vector<std::string> names;
  if (!config.network.interface.empty()) {
    names.push_back(config.network.interface);
    return names;
  }
  for (const PeerConfig& p : config.peers) {
    if (!p.endpoint) continue;
    if (auto route = netlink.route_to(p.endpoint->ip)) add_unique(names, route->interface);
  }
  auto links = netlink.links();
  if (!links) return std::unexpected(links.error());
  const IpAddress& listen = config.network.listen_address;
  if (!listen.is_unspecified()) {
    for (const LinkInfo& link : *links) {
      auto addresses = netlink.addresses(link.ifindex);
      if (!addresses) continue;
      for (const Cidr& a : *addresses) {
        if (a.address.unmapped() == listen.unmapped()) add_unique(names, link.name);
      }
    }
  }
  if (!names.empty()) return names;
  for (const LinkInfo& link : *links) {
    if ((link.flags & IFF_UP) == 0 || (link.flags & IFF_LOOPBACK) != 0) continue;
    if (link.name == config.network.virtual_device) continue;
    add_unique(names, link.name);
  }
  return names;
}

SysResult<std::unique_ptr<KernelEbpfPath>> KernelEbpfPath::start(
    const Config& config, const std::vector<std::string>& interfaces, EventLoop& loop,
    std::uint32_t workers) {
  if (!config.network.ebpf) return sys_fail_plain(0, "[network] ebpf = false");
  // EbpfPrograms::load probes what the kernel supports, once.
  if (interfaces.empty()) {
    return sys_fail_plain(ENODEV, "no underlay interface to attach the frame filter to");
  }
  BpfLoadOptions options;
  options.max_valid_ports = valid_port_capacity(config);
  options.workers = workers;
  auto path = EbpfPrograms::load(filter_config(config), options);
  if (!path) {
    std::string why = "the eBPF filter did not load: " + path.error().message;
    // The verifier's wording when CAP_BPF is there but CAP_PERFMON is not.
    if (why.find("for !root") != std::string::npos) why += " (give the daemon CAP_PERFMON too)";
    return sys_fail_plain(path.error().sys_errno, why);
  }
  std::string failures;
  for (const std::string& name : interfaces) {
    auto attached = (*path)->attach_interface(name, attach_order(config.network.ebpf_attach));
    if (!attached) {
      spdlog::warn("eBPF: the frame filter cannot attach to {}: {}", name, attached.error().message);
      failures += (failures.empty() ? "" : "; ") + name + ": " + attached.error().message;
    }
  }
  if ((*path)->attachments().empty()) {
    return sys_fail_plain(ENODEV, "the frame filter attached to no interface (" + failures + ")");
  }
  std::unique_ptr<KernelEbpfPath> filter(
      new KernelEbpfPath(std::move(*path), loop, config.network.discovery_port,
                         config.network.ebpf_allow_fragments, workers));
  auto watched = loop.watch_fd(filter->path_->events_fd(), kReadable,
                               [f = filter.get()](std::uint32_t) { f->on_events(); });
  if (!watched) return sys_fail_plain(watched.error().sys_errno, "cannot watch the security-event ring: " + watched.error().message);
  filter->watching_events_ = true;
  return filter;
}

// One worker's EbpfPath: its sets, merged by the shared path.
class KernelEbpfPath::View final : public EbpfPath {
 public:
  View(KernelEbpfPath& shared, std::uint32_t worker) : shared_(shared), worker_(worker) {}

  SysResult<void> steer_to(DatagramSocket& socket) override {
    std::lock_guard lock(shared_.mutex_);
    if (auto r = shared_.path_->steer_to_socket(socket.fd(), worker_); !r) return r;
    return shared_.path_->attach_socket_filter(socket.fd());
  }
  SysResult<std::chrono::nanoseconds> set_valid_ports(const std::vector<ValidPort>& ports) override {
    return shared_.write_valid_ports(worker_, ports);
  }
  SysResult<void> set_own_ports(const std::vector<std::uint16_t>& ports) override {
    return replace(&WorkerSets::own_ports, ports,
                   [&](const auto& all) { return shared_.path_->set_owned_ports(all); });
  }
  SysResult<void> set_peer_sources(const std::vector<IpAddress>& sources) override {
    return replace(&WorkerSets::peer_sources, sources,
                   [&](const auto& all) { return shared_.path_->set_served_peer_sources(all); });
  }
  SysResult<void> set_tun_routes(const std::vector<Cidr>& prefixes) override {
    return replace(&WorkerSets::tun_routes, prefixes,
                   [&](const auto& all) { return shared_.path_->set_tun_routes(all); });
  }
  SysResult<void> set_limits(const SecurityConfig& security) override {
    return shared_.set_limits(security);
  }
  bool filters_before_gro() const override { return shared_.filters_before_gro(); }
  bool set_nat_rule(const SocketAddress& source, const SocketAddress& destination,
                    const SocketAddress& new_source, const SocketAddress& new_destination) override {
    // Rules are per flow (each worker's flows have their own 4-tuples), and
    // a map element is written atomically: no lock.
    if (!shared_.path_->tun_nat_attached()) return false;
    auto r = shared_.path_->set_nat_rule(source, destination, new_source, new_destination);
    if (!r && !nat_warned_) {
      nat_warned_ = true;
      spdlog::warn("stream NAT in the kernel: {}; such flows' segments go through the daemon's NAT "
                   "instead (said once per worker)", r.error().message);
    }
    return r.has_value();
  }
  void erase_nat_rule(const SocketAddress& source, const SocketAddress& destination) override {
    if (!shared_.path_->tun_nat_attached()) return;
    if (auto r = shared_.path_->erase_nat_rule(source, destination); !r) {
      spdlog::warn("stream NAT in the kernel: {}", r.error().message);
    }
  }

 private:
  // Replaces this worker's set `member` and writes the union of every
  // worker's, each item with the worker that holds it.
  template <typename T, typename Write>
  SysResult<void> replace(std::vector<T> WorkerSets::*member, const std::vector<T>& items,
                          Write write) {
    std::lock_guard lock(shared_.mutex_);
    shared_.sets_[worker_].*member = items;
    std::vector<std::pair<T, std::uint16_t>> all;
    for (std::uint32_t w = 0; w < shared_.sets_.size(); ++w) {
      for (const T& item : shared_.sets_[w].*member) all.emplace_back(item, static_cast<std::uint16_t>(w));
    }
    return write(all);
  }

  KernelEbpfPath& shared_;
  std::uint32_t worker_;
  bool nat_warned_ = false;
};

KernelEbpfPath::KernelEbpfPath(std::unique_ptr<EbpfPrograms> path, EventLoop& loop,
                               std::uint16_t discovery_port, bool allow_fragments,
                               std::uint32_t workers)
    : path_(std::move(path)),
      sets_(workers),
      discovery_port_(discovery_port),
      allow_fragments_(allow_fragments),
      loop_(loop),
      events_log_(5, seconds(10)) {
  for (std::uint32_t w = 0; w < workers; ++w) views_.push_back(std::make_unique<View>(*this, w));
}

EbpfPath& KernelEbpfPath::worker(std::uint32_t w) {
  return *views_.at(w);
}

SysResult<void> KernelEbpfPath::set_limits(const SecurityConfig& security) {
  std::lock_guard lock(mutex_);
  return path_->set_config(filter_config(discovery_port_, allow_fragments_, security));
}

KernelEbpfPath::~KernelEbpfPath() {
  if (watching_events_) loop_.unwatch_fd(path_->events_fd());
}

SysResult<std::chrono::nanoseconds> KernelEbpfPath::write_valid_ports(
    std::uint32_t w, const std::vector<ValidPort>& ports) {
  std::lock_guard lock(mutex_);
  SysResult<std::chrono::nanoseconds> r;
  std::size_t wanted = ports.size();
  if (sets_.size() == 1) {
    r = path_->update_valid_ports(ports);
  } else {
    std::vector<ValidPort>& mine = sets_[w].valid;
    mine = ports;
    for (ValidPort& p : mine) p.worker = static_cast<std::uint16_t>(w);
    std::vector<ValidPort> all;
    for (const WorkerSets& s : sets_) all.insert(all.end(), s.valid.begin(), s.valid.end());
    wanted = all.size();
    r = path_->update_valid_ports(all);
  }
  // Said once when it starts and once when it ends, not every window.
  const std::size_t trimmed = path_->valid_ports_trimmed();
  if (trimmed != 0 && !trimming_) {
    spdlog::warn("eBPF: the valid-port map holds {} pairs and {} are valid now; the {} farthest "
                 "from the current windows are left out (large delay allowances narrow to what "
                 "fits; raise [security] max_connections to size the map larger)",
                 path_->valid_port_count(), wanted, trimmed);
  } else if (trimmed == 0 && trimming_) {
    spdlog::info("eBPF: every valid pair fits in the valid-port map again");
  }
  trimming_ = trimmed != 0;
  return r;
}

bool KernelEbpfPath::filters_before_gro() const {
  // Driver XDP runs on each frame before the NAPI poll hands it to GRO;
  // generic XDP and TC ingress see what GRO made of the frames.
  const auto attachments = path_->attachments();
  return std::ranges::all_of(attachments, [](const InterfaceAttachment& a) {
    return a.mode == AttachMode::kXdpDriver;
  });
}

std::string KernelEbpfPath::where() const {
  std::string out;
  std::string reasons;
  for (const InterfaceAttachment& a : path_->attachments()) {
    out += (out.empty() ? "" : ", ") + std::string(attach_mode_name(a.mode)) + " on " + a.interface;
    if (!a.fallback_reason.empty()) {
      reasons += (reasons.empty() ? "" : "; ") + a.interface + ": " + a.fallback_reason;
    }
  }
  if (!reasons.empty()) out += " (" + reasons + ")";
  return out;
}

std::optional<std::array<std::uint64_t, BW_NAT_COUNTER_COUNT>> KernelEbpfPath::nat_counters() const {
  auto c = path_->nat_counters();
  if (!c) return std::nullopt;
  return *c;
}

std::optional<BpfCounters> KernelEbpfPath::counters() const {
  auto c = path_->counters();
  if (!c) return std::nullopt;
  return *c;
}

void KernelEbpfPath::log_counters() const {
  auto c = path_->counters();
  if (!c) {
    spdlog::warn("eBPF counters unavailable: {}", c.error().message);
    return;
  }
  for (BpfHook hook : kHooks) {
    std::string line;
    std::uint64_t seen = 0;
    for (BpfCounter counter : kVerdicts) {
      const std::uint64_t v = c->get(hook, counter);
      seen += v;
      line += fmt::format(" {}={}", bpf_counter_name(counter), v);
    }
    if (seen == 0) continue;  // a hook not in use here (TC where XDP attached)
    spdlog::info("eBPF counters {}:{}", bpf_hook_name(hook), line);
  }
  // Run times exist only while the kernel collects them (kernel.bpf_stats_enabled).
  for (BpfHook hook : kHooks) {
    auto stats = path_->run_stats(hook);
    if (!stats || stats->runs == 0) continue;
    spdlog::info("eBPF program {}: {} runs timed by the kernel, {:.0f} ns each on average",
                 bpf_hook_name(hook), stats->runs,
                 static_cast<double>(stats->run_time_ns) / static_cast<double>(stats->runs));
  }
  if (events_ != 0) spdlog::info("eBPF: {} security events read from the kernel", events_);
}

std::string KernelEbpfPath::summary() const {
  auto c = path_->counters();
  if (!c) return "kernel filter counters unavailable";
  std::uint64_t malformed = 0;
  std::uint64_t over_rate = 0;
  for (BpfCounter k : kMalformed) malformed += c->total(k);
  for (BpfCounter k : kOverRate) over_rate += c->total(k);
  const std::uint64_t bad_port = c->total(BpfCounter::kDropBadPort);
  const std::uint64_t fragments =
      c->total(BpfCounter::kDropFragment) + c->total(BpfCounter::kDropFragmentTail);
  return fmt::format("kernel dropped {} (bad port {}, malformed {}, over rate {}, fragments {})",
                     bad_port + malformed + over_rate + fragments, bad_port, malformed, over_rate,
                     fragments);
}

void KernelEbpfPath::on_events() {
  const TimePoint now = loop_.now();
  auto drained = path_->drain_events([&](const SecurityEvent& e) {
    ++events_;
    if (audit_ != nullptr) {
      // The kernel thins these to one per source and gap; the drops it did
      // not report before this one are in e.suppressed.
      audit_->count("filter_drop", e.source, bpf_counter_name(e.reason), 1 + e.suppressed);
    }
    const std::string key = fmt::format("bpf.{}", bpf_counter_name(e.reason));
    const std::string on = e.ifindex != 0 ? " on " + interface_name(e.ifindex) : std::string();
    const std::string earlier =
        e.suppressed != 0 ? fmt::format(" ({} earlier from this source not reported)", e.suppressed)
                          : std::string();
    // The type byte is in the clear, so a drop says what it was (a late ACK,
    // a SYN too early): the daemon's own traffic or a stranger's.
    const std::string type =
        wire::is_known_type(e.packet_type)
            ? std::string(wire::packet_type_name(static_cast<wire::PacketType>(e.packet_type))) + " "
            : std::string();
    events_log_.log(now, key, spdlog::level::warn, "security: {} dropped a {}datagram from {}:{} to port {}{}: {}{}",
                    bpf_hook_name(e.hook), type, e.source.to_string(), e.source_port, e.destination_port, on,
                    bpf_counter_name(e.reason), earlier);
  });
  if (!drained) {
    events_log_.log(now, "bpf.ring", spdlog::level::warn, "eBPF: cannot read security events: {}",
                    drained.error().message);
  }
  events_log_.flush(now);
}

void KernelEbpfPath::count_unreported() {
  on_events();
  if (audit_ == nullptr) return;
  std::uint64_t total = 0;
  auto taken = path_->take_unreported([&](const IpAddress& source, BpfCounter reason, std::uint64_t n) {
    audit_->count("filter_drop", source, bpf_counter_name(reason), n);
    total += n;
  });
  if (!taken) {
    spdlog::warn("eBPF: the drops not yet reported are missing from the audit log: {}",
                 taken.error().message);
  } else if (*taken != 0) {
    spdlog::info("eBPF: {} drops from {} sources not yet reported go to the audit log", total, *taken);
  }
}

}  // namespace buckwild::daemon

#include "daemon/run_daemon.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <cstdlib>
#include <cstring>

#include "core/crypto/random.h"
#include "core/wire/messages.h"
#include "daemon/config/config_watch.h"
#include "daemon/control/control_server.h"
#include "daemon/control/metrics_server.h"
#include "daemon/control/prometheus.h"
#include "daemon/control/reload.h"
#include "daemon/control/status.h"
#include "daemon/os/clock.h"
#include "daemon/os/random_seeded.h"
#include "daemon/os/event_loop.h"
#include "daemon/ebpf/kernel_ebpf_path.h"
#include "daemon/log/logging.h"
#include "daemon/net/netlink.h"
#include "daemon/net/tun_device.h"
#include "daemon/time/disciplined_clock.h"
#include "daemon/time/ntp_client.h"
#include "daemon/tunnel/aead_choice.h"
#include "daemon/tunnel/tunnel.h"
#include "daemon/workers/workers.h"
#include "daemon/net/udp_socket.h"
#include "daemon/net/tcp_endpoints.h"
#include "daemon/log/attack_watch.h"
#include "daemon/snmp/snmp_agent.h"

namespace buckwild::daemon {
namespace {

// A control reply or a log line from JSON that may hold text from outside
// (paths, interface names, libbpf's messages): invalid UTF-8 is replaced, never thrown.
std::string dump_line(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// sd_notify(3) without linking libsystemd: one datagram to $NOTIFY_SOCKET.
void notify_systemd(const char* state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::size_t len = std::strlen(path);
  if (len >= sizeof addr.sun_path) return;
  std::memcpy(addr.sun_path, path, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  (void)::sendto(fd, state, std::strlen(state), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
                 static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len));
  ::close(fd);
}

// The TUN MTU: configured, or the underlay's minus our overhead (IP, UDP and
// 60 bytes of Buckwild header and tag).
std::uint32_t choose_mtu(const Config& config, Netlink& nl) {
  if (config.network.mtu != 0) {
    return std::min<std::uint32_t>(config.network.mtu, static_cast<std::uint32_t>(wire::kMaxBodySize));
  }
  std::uint32_t underlay = 1500;
  bool v6 = false;
  if (!config.network.interface.empty()) {
    v6 = config.network.listen_address.is_v6() && !config.network.listen_address.is_v4_mapped();
    if (auto idx = Netlink::ifindex(config.network.interface)) {
      if (auto link = nl.link(*idx)) underlay = link->mtu;
    }
  } else {
    for (const PeerConfig& p : config.peers) {
      if (!p.endpoint) continue;
      v6 = p.endpoint->ip.is_v6();
      auto route = nl.route_to(p.endpoint->ip);
      if (!route) continue;
      if (auto link = nl.link(route->ifindex)) {
        underlay = link->mtu;
        spdlog::info("underlay: {} (mtu {}), the interface that routes to {}", link->name, link->mtu,
                     p.name);
      }
      break;
    }
  }
  const std::uint32_t overhead = (v6 ? 40 : 20) + 8 + static_cast<std::uint32_t>(wire::kOverhead);
  // Never more than one sealed datagram can carry (kMaxBodySize).
  const std::uint32_t limit = static_cast<std::uint32_t>(wire::kMaxBodySize);
  const std::uint32_t mtu = underlay > overhead + 576 ? underlay - overhead : 576;
  return std::min(mtu, limit);
}

// Each transparent TCP flow holds a socket, and on the user-space receive path
// each connection's hopping ports are sockets too: the usual soft limit of
// 1024 descriptors would cap us at a few hundred connections.
constexpr std::uint32_t kTunQueueLength = 8192;

void raise_descriptor_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur >= r.rlim_max) return;
  const rlim_t before = r.rlim_cur;
  r.rlim_cur = r.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &r) == 0) {
    spdlog::debug("descriptor limit raised from {} to {}", before, r.rlim_cur);
  }
}

// The eBPF path if it can run here, or why not (for the start-up log).
SysResult<std::unique_ptr<KernelEbpfPath>> start_ebpf_path(const Config& config, Netlink& nl,
                                                           EventLoop& loop, std::uint32_t workers) {
  std::vector<std::string> interfaces;
  if (config.network.ebpf) {
    auto found = underlay_interfaces(config, nl);
    if (!found) {
      return sys_fail_plain(found.error().sys_errno,
                            "cannot find the underlay interfaces: " + found.error().message);
    }
    interfaces = std::move(*found);
  }
  return KernelEbpfPath::start(config, interfaces, loop, workers);
}

}  // namespace

int run_daemon(std::unique_ptr<Config> owned, Environment env) {
  // The start-up configuration; from the Reloader on, reloader.config() (a reload frees this one).
  const Config* config = owned.get();
  auto logging = Logging::start(config->logging);
  if (!logging) {
    spdlog::error("{}", logging.error().message);
    return 1;
  }
  if (config->testing.clock_offset_ms != 0) {
    spdlog::warn("testing.clock_offset_ms = {}: this daemon's clock is deliberately skewed (a test aid)",
                 config->testing.clock_offset_ms);
  }
  if (auto seeded = check_random_seeded(); !seeded) {
    spdlog::error("{}", seeded.error().message);
    return 1;
  }
  auto loop = EpollEventLoop::create();
  if (!loop) {
    spdlog::error("event loop: {}", loop.error().message);
    return 1;
  }
  auto nl = Netlink::open();
  if (!nl) {
    spdlog::error("netlink: {}", nl.error().message);
    return 1;
  }
  const std::uint32_t mtu = choose_mtu(*config, *nl);
  raise_descriptor_limit();
  // Multi-queue when more than one worker may serve it (workers/workers.h).
  const std::uint32_t wanted = wanted_workers(*config);
  auto tun = LinuxTunDevice::open(config->network.virtual_device, config->network.tun_offload, wanted);
  if (!tun) {
    spdlog::error("cannot create the virtual interface {}: {}", config->network.virtual_device,
                  tun.error().message);
    return 1;
  }
  const int ifindex = (*tun)->ifindex();
  auto configure = [&]() -> SysResult<void> {
    // The TUN queue holds what the kernel sends us while we are busy; in stream
    // mode every application segment crosses it twice, and the default of 500
    // packets overflows under a few hundred busy connections (each overflow is
    // a loss the local TCP must recover from).
    if (auto r = nl->set_link(ifindex, mtu, Netlink::LinkState::kUp, kTunQueueLength); !r) return r;
    if (auto r = nl->add_address(ifindex, config->network.virtual_address); !r) return r;
    if (config->network.virtual_address6) {
      if (auto r = nl->add_address(ifindex, *config->network.virtual_address6); !r) return r;
    }
    for (const PeerConfig& p : config->peers) {
      for (const Cidr& route : p.routes) {
        if (auto r = nl->add_route(ifindex, route.network()); !r) return r;
      }
    }
    return {};
  };
  if (auto r = configure(); !r) {
    spdlog::error("cannot configure {}: {}", (*tun)->name(), r.error().message);
    return 1;
  }
  spdlog::info("virtual interface {} up: {}{}, mtu {}", (*tun)->name(),
               config->network.virtual_address.to_string(),
               config->network.virtual_address6 ? ", " + config->network.virtual_address6->to_string() : "",
               mtu);
  spdlog::info("virtual interface {}: TUN offloads {}", (*tun)->name(), (*tun)->offload_mode());

  // Our own time (docs/architecture.md "Time"): with NTP, the monotonic clock
  // plus the NTP client's correction; without, the system clock.
  DisciplinedClock clock(!config->ntp.enabled, config->testing.clock_offset_ms,
                         config->testing.clock_drift_ppm);
  if (config->testing.clock_drift_ppm != 0) {
    spdlog::warn("testing.clock_drift_ppm = {}: this daemon's clock deliberately drifts (a test aid)",
                 config->testing.clock_drift_ppm);
  }
  crypto::SystemRandom rng;
  KernelTcpEndpoints tcp;
  begin_aead_measurement(config->crypto);  // "auto": measured while the eBPF programs load
  auto ebpf = start_ebpf_path(*config, *nl, **loop, wanted);
  std::string why_not = ebpf ? "" : ebpf.error().message;
  SocketFactory factory = [offload = config->network.udp_offload](
                              const SocketAddress& at) -> SysResult<std::unique_ptr<DatagramSocket>> {
    UdpSocketOptions options{.bind_address = at, .offload = offload};
    auto s = UdpSocket::bind(options);
    if (!s) return std::unexpected(s.error());
    return std::unique_ptr<DatagramSocket>(std::move(*s));
  };
  // The tunnel stops the daemon when it cannot go on (its TUN device failed);
  // the exit status says so, and systemd restarts us.
  bool failed = false;
  auto on_fatal = [&](const SysError&) {
    failed = true;
    (*loop)->stop();
  };
  // The audit trail: the audit log in use now (a reload may switch it).
  SecurityAudit audit(**loop, [&] { return (*logging)->audit(); });
  // With NTP, discovery waits for a majority of servers (at most
  // ntp.validation_timeout_ms), so sessions begin on validated time.
  std::unique_ptr<NtpClient> ntp;
  if (config->ntp.enabled) {
    ntp = std::make_unique<NtpClient>(config->ntp, NtpClientDeps{**loop, clock, factory, rng, &audit});
    ntp->start();
    const TimePoint until = (*loop)->now() + milliseconds(config->ntp.validation_timeout_ms);
    while (!ntp->synchronized() && (*loop)->now() < until) {
      if (auto r = (*loop)->run_once(until - (*loop)->now()); !r) break;
    }
    if (!ntp->synchronized()) {
      spdlog::warn("time: no majority of NTP servers agreed within {} ms "
                   "(ntp.validation_timeout_ms); starting on the system clock",
                   config->ntp.validation_timeout_ms);
    }
  }
  // Started further down, once there is a status document to serve; the
  // tunnel's events become its notifications from then on.
  std::unique_ptr<snmp::SnmpAgent> snmp_agent;
  auto on_event = [&](const TunnelEvent& e) {
    if (!snmp_agent || e.peer.empty() || e.peer.size() > snmp::kMaxPeerNameLength) return;
    snmp::SnmpNotification n;
    n.kind = e.kind == TunnelEvent::Kind::kSessionUp     ? snmp::Notification::kSessionUp
             : e.kind == TunnelEvent::Kind::kSessionDown ? snmp::Notification::kSessionDown
                                                         : snmp::Notification::kRecoveryFailed;
    n.peer = e.peer;
    n.established = e.kind == TunnelEvent::Kind::kSessionUp;
    if (e.session_id != 0) n.session_id = fmt::format("{:08x}", e.session_id >> 32);
    n.endpoint = e.endpoint;
    n.reason = e.reason;
    snmp_agent->notify(std::move(n));
  };
  // The workers' sockets share their ports when there are several: sk_lookup
  // picks each datagram's (network.udp_offload as for the NTP client's).
  auto worker_env = [&](KernelEbpfPath* path) {
    const bool shared = path != nullptr && path->workers() > 1;
    SocketFactory bind = [offload = config->network.udp_offload, shared](const SocketAddress& at)
        -> SysResult<std::unique_ptr<DatagramSocket>> {
      auto s = UdpSocket::bind({.bind_address = at, .offload = offload, .reuse_port = shared});
      if (!s) return std::unexpected(s.error());
      return std::unique_ptr<DatagramSocket>(std::move(*s));
    };
    return WorkerEnvironment{config, mtu, &clock, &rng, std::move(bind), path,
                             loop->get(), &audit, &tcp, on_event, on_fatal};
  };
  std::unique_ptr<KernelEbpfPath> ebpf_path = ebpf ? std::move(*ebpf) : nullptr;
  if (ebpf_path && config->protocol.tcp_mode == TcpMode::kStream) {
    if (auto nat = ebpf_path->attach_tun_nat((*tun)->ifindex()); nat) {
      spdlog::info("stream NAT: in the kernel (TC egress on {}): flows' segments other than SYN and RST "
                   "skip the daemon", (*tun)->name());
    } else {
      spdlog::warn("stream NAT: in the daemon, every segment through it: {}", nat.error().message);
    }
  }
  log_aead_choice(config->crypto);  // waits for the measurement, before the tunnel asks
  auto workers = Workers::start(**tun, ebpf_path ? ebpf_path->workers() : 1, worker_env(ebpf_path.get()));
  if (!workers && ebpf_path) {
    why_not = "the eBPF path failed to start: " + workers.error().message;
    ebpf_path.reset();
    workers = Workers::start(**tun, 1, worker_env(nullptr));
  }
  if (ebpf_path) {
    spdlog::info("receive path: eBPF (frame filter: {}; every valid hopping port steered to its "
                 "worker's socket by sk_lookup; socket filter on it)",
                 ebpf_path->where());
  } else {
    spdlog::info("receive path: user space (one socket per valid hopping port, rotated every 250 ms) "
                 "because {}",
                 why_not);
    // Without a frame filter the kernel reassembles fragments for every
    // socket, ours included: the setting that would drop them has nothing to do.
    if (!config->network.ebpf_allow_fragments) {
      spdlog::info("IP fragments to the hopping ports reach the kernel's reassembly: only the eBPF "
                   "path drops them ([network] ebpf_allow_fragments)");
    }
  }
  if (!workers) {
    spdlog::error("{}", workers.error().message);
    return 1;
  }
  if (wanted > 1 && !ebpf_path) {
    spdlog::warn("workers: 1, not {} ([network] workers): several need the eBPF receive path, "
                 "which steers each datagram to its worker's socket",
                 wanted);
  }
  (*workers)->set_audit_enabled(audit.enabled());

  if (ntp) ntp->set_on_step([&](std::int64_t step_us) { (*workers)->on_clock_step(step_us); });

  // From here on the configuration in force is the Reloader's.
  Reloader reloader(std::move(owned), std::move(env),
                    Reloader::Deps{**workers, **logging, *nl, ifindex, clock, &audit});
  config = nullptr;
  if (ebpf_path) ebpf_path->set_audit(&audit);
  DaemonFacts facts;
  facts.started = (*loop)->now();
  if (ebpf_path) facts.ebpf_detail = ebpf_path->where();
  if (!ebpf_path) facts.ebpf_why_not = why_not;
  std::unique_ptr<ControlServer> control;
  auto status = [&] {
    nlohmann::json doc = daemon_status(**workers, ebpf_path.get(), reloader, facts, (*loop)->now());
    doc["time"] = ntp ? ntp->status() : system_time_status();
    if (control) {
      const ControlStats& c = control->stats();
      doc["control"] = {{"clients", control->clients()},
                        {"clients_accepted", c.clients_accepted},
                        {"clients_refused", c.clients_refused},
                        {"clients_dropped_slow", c.clients_dropped_slow},
                        {"clients_timed_out", c.clients_timed_out},
                        {"requests", c.requests},
                        {"bad_requests", c.bad_requests}};
    }
    if (snmp_agent) {
      const snmp::SnmpAgentStats s = snmp_agent->stats();
      doc["snmp"] = {{"notifications_sent", s.notifications_sent},
                     {"notifications_dropped", s.notifications_dropped},
                     {"writes_applied", s.writes_applied},
                     {"writes_refused", s.writes_refused}};
    }
    return doc;
  };
  SysResult<std::unique_ptr<ConfigWatch>> watch = std::unique_ptr<ConfigWatch>();
  if (reloader.config().control.reload_on_change) {
    watch = ConfigWatch::start(**loop, reloader.config().source_path,
                               [&] { (void)reloader.reload("a change to the file"); });
  }
  if (!watch) {
    spdlog::warn("the configuration file is not watched for changes ({}); reload with SIGHUP or "
                 "buckwild reload",
                 watch.error().message);
  }

  // The Prometheus endpoint: libmicrohttpd's own thread, a snapshot made on
  // this one per scrape.
  std::unique_ptr<MetricsServer> metrics;
  if (const auto& listen = reloader.config().metrics.listen) {
    auto m = MetricsServer::start(**loop, *listen, [&] {
      const nlohmann::json doc = status();
      return render_prometheus(std::span(&doc, 1));
    });
    if (!m) {
      spdlog::error("{}", m.error().message);
      return 1;
    }
    metrics = std::move(*m);
    spdlog::info("metrics: http://{}/metrics", metrics->address().to_string());
  }

  // The AgentX subagent: net-snmp on its own thread, a snapshot made on this
  // one when it asks, its writes checked and applied here.
  auto snmp_write = [&](const snmp::SnmpWrite& w) {
    snmp::SnmpWriteResult r;
    for (const auto& [name, up] : w.admin) {
      if (!(*workers)->admin_up(name)) {
        r.error = "no [[peer]] called " + name;
        spdlog::error("SNMP SET refused: {}", r.error);
        return r;
      }
    }
    if (!w.settings.empty()) {
      // Before the change, for UndoSet.
      const Config& before = reloader.config();
      for (const auto& [key, value] : w.settings) {
        r.previous.settings.emplace_back(
            key, key == "logging.level" ? std::string(log_level_name(before.logging.level))
                                        : std::to_string(before.security.discovery_work_per_second));
      }
      nlohmann::json reply = reloader.set(w.settings, "an SNMP SET", nullptr, w.check_only);
      if (reply.value("ok", false) != true) {
        r.error = reply.value("error", std::string("refused"));
        return r;
      }
    }
    for (const auto& [name, up] : w.admin) {
      r.previous.admin.emplace_back(name, *(*workers)->admin_up(name));
      if (w.check_only) continue;
      (void)(*workers)->set_admin_up(name, up);
      audit.record("peer_admin_state", "notice",
                   {{"peer", name},
                    {"details", {{"admin_state", up ? "up" : "down"}, {"trigger", "an SNMP SET"}}}});
    }
    r.ok = true;
    return r;
  };
  if (const SnmpConfig& sc = reloader.config().snmp; sc.enabled) {
    snmp::SnmpAgentOptions options;
    options.agentx_socket = sc.agentx_socket;
    auto a = snmp::SnmpAgent::start(**loop, options, [&] { return status(); },
                                    [](bool warning, const std::string& message) {
                                      if (warning) {
                                        spdlog::warn("{}", message);
                                      } else {
                                        spdlog::info("{}", message);
                                      }
                                    },
                                    snmp_write);
    if (!a) {
      spdlog::error("{}", a.error().message);
      return 1;
    }
    snmp_agent = std::move(*a);
    spdlog::info("snmp: AgentX subagent for BUCKWILD-MIB, master at {}", sc.agentx_socket);
  }

  bool stopping = false;
  nlohmann::json stop_requester;  // who asked, when the control socket did
  TimePoint last_socket_reload = kNever;
  auto stop = [&](const char* why) {
    if (!stopping) {
      spdlog::info("{}: shutting down", why);
      nlohmann::json details = {{"trigger", why}};
      if (!stop_requester.is_null()) details["requester"] = stop_requester;
      audit.record("daemon_stopping", "info", {{"details", details}});
    }
    stopping = true;
    (*loop)->stop();
  };

  // The control socket (docs/control.md), last: a second daemon started with
  // this configuration has failed on its ports by now, with that reason.
  const ControlConfig& cc = reloader.config().control;
  // The client a control request came from, for the audit log.
  auto requester = [&]() -> nlohmann::json {
    if (!control || !control->requester()) return nullptr;
    const auto& r = *control->requester();
    return {{"pid", r.pid}, {"uid", r.uid}, {"gid", r.gid}};
  };
  auto served = ControlServer::create(
      **loop,
      ControlOptions{cc.socket, cc.group.empty() ? std::nullopt : std::optional<std::string>(cc.group), {}},
      {
          {"status",
           [&](std::string_view) {
             return ControlReply{dump_line({{"ok", true}, {"status", status()}}), {}};
           }},
          {"reload",
           [&](std::string_view) {
             // A reload re-reads the file and rewrites maps: pipelined or
             // repeated requests must not hold the loop, so one per 200 ms.
             const TimePoint t = (*loop)->now();
             if (last_socket_reload != kNever && t - last_socket_reload < milliseconds(200)) {
               return ControlReply{dump_line({{"ok", false},
                                              {"error", "a reload ran less than 200 ms ago; try again"}}),
                                   {}};
             }
             last_socket_reload = t;
             return ControlReply{dump_line(reloader.reload("the control socket", requester())), {}};
           }},
          {"rekey",
           [&](std::string_view request) {
             const std::size_t space = request.find(' ');
             if (space == std::string_view::npos) {
               return ControlReply{
                   dump_line({{"ok", false}, {"error", "rekey needs a peer: rekey PEER"}}), {}};
             }
             const std::string_view who = request.substr(space + 1);
             nlohmann::json reply = (*workers)->request_rekey(who);
             if (reply.value("ok", false)) {
               audit.record("rekey_requested", "info",
                            {{"details", {{"peer", reply["rekey"]["peer"]},
                                          {"session_id", reply["rekey"]["session"]},
                                          {"requester", requester()}}}});
             }
             return ControlReply{dump_line(reply), {}};
           },
           true},
          {"stop",
           [&](std::string_view) {
             return ControlReply{dump_line({{"ok", true}, {"stop", "shutting down"}}),
                                 [&, who = requester()] {
                                   if (!stopping) stop_requester = who;
                                   stop("buckwild stop");
                                 }};
           }},
      });
  if (!served) {
    spdlog::error("control socket: {}", served.error().message);
    return 1;
  }
  control = std::move(*served);
  spdlog::info("control socket: {} (buckwild status, reload, rekey, stop)", control->path());
  (void)(*loop)->watch_signal(SIGINT, [&](int) { stop("SIGINT"); });
  (void)(*loop)->watch_signal(SIGTERM, [&](int) { stop("SIGTERM"); });
  (void)(*loop)->watch_signal(SIGHUP, [&](int) {
    // Log files are reopened whatever the reload's outcome (logrotate).
    if (auto r = (*logging)->reopen(); !r) spdlog::warn("log reopen: {}", r.error().message);
    spdlog::info("SIGHUP: logs reopened; reloading {}", reloader.config().source_path);
    (void)reloader.reload("SIGHUP");
  });
  (void)(*loop)->watch_signal(SIGUSR2, [&](int) {
    // logrotate's: the log files only, the configuration untouched.
    if (auto r = (*logging)->reopen(); !r) spdlog::warn("log reopen: {}", r.error().message);
    spdlog::info("SIGUSR2: logs reopened");
  });
  (void)(*loop)->watch_signal(SIGPIPE, [](int) {});
  (void)(*loop)->watch_signal(SIGUSR1, [&](int) {
    spdlog::info("SIGUSR1: counters follow");
    log_stats((*workers)->status(), ebpf_path.get());
    if (spdlog::should_log(spdlog::level::debug)) spdlog::debug("status: {}", dump_line(status()));
  });
  const TimerId status_timer = (*loop)->add_periodic_timer(seconds(10), [&] {
    notify_systemd(("STATUS=" + status_line((*workers)->status(), ebpf_path.get())).c_str());
  });
  // Attack detection (log/attack_watch.h), sampled every second.
  auto thresholds = [&] {
    const SecurityConfig& s = reloader.config().security;
    return AttackWatch::Thresholds{s.attack_filter_drops_per_second,
                                   s.attack_discovery_refusals_per_second};
  };
  AttackWatch attack_watch(thresholds());
  const TimerId attack_timer = (*loop)->add_periodic_timer(seconds(1), [&] {
    attack_watch.set_thresholds(thresholds());  // a reload may have changed them
    for (const AttackWatch::Change& c :
         attack_watch.sample((*loop)->now(), attack_totals(**workers, ebpf_path.get()))) {
      const std::string_view what = AttackWatch::name(c.kind);
      if (c.started) {
        spdlog::warn("attack detected: {} at {}/s, over the threshold of {}/s", what, c.rate,
                     c.threshold);
      } else {
        spdlog::info("attack over: {} under {}/s for {} s (peak {}/s)", what, c.threshold,
                     AttackWatch::kQuietSamples, c.rate);
      }
      audit.record(c.started ? "attack_detected" : "attack_ended", c.started ? "warning" : "notice",
                   {{"details", {{"kind", what}, {"rate_per_second", c.rate}, {"threshold", c.threshold}}}});
      if (c.started && snmp_agent) {
        snmp::SnmpNotification n;
        n.kind = snmp::Notification::kAttackDetected;
        n.attack_kind = static_cast<std::int32_t>(c.kind);
        n.rate = static_cast<std::uint32_t>(std::min<std::uint64_t>(c.rate, 0xffffffffu));
        n.threshold = c.threshold;
        snmp_agent->notify(std::move(n));
      }
    }
  });

  notify_systemd("READY=1\nSTATUS=running");
  auto ran = (*loop)->run();
  notify_systemd("STOPPING=1");
  (*loop)->cancel_timer(status_timer);
  (*loop)->cancel_timer(attack_timer);
  log_stats((*workers)->status(), ebpf_path.get());
  if (watch) watch->reset();
  snmp_agent.reset();
  metrics.reset();
  control.reset();  // the socket file goes: `buckwild stop` waits for that
  (*workers)->end_sessions("the daemon stopped");  // each end audited
  workers->reset();  // sessions and their keys go first, and the workers' threads
  if (ebpf_path) ebpf_path->count_unreported();  // the filter's drops it had not reported
  audit.flush();    // what was counted since the last interval
  ebpf_path.reset();  // then the eBPF programs (their links, TC filter, socket map)
  tun->reset();     // closing the descriptor removes the interface
  spdlog::info("stopped");
  if (!ran) {
    spdlog::error("event loop failed: {}", ran.error().message);
    return 1;
  }
  return failed ? 1 : 0;
}

}  // namespace buckwild::daemon

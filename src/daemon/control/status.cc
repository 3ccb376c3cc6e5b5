#include "daemon/control/status.h"

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/wire/messages.h"

namespace buckwild::daemon {

nlohmann::json daemon_status(Workers& workers, const KernelEbpfPath* ebpf, const Reloader& reloader,
                             const DaemonFacts& facts, TimePoint now) {
  using nlohmann::json;
  const Config& c = reloader.config();
  json out = {
      {"version", BUCKWILD_VERSION},
      {"protocol_version", static_cast<int>(wire::kVersion)},
      {"pid", static_cast<long>(::getpid())},
      {"device", c.network.virtual_device},
      {"config_file", c.source_path},
      {"uptime_ms", (now - facts.started) / 1000},
      {"tcp_mode", c.protocol.tcp_mode == TcpMode::kStream ? "stream" : "packet"},
      {"reloads", {{"applied", reloader.applied()}, {"refused", reloader.refused()}}},
      {"settings",
       {{"log_level", log_level_name(c.logging.level)},
        {"discovery_work_per_second", c.security.discovery_work_per_second}}},
      {"receive_path",
       {{"kind", ebpf != nullptr ? "ebpf" : "userspace"},
        {"detail", ebpf != nullptr ? json(facts.ebpf_detail) : json(nullptr)},
        {"why", ebpf != nullptr ? json(nullptr) : json(facts.ebpf_why_not)}}},
  };
  out["workers"] = workers.count();
  out.update(workers.status());
  if (ebpf != nullptr && out["ebpf"].is_object()) {
    json hooks = json::object();
    if (std::optional<BpfCounters> counters = ebpf->counters()) {
      for (std::size_t h = 0; h < kBpfHookCount; ++h) {
        json verdicts = json::object();
        for (std::size_t k = 0; k < kBpfCounterCount; ++k) {
          const std::uint64_t v = counters->get(static_cast<BpfHook>(h), static_cast<BpfCounter>(k));
          if (v != 0) verdicts[std::string(bpf_counter_name(static_cast<BpfCounter>(k)))] = v;
        }
        if (!verdicts.empty()) hooks[std::string(bpf_hook_name(static_cast<BpfHook>(h)))] = verdicts;
      }
    }
    out["ebpf"]["hooks"] = std::move(hooks);
    if (ebpf->tun_nat_attached()) {
      if (auto nat = ebpf->nat_counters()) {
        out["ebpf"]["stream_nat"] = {{"rewritten", (*nat)[BW_NAT_REWRITTEN]},
                                     {"to_daemon", (*nat)[BW_NAT_TO_DAEMON]},
                                     {"failed", (*nat)[BW_NAT_FAILED]}};
      }
    }
  }
  return out;
}

AttackWatch::Totals attack_totals(Workers& workers, const KernelEbpfPath* ebpf) {
  AttackWatch::Totals t;
  workers.for_each([&](Tunnel& tunnel, std::uint32_t) {
    const discovery::ResponderCounters& d = tunnel.discovery_counters();
    // Not `replayed`: mostly a CONFIRM our answer to was lost, sent again.
    t.discovery_refusals += d.malformed + d.stale + d.rate_limited + d.overloaded + d.no_shared_psk +
                            d.no_common_features + d.bad_cookie + d.bad_proof;
  });
  if (ebpf == nullptr) return t;
  if (std::optional<BpfCounters> counters = ebpf->counters()) {
    for (std::size_t h = 0; h < kBpfHookCount; ++h) {
      for (std::size_t k = 0; k < kBpfCounterCount; ++k) {
        if (!bpf_counter_name(static_cast<BpfCounter>(k)).starts_with("drop_")) continue;
        t.filter_drops += counters->get(static_cast<BpfHook>(h), static_cast<BpfCounter>(k));
      }
    }
  }
  return t;
}

void log_stats(const nlohmann::json& st, const KernelEbpfPath* ebpf) {
  const auto n = [&st](const char* group, const char* key) -> std::uint64_t {
    const auto g = st.find(group);
    if (g == st.end() || !g->is_object()) return 0;
    const auto v = g->find(key);
    return v != g->end() && v->is_number() ? v->get<std::uint64_t>() : 0;
  };
  spdlog::info(
      "counters: tun in {} out {}; datagrams sent {} received {}; sessions established {} lost {}; "
      "dropped: no route {}, not IP {}, unknown session {}, rejected {}, spoofed source {}, "
      "unsupported type {}, truncated {}, send errors {}, TUN read errors {}, TUN write errors {}, "
      "hopping ports unavailable {}",
      n("counters", "tun_packets_in"), n("counters", "tun_packets_out"), n("counters", "datagrams_sent"),
      n("counters", "datagrams_received"), n("counters", "sessions_established"),
      n("counters", "sessions_lost"), n("drops", "no_route"), n("drops", "not_ip"),
      n("drops", "no_session"), n("drops", "rejected"), n("drops", "spoofed_source"),
      n("drops", "unsupported_type"), n("drops", "truncated"), n("drops", "send_errors"),
      n("drops", "tun_read_errors"), n("drops", "tun_write_errors"), n("drops", "hop_port_bind_failures"));
  spdlog::info(
      "discovery: {} responses, {} sessions; silent to {} malformed, {} stale, {} rate-limited, "
      "{} over the work budget, {} without a shared PSK, {} without common features, {} bad "
      "cookies, {} bad proofs, {} replays",
      n("discovery", "responses"), n("discovery", "sessions"), n("discovery", "malformed"),
      n("discovery", "stale"), n("discovery", "rate_limited"), n("discovery", "overloaded"),
      n("discovery", "no_shared_psk"), n("discovery", "no_common_features"),
      n("discovery", "bad_cookie"), n("discovery", "bad_proof"), n("discovery", "replayed"));
  spdlog::info(
      "transparent TCP: {} opened here, {} accepted for the peer, {} refused ({} by limits), {} "
      "completed, {} reset; {} bytes up, {} down; {} segments rewritten; {} flows left; accept() "
      "paused {} times out of descriptors or memory, failed {} times",
      n("stream", "opened"), n("stream", "accepted"), n("stream", "refused"),
      n("stream", "limit_refusals"), n("stream", "completed"), n("stream", "resets"),
      n("stream", "bytes_up"), n("stream", "bytes_down"), n("stream", "rewritten"),
      n("stream", "flows"), n("stream", "accept_pauses"), n("stream", "accept_errors"));
  if (ebpf == nullptr) return;
  spdlog::info("eBPF path: {} valid (peer, port) pairs now; {} rewrites of them, {} failed",
               n("ebpf", "valid_ports"), n("ebpf", "valid_port_updates"),
               n("ebpf", "valid_port_update_failures"));
  ebpf->log_counters();
}

std::string status_line(const nlohmann::json& st, const KernelEbpfPath* ebpf) {
  const std::uint64_t sessions = st["counters"].value("sessions", std::uint64_t{0});
  std::string line = fmt::format("{} session{}, {} datagrams in, {} out, {} rejected", sessions,
                                 sessions == 1 ? "" : "s",
                                 st["counters"].value("datagrams_received", std::uint64_t{0}),
                                 st["counters"].value("datagrams_sent", std::uint64_t{0}),
                                 st["drops"].value("rejected", std::uint64_t{0}));
  if (ebpf != nullptr) line += "; " + ebpf->summary();
  return line;
}

}  // namespace buckwild::daemon

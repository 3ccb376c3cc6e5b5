#include "daemon/control/status.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/wire/messages.h"

namespace buckwild::daemon {

nlohmann::json daemon_status(Tunnel& tunnel, const KernelEbpfPath* ebpf, const Reloader& reloader,
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
  out.update(tunnel.status());
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
  }
  return out;
}

AttackWatch::Totals attack_totals(const Tunnel& tunnel, const KernelEbpfPath* ebpf) {
  AttackWatch::Totals t;
  const discovery::ResponderCounters& d = tunnel.discovery_counters();
  t.discovery_refusals = d.malformed + d.stale + d.rate_limited + d.overloaded + d.no_shared_psk +
                         d.no_common_features + d.bad_cookie + d.bad_proof + d.replayed;
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

}  // namespace buckwild::daemon

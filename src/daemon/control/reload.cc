#include "daemon/control/reload.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <nlohmann/json.hpp>

#include "daemon/config/config_diff.h"
#include "daemon/config/config_keys.h"
#include "daemon/os/random_seeded.h"

namespace buckwild::daemon {
namespace {

using nlohmann::json;

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

// "peers added carol; settings changed security.max_connections; 0 sessions ended".
std::string summary_line(const ReloadSummary& s) {
  std::string out;
  auto part = [&](const char* what, const std::vector<std::string>& names) {
    if (names.empty()) return;
    if (!out.empty()) out += "; ";
    out += what;
    out += ' ';
    out += joined(names);
  };
  part("peers added", s.peers_added);
  part("peers removed", s.peers_removed);
  part("peers changed", s.peers_changed);
  part("PSKs added", s.psks_added);
  part("PSKs removed", s.psks_removed);
  part("PSKs changed", s.psks_changed);
  part("settings changed", s.settings_changed);
  if (out.empty()) return "nothing changed";
  out += "; " + std::to_string(s.sessions_ended) + " session" + (s.sessions_ended == 1 ? "" : "s") +
         " ended";
  return out;
}

// Every route of every peer of `c`.
std::vector<Cidr> all_routes(const Config& c) {
  std::vector<Cidr> out;
  for (const PeerConfig& p : c.peers) out.insert(out.end(), p.routes.begin(), p.routes.end());
  return out;
}

bool has(const std::vector<Cidr>& v, const Cidr& c) {
  return std::find(v.begin(), v.end(), c) != v.end();
}

}  // namespace

Reloader::Reloader(std::unique_ptr<Config> running, Environment env, Deps deps)
    : config_(std::move(running)), env_(std::move(env)), deps_(deps) {}

json Reloader::refuse(std::string_view trigger, const json& requester, const std::string& error,
                      const std::vector<std::string>& problems) {
  ++refused_;
  spdlog::error("reload ({}) refused, the running configuration stays: {}", trigger, error);
  for (const std::string& p : problems) spdlog::error("  {}", p);
  if (deps_.audit != nullptr) {
    json details = {{"trigger", trigger}, {"error", error}, {"problems", problems}};
    if (!requester.is_null()) details["requester"] = requester;
    deps_.audit->record("reload_refused", "warning", {{"details", details}});
  }
  return {{"ok", false}, {"error", error}, {"problems", problems}};
}

json Reloader::reload(std::string_view trigger, const json& requester) {
  const std::string& path = config_->source_path;
  auto next = load_config(path, env_);
  if (!next) return refuse(trigger, requester, path + " has problems", next.error());
  // The random source stays seeded once it was; checked anyway, as at start.
  if (auto seeded = check_random_seeded(); !seeded) {
    return refuse(trigger, requester, seeded.error().message, {});
  }
  return apply(std::make_unique<Config>(std::move(*next)), trigger, requester);
}

json Reloader::set(const std::vector<Setting>& settings, std::string_view trigger,
                   const json& requester, bool check_only) {
  auto next = std::make_unique<Config>(clone_config(*config_));
  std::vector<std::string> problems;
  for (const auto& [key, value] : settings) {
    const std::size_t dot = key.find('.');
    const ConfigSection* section =
        dot == std::string::npos ? nullptr : find_config_section(std::string_view(key).substr(0, dot));
    const ConfigKey* spec =
        section == nullptr ? nullptr : find_config_key(*section, std::string_view(key).substr(dot + 1));
    if (spec == nullptr) {
      problems.push_back(key + ": unknown setting");
      continue;
    }
    auto scalar = parse_config_scalar(value, spec->kind);
    std::string problem = scalar ? spec->apply(*next, *scalar) : scalar.error();
    if (!problem.empty()) problems.push_back(key + ": " + problem);
  }
  if (!problems.empty()) return refuse(trigger, requester, "settings refused", problems);
  if (check_only) {
    const ConfigDiff diff = diff_config(*config_, *next);
    if (!diff.fixed.empty()) {
      return refuse(trigger, requester, "keys that cannot change while running differ",
                    fixed_key_problems(diff));
    }
    return {{"ok", true}};
  }
  return apply(std::move(next), trigger, requester);
}

json Reloader::apply(std::unique_ptr<Config> owned, std::string_view trigger, const json& requester) {
  const ConfigDiff diff = diff_config(*config_, *owned);
  if (!diff.fixed.empty()) {
    return refuse(trigger, requester, "keys that cannot change while running differ", fixed_key_problems(diff));
  }
  auto applied = deps_.workers.reconfigure(*owned);
  if (!applied) return refuse(trigger, requester, applied.error().message, {});
  const std::vector<std::string> warnings = update_routes(*owned);
  if (owned->testing.clock_offset_ms != config_->testing.clock_offset_ms) {
    // TEST AID: our clock steps by the difference, as a step of the NTP
    // client's would (docs/protocol.md §11.8): the sessions keep aiming at
    // the peers' windows and re-measure their offsets (RESYNC); the peers
    // see our clock moved.
    const std::int64_t step_ms = owned->testing.clock_offset_ms - config_->testing.clock_offset_ms;
    deps_.clock.set_offset_ms(owned->testing.clock_offset_ms);
    spdlog::warn("testing.clock_offset_ms = {} (was {}): this daemon's clock stepped by {} ms (a test aid)",
                 owned->testing.clock_offset_ms, config_->testing.clock_offset_ms, step_ms);
    deps_.workers.on_clock_step(step_ms * 1000);
  }
  if (auto r = deps_.logging.reopen(owned->logging); !r) {
    spdlog::warn("reload: the audit log stays {}: {}",
                 deps_.logging.audit() ? deps_.logging.audit()->path() : "off", r.error().message);
  }
  config_ = std::move(owned);  // the tunnel points at it since reconfigure()
  ++applied_;
  spdlog::info("reload ({}) applied: {}", trigger, summary_line(*applied));
  json changes = {{"peers_added", applied->peers_added},
                  {"peers_removed", applied->peers_removed},
                  {"peers_changed", applied->peers_changed},
                  {"psks_added", applied->psks_added},
                  {"psks_removed", applied->psks_removed},
                  {"psks_changed", applied->psks_changed},
                  {"settings_changed", applied->settings_changed},
                  {"sessions_ended", applied->sessions_ended}};
  // What could not be done in the kernel (a route): applied, with warnings.
  if (!warnings.empty()) changes["warnings"] = warnings;
  if (deps_.audit != nullptr) {
    json details = changes;
    details["trigger"] = trigger;
    if (!requester.is_null()) details["requester"] = requester;
    deps_.audit->record("reload_applied", "notice", {{"details", details}});
  }
  return {{"ok", true}, {"reload", std::move(changes)}};
}

std::vector<std::string> Reloader::update_routes(const Config& next) {
  std::vector<std::string> warnings;
  const std::vector<Cidr> before = all_routes(*config_);
  const std::vector<Cidr> after = all_routes(next);
  for (const Cidr& r : before) {
    if (has(after, r)) continue;
    if (auto d = deps_.netlink.delete_route(deps_.ifindex, r.network()); !d) {
      warnings.push_back(d.error().message);
    }
  }
  for (const Cidr& r : after) {
    if (has(before, r)) continue;
    if (auto a = deps_.netlink.add_route(deps_.ifindex, r.network()); !a) {
      warnings.push_back(a.error().message);
    }
  }
  for (const std::string& w : warnings) spdlog::warn("reload: {}", w);
  return warnings;
}

}  // namespace buckwild::daemon

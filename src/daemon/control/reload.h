// `buckwild reload`, SIGHUP and a changed file: the configuration re-read,
// checked and applied by difference (docs/control.md "reload"). The Reloader
// owns the configuration in force; the tunnel points into it.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/log/logging.h"
#include "daemon/log/security_audit.h"
#include "daemon/net/netlink.h"
#include "daemon/time/disciplined_clock.h"
#include "daemon/tunnel/tunnel.h"
#include "daemon/workers/workers.h"

namespace buckwild::daemon {

class Reloader {
 public:
  struct Deps {
    Workers& workers;
    Logging& logging;
    Netlink& netlink;
    int ifindex;  // the TUN device, for the peers' routes
    DisciplinedClock& clock;  // takes a changed testing.clock_offset_ms
    SecurityAudit* audit = nullptr;  // each reload, applied or refused, is recorded
  };
  // `running` is the configuration `deps.tunnel` was created with; `env` the
  // BUCKWILD_* overrides the daemon started with (a reload applies them again).
  Reloader(std::unique_ptr<Config> running, Environment env, Deps deps);

  const Config& config() const { return *config_; }

  // Re-reads config().source_path and applies it. Returns the reply of
  // docs/control.md: {"ok":true,"reload":{…}} or {"ok":false,"error":…,
  // "problems":[…]}; the outcome is logged either way, naming `trigger`
  // ("SIGHUP", "the control socket", "a change to the file").
  // `requester` (the control socket's client: pid, uid) goes into the audit
  // record when given.
  nlohmann::json reload(std::string_view trigger, const nlohmann::json& requester = nullptr);

  // Changes settings of the configuration in force, each a dotted key of a
  // single-instance section and its value as text ("logging.level",
  // "debug"), as SNMP SET does: each value goes through its key's own check
  // (the one the file's value goes through), a key that cannot change while
  // running is refused, and all are put in force together, or none. The
  // reply, log line and audit record are reload()'s. Lasts until the next
  // reload or restart. `check_only`: checked, nothing applied ({"ok":true}
  // when all would be; a refusal is logged and audited as any other).
  using Setting = std::pair<std::string, std::string>;
  nlohmann::json set(const std::vector<Setting>& settings, std::string_view trigger,
                     const nlohmann::json& requester = nullptr, bool check_only = false);

  std::uint64_t applied() const { return applied_; }
  std::uint64_t refused() const { return refused_; }

 private:
  // Puts `next` in force when only live keys differ; the rest of reload().
  nlohmann::json apply(std::unique_ptr<Config> next, std::string_view trigger,
                       const nlohmann::json& requester);
  nlohmann::json refuse(std::string_view trigger, const nlohmann::json& requester,
                        const std::string& error, const std::vector<std::string>& problems);
  // Adds and deletes the peers' routes that differ; returns what failed.
  std::vector<std::string> update_routes(const Config& next);

  std::unique_ptr<Config> config_;
  Environment env_;
  Deps deps_;
  std::uint64_t applied_ = 0;
  std::uint64_t refused_ = 0;
};

}  // namespace buckwild::daemon

// `buckwild reload`, SIGHUP and a changed file: the configuration re-read,
// checked and applied by difference (docs/control.md "reload"). The Reloader
// owns the configuration in force; the tunnel points into it.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string_view>

#include "daemon/config/config.h"
#include "daemon/log/logging.h"
#include "daemon/log/security_audit.h"
#include "daemon/net/netlink.h"
#include "daemon/tunnel/tunnel.h"

namespace buckwild::daemon {

class Reloader {
 public:
  struct Deps {
    Tunnel& tunnel;
    Logging& logging;
    Netlink& netlink;
    int ifindex;  // the TUN device, for the peers' routes
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

  std::uint64_t applied() const { return applied_; }
  std::uint64_t refused() const { return refused_; }

 private:
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

// `buckwild run`: the daemon in the foreground, on the real kernel interfaces.
#pragma once

#include <memory>

#include "daemon/config/config.h"

namespace buckwild::daemon {

// Sets up logging, the TUN device (address, MTU, routes over netlink), the
// UDP sockets and the event loop, runs until SIGINT or SIGTERM, then shuts
// down cleanly: sessions dropped (their keys wiped), the TUN device removed,
// counters logged. SIGHUP reopens the logs and reloads the configuration,
// as a change to the file does (re-read with the same `env` overrides;
// docs/control.md "reload"). Tells systemd READY=1 when NOTIFY_SOCKET is set.
// Returns the process exit status: 0 after a clean shutdown, 1 when start-up
// failed (after logging why in words an operator can act on).
int run_daemon(std::unique_ptr<Config> config, Environment env);

}  // namespace buckwild::daemon

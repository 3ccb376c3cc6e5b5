// The subcommands of the `buckwild` binary, as functions that return the
// process exit code, so they can be called from main() and from tests.
#pragma once

#include <ostream>
#include <string>

#include "daemon/config/config.h"

namespace buckwild::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the command ran and found a problem
inline constexpr int kExitUsage = 2;    // bad command line

// Loads `path` with `env` overrides. Prints "PATH: ok (N PSKs, M peers)" to
// `out` and returns 0, or prints every problem, one per line
// ("PATH:LINE:COL: key: problem"), to `err` and returns 1.
int check_config(const std::string& path, const daemon::Environment& env, std::ostream& out,
                 std::ostream& err);

// Writes a new random 32-byte PSK, base64 and a newline, to descriptor `fd`.
// The key and its text live only in locked memory and go out with write(2),
// not through stdio buffers. Returns 0, or 1 if the write fails.
int genpsk(int fd, std::ostream& err);

// Loads the configuration (errors as check_config prints them, exit 1) and runs
// the daemon in the foreground until SIGINT or SIGTERM (daemon/run_daemon.h).
int run(const std::string& config_path, const daemon::Environment& env, std::ostream& err);

// "buckwild 0.1.0 (protocol v1)" and the versions of OpenSSL and libsodium
// in use.
int version(std::ostream& out);

}  // namespace buckwild::cli

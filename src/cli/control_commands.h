// `buckwild status`, `buckwild reload` and `buckwild stop`: the subcommands
// that talk to running daemons over their control sockets (docs/control.md),
// as functions that return the exit code, so tests can call them.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "cli/control_client.h"
#include "core/common/time.h"
#include "daemon/control/control_server.h"

namespace buckwild::cli {

// Which tunnel a command is for. `socket` wins over `device` (the command line
// refuses both); neither: the sockets found in `socket_dir`.
struct ControlTarget {
  std::string device;  // "bw0": socket_dir/bw0.sock; "" = not given
  std::string socket;  // a socket path; "" = not given
  std::string socket_dir = std::string(daemon::kControlSocketDir);
  Duration timeout = kReplyTimeout;  // for each reply
};

enum class StatusFormat : std::uint8_t { kText, kJson, kPrometheus };

// Asks each tunnel for its status: the one named, or every socket in
// socket_dir (sorted). Prints the text rendering (control_text.h), tunnels
// separated by a blank line; kJson: the status object as the daemon sent it,
// or, when no DEVICE or socket was named, a JSON array of them (even of one);
// kPrometheus: the Prometheus text exposition of them all, one `device` label
// per tunnel (for node_exporter's textfile collector). Errors (no socket
// found, a daemon that does not answer) go to `err`; the tunnels that answered
// are still printed. Returns 0, or 1 if any failed.
int status(const ControlTarget& target, StatusFormat format, bool color, std::ostream& out,
           std::ostream& err);

// Asks the daemon to reload its configuration. Prints the summary
// ("reloaded: ..."), or the error and then each configuration problem as
// FILE:LINE:COL: key: problem on `err` and returns 1. Without a DEVICE or
// socket, the one socket in socket_dir; none or several is an error.
int reload(const ControlTarget& target, std::ostream& out, std::ostream& err);

// `buckwild rekey PEER [DEVICE]`: asks the daemon for a rekey of PEER's
// session (a peer name or a session id as status shows it; docs/control.md
// "rekey"). Prints "DEVICE: rekey of PEER's session requested (key epoch N)"
// and returns 0; the error on `err` and 1 if there is no such session or the
// daemon did not answer. Target as reload.
int rekey(const ControlTarget& target, const std::string& peer, std::ostream& out, std::ostream& err);

// Asks the daemon to stop. Prints "bw0: stopping", then waits up to `wait`
// until the socket path is gone (the daemon removes it as it exits) or is
// another daemon's. Returns 0 once it is gone; 1 if the daemon refused, did not
// answer, or is still there after `wait` (said on `err`). Target as reload.
int stop(const ControlTarget& target, std::ostream& out, std::ostream& err,
         Duration wait = seconds(10));

}  // namespace buckwild::cli

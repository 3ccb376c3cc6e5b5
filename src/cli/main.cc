// buckwild: the command-line entry point.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "cli/control_commands.h"

namespace {

constexpr const char* kDescription =
    "buckwild - a port-hopping network tunnel.\n"
    "Two hosts that share a pre-shared key (PSK) link through a virtual network interface;\n"
    "their traffic travels as encrypted UDP datagrams whose destination port changes every\n"
    "250 ms on a schedule only the two of them can compute.";

constexpr const char* kFooter =
    "\nExamples:\n"
    "  buckwild run --config /etc/buckwild/buckwild.toml\n"
    "  buckwild genpsk > /etc/buckwild/psk && chmod 600 /etc/buckwild/psk\n"
    "  buckwild check-config /etc/buckwild/buckwild.toml\n"
    "  buckwild status            (every running tunnel; buckwild status bw0 for one)\n"
    "  buckwild reload bw0        (apply an edited configuration file)\n"
    "\nEnvironment: BUCKWILD_<SECTION>_<KEY> overrides a key of [network], [protocol],\n"
    "[security], [crypto], [logging], [control], [metrics], [ntp] or [testing],\n"
    "e.g. BUCKWILD_LOGGING_LEVEL=debug.\n"
    "Exit status: 0 success, 1 failure (such as a bad configuration), 2 bad command line.";

// DEVICE and --socket, one or the other: which tunnel a control command is for.
void add_target_options(CLI::App* cmd, buckwild::cli::ControlTarget& target) {
  CLI::Option* device =
      cmd->add_option("DEVICE", target.device,
                      "the tunnel's interface name (its socket is /run/buckwild/DEVICE.sock)")
          ->type_name("");
  cmd->add_option("--socket", target.socket, "the control socket to use instead ([control] socket)")
      ->type_name("PATH")
      ->excludes(device);
}

int run(int argc, char** argv) {
  CLI::App app(kDescription, "buckwild");
  app.footer(kFooter);
  app.require_subcommand(1, 1);

  std::string config_path;
  CLI::App* check = app.add_subcommand(
      "check-config",
      "Check a configuration file (and BUCKWILD_* overrides) without starting anything.\n"
      "Prints \"FILE: ok (N PSKs, M peers)\", or every problem as\n"
      "\"FILE:LINE:COL: key: problem\" on stderr and exits with status 1.");
  check->add_option("FILE", config_path, "the TOML configuration file")->required();

  std::string run_config;
  CLI::App* run_cmd = app.add_subcommand(
      "run",
      "Run the daemon in the foreground (what the systemd unit runs): create the virtual\n"
      "interface, discover the configured peers, carry traffic until SIGINT or SIGTERM.\n"
      "SIGHUP reopens the logs and reloads the configuration (as buckwild reload does),\n"
      "so does a change to the file; SIGUSR1 logs the counters. Needs root (CAP_NET_ADMIN).\n"
      "Exits 1 if it cannot start.");
  run_cmd->add_option("-c,--config", run_config, "the TOML configuration file")->required();

  CLI::App* gen = app.add_subcommand(
      "genpsk",
      "Print a new random 32-byte pre-shared key in base64. Give the same key to both hosts,\n"
      "as key = \"...\" in [[psk]] or, better, in a file named by key_file (mode 0600).");

  CLI::App* ver = app.add_subcommand(
      "version", "Print the buckwild and protocol versions and the crypto libraries in use.");

  buckwild::cli::ControlTarget status_target;
  bool status_json = false;
  CLI::App* status_cmd = app.add_subcommand(
      "status",
      "Show what running tunnels are doing, as `wg show` does: the interface (receive path,\n"
      "hop window, listening ports, counters; drops only where non-zero), then each peer\n"
      "(endpoint, session, delays, transfer). Asks every /run/buckwild/*.sock, or DEVICE's\n"
      "only. --json prints the daemon's status object (fields in docs/control.md); without\n"
      "DEVICE or --socket, a JSON array of them, one per tunnel. Exits 1 if no tunnel is\n"
      "running or one does not answer within 5 s.");
  add_target_options(status_cmd, status_target);
  bool status_prometheus = false;
  auto* json_flag = status_cmd->add_flag("--json", status_json, "print JSON instead of text");
  status_cmd
      ->add_flag("--prometheus", status_prometheus,
                 "print the Prometheus text format instead (for node_exporter's textfile\n"
                 "collector: buckwild status --prometheus > .../buckwild.prom)")
      ->excludes(json_flag);

  buckwild::cli::ControlTarget reload_target;
  CLI::App* reload_cmd = app.add_subcommand(
      "reload",
      "Make the running daemon re-read its configuration file and apply the difference, as\n"
      "SIGHUP does: peers and PSKs added, removed or changed, and the [security] limits.\n"
      "Prints what changed (\"reloaded: peers added carol; 0 sessions ended\"). A configuration\n"
      "with problems changes nothing: each problem is printed as \"FILE:LINE:COL: key: problem\"\n"
      "on stderr and the exit status is 1. Without DEVICE, the one tunnel running.");
  add_target_options(reload_cmd, reload_target);

  buckwild::cli::ControlTarget rekey_target;
  std::string rekey_peer;
  CLI::App* rekey_cmd = app.add_subcommand(
      "rekey",
      "Make PEER's session change its keys now: a fresh X25519 exchange, make-before-break,\n"
      "no datagram lost (docs/protocol.md \"Rekey\"). PEER is a peer's name or a session id\n"
      "as status shows it. Sessions also rekey on their own ([crypto]\n"
      "key_rotation_interval_hours, and before the cipher's packet bound). Without DEVICE,\n"
      "the one tunnel running. Exits 1 if there is no such session.");
  rekey_cmd->add_option("PEER", rekey_peer, "the peer's name, or a session id")->required();
  add_target_options(rekey_cmd, rekey_target);

  buckwild::cli::ControlTarget stop_target;
  CLI::App* stop_cmd = app.add_subcommand(
      "stop",
      "Stop the running daemon cleanly, as SIGTERM does, and wait (at most 10 s) until it has\n"
      "exited, so the next command can rely on it. Without DEVICE, the one tunnel running.\n"
      "Exits 1 if it did not answer or is still running after 10 s.");
  add_target_options(stop_cmd, stop_target);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is a ParseError with exit code 0; every other one is a usage error.
    int code = app.exit(e);
    return code == 0 ? buckwild::cli::kExitOk : buckwild::cli::kExitUsage;
  }

  if (check->parsed()) {
    return buckwild::cli::check_config(config_path, buckwild::daemon::buckwild_environment(),
                                       std::cout, std::cerr);
  }
  if (run_cmd->parsed()) {
    return buckwild::cli::run(run_config, buckwild::daemon::buckwild_environment(), std::cerr);
  }
  if (gen->parsed()) return buckwild::cli::genpsk(STDOUT_FILENO, std::cerr);
  if (ver->parsed()) return buckwild::cli::version(std::cout);
  if (status_cmd->parsed()) {
    bool color = ::isatty(STDOUT_FILENO) == 1 && std::getenv("NO_COLOR") == nullptr;
    const auto format = status_prometheus ? buckwild::cli::StatusFormat::kPrometheus
                        : status_json     ? buckwild::cli::StatusFormat::kJson
                                          : buckwild::cli::StatusFormat::kText;
    return buckwild::cli::status(status_target, format, color, std::cout, std::cerr);
  }
  if (reload_cmd->parsed()) return buckwild::cli::reload(reload_target, std::cout, std::cerr);
  if (rekey_cmd->parsed()) {
    return buckwild::cli::rekey(rekey_target, rekey_peer, std::cout, std::cerr);
  }
  if (stop_cmd->parsed()) return buckwild::cli::stop(stop_target, std::cout, std::cerr);
  return buckwild::cli::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "buckwild: " << e.what() << '\n';
    return buckwild::cli::kExitFailure;
  }
}

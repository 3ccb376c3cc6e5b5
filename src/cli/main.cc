// buckwild: the command-line entry point.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>
#include <string>

#include "cli/commands.h"

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
    "\nEnvironment: BUCKWILD_<SECTION>_<KEY> overrides a key of [network], [protocol],\n"
    "[security], [crypto], [logging], [ntp] or [testing], e.g. BUCKWILD_LOGGING_LEVEL=debug.\n"
    "Exit status: 0 success, 1 failure (such as a bad configuration), 2 bad command line.";

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
      "SIGHUP reopens the logs. Needs root (CAP_NET_ADMIN). Exits 1 if it cannot start.");
  run_cmd->add_option("-c,--config", run_config, "the TOML configuration file")->required();

  CLI::App* gen = app.add_subcommand(
      "genpsk",
      "Print a new random 32-byte pre-shared key in base64. Give the same key to both hosts,\n"
      "as key = \"...\" in [[psk]] or, better, in a file named by key_file (mode 0600).");

  CLI::App* ver = app.add_subcommand(
      "version", "Print the buckwild and protocol versions and the crypto libraries in use.");

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

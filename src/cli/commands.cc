#include "cli/commands.h"

#include <openssl/crypto.h>
#include <sodium.h>
#include <unistd.h>

#include <cerrno>

#include "core/crypto/random.h"
#include "core/crypto/secret_bytes.h"
#include "core/wire/messages.h"
#include "daemon/run_daemon.h"
#include "daemon/config/secret_base64.h"
#include "daemon/os/sys_error.h"

namespace buckwild::cli {
namespace {

constexpr std::size_t kGeneratedPskBytes = 32;

bool write_all(int fd, Bytes data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data = data.subspan(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

int check_config(const std::string& path, const daemon::Environment& env, std::ostream& out,
                 std::ostream& err) {
  auto config = daemon::load_config(path, env);
  if (!config) {
    for (const auto& line : config.error()) err << line << '\n';
    err.flush();
    return kExitFailure;
  }
  out << path << ": ok (" << config->psks.size() << " PSKs, " << config->peers.size()
      << " peers)\n";
  out.flush();
  return kExitOk;
}

int run(const std::string& config_path, const daemon::Environment& env, std::ostream& err) {
  auto config = daemon::load_config(config_path, env);
  if (!config) {
    for (const auto& line : config.error()) err << line << '\n';
    err << "buckwild run: not started: the configuration has problems\n";
    err.flush();
    return kExitFailure;
  }
  return daemon::run_daemon(std::make_unique<daemon::Config>(std::move(*config)), env) == 0
             ? kExitOk
             : kExitFailure;
}

int genpsk(int fd, std::ostream& err) {
  crypto::SystemRandom rng;
  crypto::SecretBytes key = crypto::SecretBytes::random(kGeneratedPskBytes, rng);
  crypto::SecretBytes text = daemon::encode_base64_secret(key.view());
  static constexpr std::uint8_t kNewline[] = {'\n'};
  if (!write_all(fd, text.view()) || !write_all(fd, kNewline)) {
    err << "buckwild genpsk: cannot write the key: " << daemon::errno_text(errno) << '\n';
    return kExitFailure;
  }
  return kExitOk;
}

int version(std::ostream& out) {
  crypto::ensure_sodium();
  out << "buckwild " << BUCKWILD_VERSION << " (protocol v" << static_cast<int>(wire::kVersion)
      << ")\n"
      << OpenSSL_version(OPENSSL_VERSION) << '\n'
      << "libsodium " << sodium_version_string() << '\n';
  return kExitOk;
}

}  // namespace buckwild::cli

// The configuration loader (daemon/config: TOML through toml++, [[psk]]
// entries with inline base64 keys, [[peer]] entries, environment overrides and
// the checks between keys) on arbitrary text.
//
// Input: if it holds a NUL byte, the part before it is the environment (lines
// NAME=VALUE) and the rest the file; otherwise all of it is the file, which is
// handed to load_config through a memfd (no disk I/O).
//
// Checked: nothing crashes or throws out of load_config; a configuration that
// loads can be cloned; no problem message quotes an inline key's text.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/config/config.h"

using namespace buckwild;

namespace {

// The values of `key = "..."` in the text that appear nowhere else in it.
std::vector<std::string_view> inline_keys(std::string_view text) {
  std::vector<std::string_view> keys;
  for (std::size_t at = text.find("key"); at != std::string_view::npos; at = text.find("key", at + 3)) {
    std::size_t i = at + 3;
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    if (i >= text.size() || text[i] != '=') continue;
    ++i;
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    if (i >= text.size() || text[i] != '"') continue;
    const std::size_t end = text.find('"', i + 1);
    if (end == std::string_view::npos) continue;
    std::string_view value = text.substr(i + 1, end - i - 1);
    if (value.size() < 16 || text.find(value) != i + 1 || text.find(value, i + 2) != std::string_view::npos)
      continue;
    keys.push_back(value);
  }
  return keys;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const int fd = memfd_create("buckwild-fuzz-config", MFD_CLOEXEC);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (fd < 0 || size > (1u << 16)) return 0;

  std::string_view input(reinterpret_cast<const char*>(data), size);
  daemon::Environment env;
  std::string_view file = input;
  if (const std::size_t nul = input.find('\0'); nul != std::string_view::npos) {
    std::string_view lines = input.substr(0, nul);
    file = input.substr(nul + 1);
    while (!lines.empty()) {
      const std::size_t nl = lines.find('\n');
      std::string_view line = lines.substr(0, nl);
      lines = nl == std::string_view::npos ? std::string_view{} : lines.substr(nl + 1);
      const std::size_t eq = line.find('=');
      if (eq != std::string_view::npos) env[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
    }
  }
  if (ftruncate(fd, 0) != 0 || pwrite(fd, file.data(), file.size(), 0) != static_cast<ssize_t>(file.size()))
    std::abort();

  auto config = daemon::load_config(path, env);
  if (config) {
    daemon::Config copy = daemon::clone_config(*config);
    if (copy.psks.size() != config->psks.size() || copy.peers.size() != config->peers.size()) std::abort();
    return 0;
  }
  for (std::string_view key : inline_keys(file)) {
    for (const std::string& problem : config.error())
      if (problem.find(key) != std::string::npos) std::abort();
  }
  return 0;
}

// The configuration loader behind load_config (config.h), private to
// src/daemon/config/. One Loader reads one file: it walks the TOML
// document once, applies the environment, then checks relations between keys,
// collecting every problem with where it came from.
//
//   config.cc          reading the file, the single-instance sections, the
//                      environment, and how problems are placed and reported
//   config_entries.cc  the [[psk]] and [[peer]] arrays (and PSK key files)
//   config_checks.cc   relations between keys, once everything is read
#pragma once

#include <toml++/toml.h>

#include <cstddef>
#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/config/config_keys.h"

namespace buckwild::daemon::config_internal {

using Scalar = ConfigScalar;
using Kind = ConfigKind;
using KeySpec = ConfigKey;
using SectionSpec = ConfigSection;

// Where a value came from. Problems are sorted by (group, line, column) so the
// report reads in file order although toml++ iterates keys alphabetically.
struct Origin {
  int group = 1;  // 0: a file position; 1: the file as a whole; 2: the environment
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  std::string prefix;  // "FILE:LINE:COL", "FILE" or "env NAME"
};

struct Problem {
  Origin origin;
  std::size_t seq;  // report order, to keep the sort stable among equal origins
  std::string text;
};

// What the checks need to know of a [[peer]] beyond its PeerConfig.
struct PeerOrigins {
  bool has_name = false;
  bool has_virtual_address = false;
  bool virtual_address_ok = false;  // it was present and parsed
  std::optional<std::string> endpoint_text;
};

// "a table", "an integer", ...: a TOML node's type for "expected X, got Y".
const char* type_name(toml::node_type type);

// "unknown WHAT" plus " (did you mean \"NAME\"?)" when one of `known` is
// within 2 edits of `name`.
template <typename Names>
std::string unknown(std::string_view what, std::string_view name, const Names& known) {
  std::string out = "unknown " + std::string(what);
  std::string_view best = closest_name(name, known);
  if (!best.empty()) out += " (did you mean \"" + std::string(best) + "\"?)";
  return out;
}

class Loader {
 public:
  // `env` must outlive the loader.
  Loader(std::string path, const Environment& env);

  // Loads, overrides and checks; returns the Config or every problem, sorted
  // as load_config promises. May throw what toml++ and the standard library
  // throw (allocation failure); load_config catches it.
  std::expected<Config, std::vector<std::string>> run();

 private:
  // --- positions and problems (config.cc)

  // The position of `region`, or the whole file when toml++ has none.
  Origin at(const toml::source_region& region) const;
  Origin whole_file() const;
  static Origin env_origin(const std::string& var);
  // Records "ORIGIN: key: problem", or "env NAME: problem" (the variable
  // names the key).
  void report(const Origin& origin, std::string_view key, std::string_view problem);
  // Records a problem with `key`, placed where its value came from: the file,
  // the environment, or (a default) the file as a whole.
  void report_key(const std::string& key, std::string_view problem);

  // --- the file and its single-instance sections (config.cc)

  // The whole file, read into locked memory (it may hold inline PSKs). Fails
  // with the complete message ("FILE: cannot open: ...").
  std::expected<crypto::SecretBytes, std::string> read_file();
  void walk(toml::table& root);
  // Calls `load(index, table)` for each table of the array `node` under key
  // `k`; reports anything else.
  template <typename Fn>
  void walk_array(const toml::key& k, toml::node& node, std::string_view name, Fn&& load);
  void load_section(const SectionSpec& spec, toml::table& table);
  // The value of `node` as `kind`, or "expected KIND, got TYPE".
  static std::expected<Scalar, std::string> scalar_of(const toml::node& node, Kind kind);

  // --- the environment (config.cc)

  void apply_environment();

  // --- [[psk]] and [[peer]] (config_entries.cc)

  void load_psk(std::size_t index, toml::table& table);
  void load_peer(std::size_t index, toml::table& table);
  // The string at `node`, or nullptr after reporting its wrong type.
  const std::string* string_in(toml::node& node, const Origin& origin, const std::string& key);
  // A list of network prefixes ("10.0.0.0/8"); nullopt after reporting every
  // bad entry.
  std::optional<std::vector<Cidr>> prefixes_in(toml::node& node, const std::string& key);
  // Reads a key_file; a relative `name` is relative to the configuration's
  // directory. Fails with the problem, never with key text.
  std::expected<crypto::SecretBytes, std::string> read_key_file(const std::string& name);
  // Overwrites the inline key text the parsed document still holds in heap
  // strings it owns.
  static void wipe_inline_keys(toml::table& root);

  // --- relations between keys (config_checks.cc)

  void check();
  void check_psks();
  void check_peers();
  // Binds peer i to the one PSK it proves (see config_checks.cc).
  void check_peer_psk(std::size_t i);
  bool inside_virtual_network(const IpAddress& ip) const;
  bool inside_virtual_network(const Cidr& cidr) const;

  std::string path_;
  const Environment& env_;
  Config config_;
  std::vector<Problem> problems_;
  std::map<std::string, Origin, std::less<>> origins_;          // key path -> where it was set
  std::map<std::string, Origin, std::less<>> section_origins_;  // "network" -> its header
  std::vector<Origin> psk_origins_;
  std::vector<PeerOrigins> peer_origins_;
  std::vector<Origin> peer_table_origins_;
};

}  // namespace buckwild::daemon::config_internal

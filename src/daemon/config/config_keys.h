// The schema of the configuration's single-instance sections ([network],
// [protocol], [security], [crypto], [logging], [ntp], [testing]): every key,
// its type, its range, and how a value is stored into a Config. The file loader
// and the environment overrides both go through this one table, so a key can
// never be checked differently in the two places.
#pragma once

#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "daemon/config/config.h"

namespace buckwild::daemon {

// A scalar value as TOML or the environment gives it.
using ConfigScalar = std::variant<std::int64_t, bool, std::string, std::vector<std::string>>;

// What a key accepts.
// kStringList: a TOML array of strings; in the environment, comma-separated.
enum class ConfigKind { kInteger, kBool, kString, kAutoOrInteger, kStringList };

struct ConfigKey {
  std::string_view name;
  ConfigKind kind;
  // Checks `value` (of the key's kind) and stores it into `config`. Returns ""
  // when the value is acceptable, else the problem ("must be between 1 and
  // 65535, got 0"). Never throws.
  std::string (*apply)(Config& config, const ConfigScalar& value);
};

struct ConfigSection {
  std::string_view name;
  std::span<const ConfigKey> keys;
};

// The single-instance sections, in the order the documentation lists them.
std::span<const ConfigSection> config_sections();
// The section called `name`, or nullptr.
const ConfigSection* find_config_section(std::string_view name);
// The key called `name` in `section`, or nullptr.
const ConfigKey* find_config_key(const ConfigSection& section, std::string_view name);

// "an integer", "a boolean (true or false)", ...: for "expected X, got Y".
const char* config_kind_name(ConfigKind kind);

// Parses an environment variable's text as `kind`: integers in decimal,
// booleans as true/false/1/0, "auto"-or-integer as either, string lists
// comma-separated (spaces around items ignored, empty text = empty list). Fails with the
// problem ("expected an integer, got \"abc\"").
std::expected<ConfigScalar, std::string> parse_config_scalar(std::string_view text,
                                                             ConfigKind kind);

// The candidate closest to `name` by edit distance, if it is within 2 edits
// (for "did you mean ...?"); "" otherwise.
template <typename Names>
std::string_view closest_name(std::string_view name, const Names& candidates);
std::size_t edit_distance(std::string_view a, std::string_view b);

// "\"text\"".
std::string in_quotes(std::string_view s);

template <typename Names>
std::string_view closest_name(std::string_view name, const Names& candidates) {
  std::string_view best;
  std::size_t best_distance = 3;
  for (const auto& c : candidates) {
    std::string_view candidate = c;
    std::size_t d = edit_distance(name, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

}  // namespace buckwild::daemon

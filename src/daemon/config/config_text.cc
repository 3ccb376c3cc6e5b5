// The text of values, for the environment's overrides and for messages:
// parsing a scalar as its key's kind, quoting, and the edit distance that
// suggests a key's name (declared in config_keys.h).
#include "daemon/config/config_keys.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <vector>

namespace buckwild::daemon {

std::string in_quotes(std::string_view s) {
  // Built by appending: g++ 12 at -O3 reports a false -Wrestrict on the
  // operator+ chain, which broke Release builds.
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  out.append(s);
  out.push_back('"');
  return out;
}

std::expected<ConfigScalar, std::string> parse_config_scalar(std::string_view text,
                                                             ConfigKind kind) {
  auto integer = [&]() -> std::optional<std::int64_t> {
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return n;
  };
  switch (kind) {
    case ConfigKind::kInteger:
      if (auto n = integer()) return ConfigScalar{*n};
      return std::unexpected("expected an integer, got " + in_quotes(text));
    case ConfigKind::kBool:
      if (text == "true" || text == "1") return ConfigScalar{true};
      if (text == "false" || text == "0") return ConfigScalar{false};
      return std::unexpected("expected true, false, 1 or 0, got " + in_quotes(text));
    case ConfigKind::kString:
      return ConfigScalar{std::string(text)};
    case ConfigKind::kAutoOrInteger:
      if (auto n = integer()) return ConfigScalar{*n};
      return ConfigScalar{std::string(text)};
    case ConfigKind::kStringList: {
      std::vector<std::string> items;
      std::string_view rest = text;
      while (!rest.empty()) {
        const std::size_t comma = rest.find(',');
        std::string_view item = rest.substr(0, comma);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        items.emplace_back(item);
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
      return ConfigScalar{std::move(items)};
    }
  }
  return std::unexpected(std::string("unsupported type"));
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace buckwild::daemon

// The loader's reading side: the file, its single-instance sections and the
// environment, and how every problem is placed; load_config's entry point.
// The [[psk]] and [[peer]] arrays are in config_entries.cc, the relations
// between keys in config_checks.cc.
#include "daemon/config/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <string_view>
#include <tuple>
#include <utility>

#include "daemon/config/config_keys.h"
#include "daemon/config/config_loader.h"
#include "daemon/config/wipe_on_free.h"
#include "daemon/os/sys_error.h"
#include "daemon/os/unique_fd.h"

extern char** environ;

namespace buckwild::daemon {
namespace {

constexpr std::size_t kMaxConfigBytes = std::size_t{1} << 20;
constexpr std::string_view kEnvPrefix = "BUCKWILD_";

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& ch : out) {
    if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
  }
  return out;
}

std::string suggestion(std::string_view name, const std::vector<std::string>& known) {
  std::string_view best = closest_name(name, known);
  if (best.empty()) return {};
  return " (did you mean " + std::string(best) + "?)";
}

// The first byte above 0x7F in `text`, if any. The configuration file is
// ASCII: toml++ 3.3 (Debian 12) reaches __builtin_unreachable for some code
// points outside strings (marzer/tomlplusplus#295: U+00A1..U+0499,
// U+2D5E..U+3157, U+FC3E..U+FEFE), which is undefined behaviour, not an
// error; and deciding what toml++ will take as a string or a comment in text
// it then refuses is itself a parse (fuzz_config found a scanner that
// disagreed). Every value buckwild reads (names, addresses, paths, base64
// keys) is ASCII, so nothing is lost but non-ASCII comments.
std::optional<std::size_t> first_non_ascii(std::string_view t) {
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (static_cast<unsigned char>(t[i]) >= 0x80) return i;
  }
  return std::nullopt;
}

}  // namespace

namespace config_internal {

const char* type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::none:
      return "nothing";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
  }
  return "a value";
}

// ---------------------------------------------------------------------------
// The loader: walks the document once, then the environment, then checks
// relations between keys.

Loader::Loader(std::string path, const Environment& env) : path_(std::move(path)), env_(env) {
  config_.source_path = path_;
}

std::expected<Config, std::vector<std::string>> Loader::run() {
  auto text = read_file();
  if (!text) return std::unexpected(std::vector<std::string>{text.error()});

  const std::string_view document(reinterpret_cast<const char*>(text->data()), text->size());
  if (auto bad = first_non_ascii(document)) {
    const std::string_view before = document.substr(0, *bad);
    const std::size_t newline = before.rfind('\n');
    const std::size_t line = 1 + static_cast<std::size_t>(std::count(before.begin(), before.end(), '\n'));
    const std::size_t column = *bad - (newline == std::string_view::npos ? 0 : newline + 1) + 1;
    return std::unexpected(std::vector<std::string>{path_ + ":" + std::to_string(line) + ":" +
                                                    std::to_string(column) +
                                                    ": syntax: a non-ASCII character (the configuration file must be ASCII)"});
  }
  toml::table root;
  try {
    root = toml::parse(document, path_);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    return std::unexpected(std::vector<std::string>{path_ + ":" + std::to_string(b.line) + ":" +
                                                    std::to_string(b.column) +
                                                    ": syntax: " + std::string(e.description())});
  }

  walk(root);
  wipe_inline_keys(root);
  apply_environment();
  check();

  if (!problems_.empty()) {
    std::stable_sort(problems_.begin(), problems_.end(), [](const Problem& a, const Problem& b) {
      return std::tie(a.origin.group, a.origin.line, a.origin.column, a.seq) <
             std::tie(b.origin.group, b.origin.line, b.origin.column, b.seq);
    });
    std::vector<std::string> out;
    out.reserve(problems_.size());
    for (auto& p : problems_) out.push_back(std::move(p.text));
    return std::unexpected(std::move(out));
  }
  return std::move(config_);
}

// --- positions and problems

Origin Loader::at(const toml::source_region& r) const {
  if (r.begin.line == 0) return whole_file();
  return Origin{0, r.begin.line, r.begin.column,
                path_ + ":" + std::to_string(r.begin.line) + ":" + std::to_string(r.begin.column)};
}

Origin Loader::whole_file() const {
  return Origin{1, 0, 0, path_};
}

Origin Loader::env_origin(const std::string& var) {
  return Origin{2, 0, 0, "env " + var};
}

void Loader::report(const Origin& o, std::string_view key, std::string_view problem) {
  std::string text = o.prefix + ": ";
  if (o.group != 2) {
    text += key;
    text += ": ";
  }
  text += problem;
  problems_.push_back(Problem{o, problems_.size(), std::move(text)});
}

void Loader::report_key(const std::string& key, std::string_view problem) {
  auto it = origins_.find(key);
  if (it == origins_.end()) {
    report(whole_file(), key, problem);
  } else if (it->second.group == 2) {
    report(it->second, key, key + ": " + std::string(problem));
  } else {
    report(it->second, key, problem);
  }
}

// --- reading

std::expected<crypto::SecretBytes, std::string> Loader::read_file() {
  // The file may hold inline PSKs, so it is read into locked memory.
  UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::unexpected(path_ + ": cannot open: " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return std::unexpected(path_ + ": " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) return std::unexpected(path_ + ": not a regular file");
  if (static_cast<std::size_t>(st.st_size) > kMaxConfigBytes) {
    return std::unexpected(path_ + ": larger than 1 MiB; this is not a buckwild configuration");
  }
  auto size = static_cast<std::size_t>(st.st_size);
  crypto::SecretBytes buf(size);
  std::size_t got = 0;
  while (got < size) {
    ssize_t n = ::read(fd.get(), buf.data() + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::unexpected(path_ + ": read failed: " + errno_text(errno));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got != size) return crypto::SecretBytes::copy_of(buf.view().first(got));
  return buf;
}

// --- the document

void Loader::walk(toml::table& root) {
  for (auto&& [k, node] : root) {
    std::string_view name = k.str();
    if (name == "psk") {
      walk_array(k, node, "psk", [this](std::size_t i, toml::table& t) { load_psk(i, t); });
      continue;
    }
    if (name == "peer") {
      walk_array(k, node, "peer", [this](std::size_t i, toml::table& t) { load_peer(i, t); });
      continue;
    }
    const SectionSpec* spec = find_config_section(name);
    if (spec == nullptr) {
      std::vector<std::string_view> known;
      for (const auto& s : config_sections()) known.push_back(s.name);
      known.push_back("psk");
      known.push_back("peer");
      report(at(k.source()), name, unknown("section", name, known));
      continue;
    }
    auto* table = node.as_table();
    if (table == nullptr) {
      report(at(node.source()), name,
             std::string("must be a table ([") + std::string(name) + "]), got " +
                 type_name(node.type()));
      continue;
    }
    section_origins_[std::string(name)] = at(table->source());
    load_section(*spec, *table);
  }
}

template <typename Fn>
void Loader::walk_array(const toml::key& k, toml::node& node, std::string_view name, Fn&& load) {
  auto* array = node.as_array();
  if (array == nullptr || !array->is_array_of_tables()) {
    report(at(k.source()), name,
           "must be an array of tables ([[" + std::string(name) + "]]), got " +
               (array != nullptr && !array->empty() ? std::string("an array of values")
                                                    : std::string(type_name(node.type()))));
    return;
  }
  for (std::size_t i = 0; i < array->size(); ++i) {
    load(i, *array->get(i)->as_table());
  }
}

void Loader::load_section(const SectionSpec& spec, toml::table& table) {
  for (auto&& [k, node] : table) {
    std::string key = std::string(spec.name) + "." + std::string(k.str());
    const KeySpec* ks = find_config_key(spec, k.str());
    if (ks == nullptr) {
      std::vector<std::string_view> known;
      for (const auto& s : spec.keys) known.push_back(s.name);
      report(at(k.source()), key, unknown("key", k.str(), known));
      continue;
    }
    Origin o = at(node.source());
    origins_[key] = o;
    auto value = scalar_of(node, ks->kind);
    if (!value) {
      report(o, key, value.error());
      continue;
    }
    if (auto problem = ks->apply(config_, *value); !problem.empty()) report(o, key, problem);
  }
}

std::expected<Scalar, std::string> Loader::scalar_of(const toml::node& node, Kind kind) {
  switch (kind) {
    case Kind::kInteger:
      if (auto v = node.value_exact<std::int64_t>()) return Scalar{*v};
      break;
    case Kind::kBool:
      if (auto v = node.value_exact<bool>()) return Scalar{*v};
      break;
    case Kind::kString:
      if (const auto* s = node.as_string()) return Scalar{s->get()};
      break;
    case Kind::kAutoOrInteger:
      if (auto v = node.value_exact<std::int64_t>()) return Scalar{*v};
      if (const auto* s = node.as_string()) return Scalar{s->get()};
      break;
    case Kind::kStringList:
      if (const auto* a = node.as_array()) {
        std::vector<std::string> items;
        for (const toml::node& item : *a) {
          const auto* s = item.as_string();
          if (s == nullptr) {
            return std::unexpected(std::string("expected an array of strings, got an array with ") +
                                   type_name(item.type()));
          }
          items.push_back(s->get());
        }
        return Scalar{std::move(items)};
      }
      break;
  }
  return std::unexpected(std::string("expected ") + config_kind_name(kind) + ", got " +
                         type_name(node.type()));
}

// --- the environment

void Loader::apply_environment() {
  for (const auto& [var, value] : env_) {
    if (!var.starts_with(kEnvPrefix)) continue;
    std::string_view rest = std::string_view(var).substr(kEnvPrefix.size());
    const SectionSpec* section = nullptr;
    for (const auto& s : config_sections()) {
      std::string prefix = upper(s.name) + "_";
      if (rest.starts_with(prefix)) {
        section = &s;
        rest.remove_prefix(prefix.size());
        break;
      }
    }
    if (section == nullptr) continue;  // not one of ours (BUCKWILD_FUZZ_SECONDS, ...)
    Origin o = env_origin(var);
    const KeySpec* spec = nullptr;
    for (const auto& k : section->keys) {
      if (upper(k.name) == rest) spec = &k;
    }
    if (spec == nullptr) {
      std::vector<std::string> known;
      for (const auto& k : section->keys) {
        known.push_back(std::string(kEnvPrefix) + upper(section->name) + "_" + upper(k.name));
      }
      report(o, "",
             "no key in [" + std::string(section->name) + "] is called " + in_quotes(rest) +
                 suggestion(var, known));
      continue;
    }
    std::string key = std::string(section->name) + "." + std::string(spec->name);
    origins_[key] = o;
    auto scalar = parse_config_scalar(value, spec->kind);
    if (!scalar) {
      report(o, key, scalar.error());
      continue;
    }
    if (auto problem = spec->apply(config_, *scalar); !problem.empty()) {
      report(o, key, key + " " + problem);
    }
  }
}

}  // namespace config_internal

Config clone_config(const Config& c) {
  Config out;
  out.source_path = c.source_path;
  out.network = c.network;
  out.protocol = c.protocol;
  out.security = c.security;
  out.crypto = c.crypto;
  out.logging = c.logging;
  out.control = c.control;
  out.metrics = c.metrics;
  out.ntp = c.ntp;
  out.snmp = c.snmp;
  out.testing = c.testing;
  out.psks.reserve(c.psks.size());
  for (const PskConfig& p : c.psks) {
    out.psks.push_back(PskConfig{p.id, crypto::SecretBytes::copy_of(p.key.view()), p.allowed_prefixes});
  }
  out.peers = c.peers;
  return out;
}

Environment buckwild_environment() {
  Environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    if (!entry.starts_with(kEnvPrefix)) continue;
    auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

std::expected<Config, std::vector<std::string>> load_config(const std::string& path,
                                                            const Environment& env) {
  // Inline PSK text passes through toml++'s own heap buffers, freed on every
  // path out of here (a parse error included): each is wiped as it is freed.
  WipeFreedMemory wipe;
  try {
    return config_internal::Loader(path, env).run();
  } catch (const std::exception& e) {
    // toml++ and the standard library report allocation failure and similar
    // by exception; none may escape the loader.
    return std::unexpected(std::vector<std::string>{path + ": " + e.what()});
  }
}

}  // namespace buckwild::daemon

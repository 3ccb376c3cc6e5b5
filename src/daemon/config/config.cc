#include "daemon/config/config.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <filesystem>
#include <span>
#include <string_view>
#include <utility>
#include <variant>

#include "daemon/config/config_keys.h"
#include "daemon/config/psk_file.h"
#include "daemon/os/sys_error.h"
#include "daemon/os/unique_fd.h"

extern char** environ;

namespace buckwild::daemon {
namespace {

constexpr std::size_t kMaxConfigBytes = std::size_t{1} << 20;
constexpr std::size_t kMaxPsks = 256;
constexpr std::string_view kEnvPrefix = "BUCKWILD_";

using Scalar = ConfigScalar;
using Kind = ConfigKind;
using KeySpec = ConfigKey;
using SectionSpec = ConfigSection;

constexpr std::array<std::string_view, 4> kPskKeys = {"id", "key", "key_file", "allowed_prefixes"};
constexpr std::array<std::string_view, 6> kPeerKeys = {"name",   "endpoint", "virtual_address",
                                                       "routes", "psk",      "initiate"};

// ---------------------------------------------------------------------------
// Small helpers.

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

// "unknown key" plus a suggestion when one known name is close.
template <typename Names>
std::string unknown(std::string_view what, std::string_view name, const Names& known) {
  std::string out = "unknown " + std::string(what);
  std::string_view best = closest_name(name, known);
  if (!best.empty()) out += " (did you mean \"" + std::string(best) + "\"?)";
  return out;
}

bool valid_id(std::string_view s) {
  if (s.empty() || s.size() > 32) return false;
  return std::all_of(s.begin(), s.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '.' || ch == '-';
  });
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& ch : out) {
    if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
  }
  return out;
}

// Overwrites the bytes of a string the parser made from secret text.
void wipe(std::string& s) {
  if (!s.empty()) sodium_memzero(s.data(), s.size());
}

// ---------------------------------------------------------------------------
// The loader: walks the document once, then the environment, then checks
// relations between keys.

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
  std::size_t seq;
  std::string text;
};

struct PeerOrigins {
  bool has_name = false;
  bool has_virtual_address = false;  // and it parsed
  bool virtual_address_ok = false;
  std::optional<std::string> endpoint_text;
};

class Loader {
 public:
  Loader(std::string path, const Environment& env) : path_(std::move(path)), env_(env) {
    config_.source_path = path_;
  }

  std::expected<Config, std::vector<std::string>> run() {
    auto text = read_file();
    if (!text) return std::unexpected(std::vector<std::string>{text.error()});

    toml::table root;
    try {
      root = toml::parse(
          std::string_view(reinterpret_cast<const char*>(text->data()), text->size()), path_);
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

 private:
  // --- positions and problems

  Origin at(const toml::source_region& r) const {
    if (r.begin.line == 0) return whole_file();
    return Origin{
        0, r.begin.line, r.begin.column,
        path_ + ":" + std::to_string(r.begin.line) + ":" + std::to_string(r.begin.column)};
  }
  Origin whole_file() const { return Origin{1, 0, 0, path_}; }
  static Origin env_origin(const std::string& var) { return Origin{2, 0, 0, "env " + var}; }

  // "ORIGIN: key: problem", or "env NAME: problem" (the variable names the key).
  void report(const Origin& o, std::string_view key, std::string_view problem) {
    std::string text = o.prefix + ": ";
    if (o.group != 2) {
      text += key;
      text += ": ";
    }
    text += problem;
    problems_.push_back(Problem{o, problems_.size(), std::move(text)});
  }

  // A problem with a key whose value may come from the file, the environment
  // or the default.
  void report_key(const std::string& key, std::string_view problem) {
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

  std::expected<crypto::SecretBytes, std::string> read_file() {
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

  void walk(toml::table& root) {
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
  void walk_array(const toml::key& k, toml::node& node, std::string_view name, Fn&& load) {
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

  void load_section(const SectionSpec& spec, toml::table& table) {
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

  static std::expected<Scalar, std::string> scalar_of(const toml::node& node, Kind kind) {
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
    }
    return std::unexpected(std::string("expected ") + config_kind_name(kind) + ", got " +
                           type_name(node.type()));
  }

  // A string entry of a [[psk]] or [[peer]] table; reports a wrong type.
  const std::string* string_in(toml::node& node, const Origin& o, const std::string& key) {
    const auto* s = node.as_string();
    if (s == nullptr) {
      report(o, key, std::string("expected a string, got ") + type_name(node.type()));
      return nullptr;
    }
    return &s->get();
  }

  // A list of network prefixes ("10.0.0.0/8"); reports every bad entry.
  std::optional<std::vector<Cidr>> prefixes_in(toml::node& node, const std::string& key) {
    auto* array = node.as_array();
    if (array == nullptr) {
      report(at(node.source()), key,
             std::string("expected an array of CIDR strings, got ") + type_name(node.type()));
      return std::nullopt;
    }
    std::vector<Cidr> out;
    bool ok = true;
    for (std::size_t i = 0; i < array->size(); ++i) {
      toml::node& item = *array->get(i);
      std::string item_key = key + "[" + std::to_string(i) + "]";
      const auto* s = string_in(item, at(item.source()), item_key);
      if (s == nullptr) {
        ok = false;
        continue;
      }
      auto cidr = validate_prefix(*s);
      if (!cidr) {
        report(at(item.source()), item_key, cidr.error() + " (in " + in_quotes(*s) + ")");
        ok = false;
        continue;
      }
      out.push_back(*cidr);
    }
    if (!ok) return std::nullopt;
    return out;
  }

  void load_psk(std::size_t index, toml::table& table) {
    std::string base = "psk[" + std::to_string(index) + "]";
    Origin table_origin = at(table.source());
    PskConfig psk;
    bool have_id = false;
    const toml::node* key_node = nullptr;
    const toml::node* key_file_node = nullptr;
    for (auto&& [k, node] : table) {
      std::string key = base + "." + std::string(k.str());
      Origin o = at(node.source());
      if (k.str() == "id") {
        if (const auto* s = string_in(node, o, key)) {
          if (!valid_id(*s)) {
            report(o, key, "must be 1..32 characters of [A-Za-z0-9_.-], got " + in_quotes(*s));
          } else {
            psk.id = *s;
            have_id = true;
          }
        }
      } else if (k.str() == "key") {
        key_node = &node;
      } else if (k.str() == "key_file") {
        key_file_node = &node;
      } else if (k.str() == "allowed_prefixes") {
        if (auto p = prefixes_in(node, key)) psk.allowed_prefixes = std::move(*p);
        origins_[key] = o;
      } else {
        report(at(k.source()), key, unknown("key", k.str(), kPskKeys));
      }
    }
    if (!have_id && !table.contains("id")) report(table_origin, base + ".id", "missing");

    // Exactly one of key / key_file.
    if (key_node != nullptr && key_file_node != nullptr) {
      report(at(key_file_node->source()), base + ".key_file",
             "give either key or key_file, not both");
    } else if (key_node != nullptr) {
      Origin o = at(key_node->source());
      if (const auto* s = key_node->as_string()) {
        auto key = decode_psk(
            Bytes(reinterpret_cast<const std::uint8_t*>(s->get().data()), s->get().size()));
        if (key) {
          psk.key = std::move(*key);
        } else {
          report(o, base + ".key", key.error());
        }
      } else {
        report(o, base + ".key",
               std::string("expected a base64 string, got ") + type_name(key_node->type()));
      }
    } else if (key_file_node != nullptr) {
      Origin o = at(key_file_node->source());
      if (const auto* s = key_file_node->as_string()) {
        auto key = read_key_file(s->get());
        if (key) {
          psk.key = std::move(*key);
        } else {
          report(o, base + ".key_file", key.error());
        }
      } else {
        report(o, base + ".key_file",
               std::string("expected a path string, got ") + type_name(key_file_node->type()));
      }
    } else {
      report(table_origin, base + ".key",
             "missing (give key = \"BASE64\" or key_file = \"PATH\"; `buckwild genpsk` makes one)");
    }
    psk_origins_.push_back(table_origin);
    config_.psks.push_back(std::move(psk));
  }

  // key_file: relative paths are relative to the configuration's directory.
  std::expected<crypto::SecretBytes, std::string> read_key_file(const std::string& name) {
    if (name.empty()) return std::unexpected(std::string("is empty"));
    std::filesystem::path p(name);
    if (p.is_relative()) p = std::filesystem::path(path_).parent_path() / p;
    return read_psk_file(p.string());
  }

  void load_peer(std::size_t index, toml::table& table) {
    std::string base = "peer[" + std::to_string(index) + "]";
    Origin table_origin = at(table.source());
    PeerConfig peer;
    PeerOrigins po;
    for (auto&& [k, node] : table) {
      std::string key = base + "." + std::string(k.str());
      Origin o = at(node.source());
      origins_[key] = o;
      if (k.str() == "name") {
        if (const auto* s = string_in(node, o, key)) {
          if (!valid_id(*s)) {
            report(o, key, "must be 1..32 characters of [A-Za-z0-9_.-], got " + in_quotes(*s));
          } else {
            peer.name = *s;
          }
        }
        po.has_name = true;
      } else if (k.str() == "endpoint") {
        if (const auto* s = string_in(node, o, key)) po.endpoint_text = *s;
      } else if (k.str() == "virtual_address") {
        po.has_virtual_address = true;
        if (const auto* s = string_in(node, o, key)) {
          auto ip = IpAddress::parse(*s);
          if (!ip) {
            report(o, key,
                   "must be an IPv4 or IPv6 host address (no /LENGTH), got " + in_quotes(*s));
          } else if (ip->is_unspecified()) {
            report(o, key, "cannot be the unspecified address");
          } else {
            peer.virtual_address = *ip;
            po.virtual_address_ok = true;
          }
        }
      } else if (k.str() == "routes") {
        if (auto p = prefixes_in(node, key)) peer.routes = std::move(*p);
      } else if (k.str() == "psk") {
        if (const auto* s = string_in(node, o, key)) peer.psk = *s;
      } else if (k.str() == "initiate") {
        if (auto v = node.value_exact<bool>()) {
          peer.initiate = *v;
        } else {
          report(o, key,
                 std::string("expected a boolean (true or false), got ") + type_name(node.type()));
        }
      } else {
        report(at(k.source()), key, unknown("key", k.str(), kPeerKeys));
      }
    }
    if (!po.has_name) report(table_origin, base + ".name", "missing");
    if (!po.has_virtual_address) {
      report(table_origin, base + ".virtual_address",
             "missing (the peer's address on the tunnel, such as \"10.77.0.2\")");
    }
    peer_origins_.push_back(std::move(po));
    peer_table_origins_.push_back(table_origin);
    config_.peers.push_back(std::move(peer));
  }

  // The parsed document still holds inline key text in heap strings it owns.
  static void wipe_inline_keys(toml::table& root) {
    auto* psks = root["psk"].as_array();
    if (psks == nullptr) return;
    for (auto& entry : *psks) {
      auto* t = entry.as_table();
      if (t == nullptr) continue;
      if (auto* s = (*t)["key"].as_string()) wipe(s->get());
    }
  }

  // --- the environment

  void apply_environment() {
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

  static std::string suggestion(std::string_view name, const std::vector<std::string>& known) {
    std::string_view best = closest_name(name, known);
    if (best.empty()) return {};
    return " (did you mean " + std::string(best) + "?)";
  }

  // --- relations between keys

  void check() {
    const auto& net = config_.network;
    const auto& proto = config_.protocol;

    // Required keys of the single-instance sections (the environment may
    // have supplied them).
    if (!origins_.contains("network.virtual_address")) {
      auto it = section_origins_.find("network");
      report(it == section_origins_.end() ? whole_file() : it->second, "network.virtual_address",
             "missing (this host's address on the tunnel, such as \"10.77.0.1/24\")");
    }

    if (proto.heartbeat_timeout_ms <= proto.heartbeat_interval_ms) {
      std::string problem = "must be greater than protocol.heartbeat_interval_ms (" +
                            std::to_string(proto.heartbeat_interval_ms) + "), got " +
                            std::to_string(proto.heartbeat_timeout_ms);
      report_key(origins_.contains("protocol.heartbeat_timeout_ms")
                     ? "protocol.heartbeat_timeout_ms"
                     : "protocol.heartbeat_interval_ms",
                 problem);
    }
    if (net.virtual_address6 && net.mtu != 0 && net.mtu < 1280) {
      report_key("network.mtu",
                 "must be at least 1280 when network.virtual_address6 is set "
                 "(IPv6 needs it), got " +
                     std::to_string(net.mtu));
    }

    check_psks();
    check_peers();
  }

  bool inside_virtual_network(const IpAddress& ip) const {
    const auto& net = config_.network;
    if (ip.is_v4())
      return origins_.contains("network.virtual_address") && net.virtual_address.contains(ip);
    return net.virtual_address6 && net.virtual_address6->contains(ip);
  }

  bool inside_virtual_network(const Cidr& c) const {
    const auto& net = config_.network;
    if (c.family() == IpFamily::kV4) return net.virtual_address.contains(c);
    return net.virtual_address6 && net.virtual_address6->contains(c);
  }

  void check_psks() {
    const auto& psks = config_.psks;
    if (psks.empty()) {
      report(whole_file(), "psk",
             "missing: at least one [[psk]] is required (buckwild genpsk makes a key)");
    } else if (psks.size() > kMaxPsks) {
      report(psk_origins_[kMaxPsks], "psk",
             "at most 256 [[psk]] entries are allowed, got " + std::to_string(psks.size()));
    }
    bool have_v4 = origins_.contains("network.virtual_address");
    for (std::size_t i = 0; i < psks.size(); ++i) {
      std::string base = "psk[" + std::to_string(i) + "]";
      for (std::size_t j = 0; j < i; ++j) {
        if (!psks[i].id.empty() && psks[i].id == psks[j].id) {
          report(
              psk_origins_[i], base + ".id",
              "duplicate id " + in_quotes(psks[i].id) + " (also psk[" + std::to_string(j) + "])");
        }
      }
      if (!have_v4) continue;
      for (std::size_t k = 0; k < psks[i].allowed_prefixes.size(); ++k) {
        const Cidr& c = psks[i].allowed_prefixes[k];
        if (!inside_virtual_network(c)) {
          report_key(base + ".allowed_prefixes",
                     c.to_string() + " is outside the tunnel network (" +
                         (c.family() == IpFamily::kV4
                              ? config_.network.virtual_address.network().to_string()
                              : (config_.network.virtual_address6
                                     ? config_.network.virtual_address6->network().to_string()
                                     : std::string("no network.virtual_address6 is set"))) +
                         ")");
        }
      }
    }
  }

  void check_peers() {
    auto& peers = config_.peers;
    const auto& net = config_.network;
    bool have_v4 = origins_.contains("network.virtual_address");
    for (std::size_t i = 0; i < peers.size(); ++i) {
      PeerConfig& peer = peers[i];
      const PeerOrigins& po = peer_origins_[i];
      std::string base = "peer[" + std::to_string(i) + "]";

      for (std::size_t j = 0; j < i; ++j) {
        if (!peer.name.empty() && peer.name == peers[j].name) {
          report_key(base + ".name", "duplicate name " + in_quotes(peer.name) + " (also peer[" +
                                         std::to_string(j) + "])");
        }
      }

      if (po.endpoint_text) {
        auto ep = SocketAddress::parse(*po.endpoint_text, net.discovery_port);
        if (!ep) {
          report_key(base + ".endpoint", ep.error() + ", got " + in_quotes(*po.endpoint_text));
        } else if (ep->ip.is_unspecified()) {
          report_key(base + ".endpoint", "cannot be the unspecified address");
        } else {
          peer.endpoint = *ep;
          if (ep->ip.is_v6() && net.listen_address.is_v4()) {
            report_key(base + ".endpoint", "is IPv6 but network.listen_address is IPv4 (" +
                                               net.listen_address.to_string() +
                                               "); listen on \"::\" instead");
          }
          if (have_v4 && inside_virtual_network(ep->ip)) {
            report_key(base + ".endpoint",
                       ep->ip.to_string() +
                           " is inside the tunnel network; the underlay address must be "
                           "reachable without the tunnel");
          }
          for (const Cidr& r : peer.routes) {
            if (r.contains(ep->ip)) {
              report_key(base + ".routes", r.to_string() + " contains the peer's own endpoint " +
                                               ep->ip.to_string() +
                                               "; that would route the tunnel into itself");
            }
          }
          for (std::size_t j = 0; j < i; ++j) {
            if (peers[j].endpoint && *peers[j].endpoint == *ep) {
              report_key(base + ".endpoint", "duplicate endpoint " + ep->to_string() +
                                                 " (also peer[" + std::to_string(j) + "])");
            }
          }
        }
      } else if (peer.initiate) {
        report(peer_table_origins_[i], base + ".endpoint",
               "missing: initiate = true needs the peer's underlay address (or set initiate = "
               "false)");
      }

      if (po.virtual_address_ok && have_v4) {
        const IpAddress& va = peer.virtual_address;
        std::string key = base + ".virtual_address";
        if (va == net.virtual_address.address ||
            (net.virtual_address6 && va == net.virtual_address6->address)) {
          report_key(key, va.to_string() + " is this host's own address");
        } else if (va.is_v4() && !net.virtual_address.contains(va)) {
          report_key(key, va.to_string() + " is outside network.virtual_address's prefix " +
                              net.virtual_address.network().to_string());
        } else if (va.is_v6() && !net.virtual_address6) {
          report_key(key, "is IPv6 but network.virtual_address6 is not set");
        } else if (va.is_v6() && !net.virtual_address6->contains(va)) {
          report_key(key, va.to_string() + " is outside network.virtual_address6's prefix " +
                              net.virtual_address6->network().to_string());
        }
        for (std::size_t j = 0; j < i; ++j) {
          if (peer_origins_[j].virtual_address_ok && peers[j].virtual_address == va) {
            report_key(key, "duplicate virtual address " + va.to_string() + " (also peer[" +
                                std::to_string(j) + "])");
          }
        }
      }

      for (std::size_t j = 0; j < i; ++j) {
        for (const Cidr& r : peer.routes) {
          for (const Cidr& other : peers[j].routes) {
            if (r.overlaps(other)) {
              report_key(base + ".routes", r.to_string() + " overlaps " + other.to_string() +
                                               " of peer[" + std::to_string(j) + "]");
            }
          }
        }
      }

      if (!peer.psk.empty()) {
        bool found = std::any_of(config_.psks.begin(), config_.psks.end(),
                                 [&](const PskConfig& p) { return p.id == peer.psk; });
        if (!found) report_key(base + ".psk", "no [[psk]] has id " + in_quotes(peer.psk));
      }
    }
  }

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

}  // namespace

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
  try {
    return Loader(path, env).run();
  } catch (const std::exception& e) {
    // toml++ and the standard library report allocation failure and similar
    // by exception; none may escape the loader.
    return std::unexpected(std::vector<std::string>{path + ": " + e.what()});
  }
}

}  // namespace buckwild::daemon

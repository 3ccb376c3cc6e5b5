// The [[psk]] and [[peer]] arrays of tables: each entry's keys, its PSK
// (inline or from a key file, straight into locked memory) and what the
// relations between keys (config_checks.cc) need to know of it later.
#include <sodium.h>
#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "daemon/config/config_loader.h"
#include "daemon/config/psk_file.h"

namespace buckwild::daemon::config_internal {
namespace {

constexpr std::array<std::string_view, 4> kPskKeys = {"id", "key", "key_file", "allowed_prefixes"};
constexpr std::array<std::string_view, 6> kPeerKeys = {"name",   "endpoint", "virtual_address",
                                                       "routes", "psk",      "initiate"};

bool valid_id(std::string_view s) {
  if (s.empty() || s.size() > 32) return false;
  return std::all_of(s.begin(), s.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '.' || ch == '-';
  });
}

// Overwrites the bytes of a string the parser made from secret text.
void wipe(std::string& s) {
  if (!s.empty()) sodium_memzero(s.data(), s.size());
}

}  // namespace

const std::string* Loader::string_in(toml::node& node, const Origin& o, const std::string& key) {
  const auto* s = node.as_string();
  if (s == nullptr) {
    report(o, key, std::string("expected a string, got ") + type_name(node.type()));
    return nullptr;
  }
  return &s->get();
}

std::optional<std::vector<Cidr>> Loader::prefixes_in(toml::node& node, const std::string& key) {
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

void Loader::load_psk(std::size_t index, toml::table& table) {
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
std::expected<crypto::SecretBytes, std::string> Loader::read_key_file(const std::string& name) {
  if (name.empty()) return std::unexpected(std::string("is empty"));
  std::filesystem::path p(name);
  if (p.is_relative()) p = std::filesystem::path(path_).parent_path() / p;
  return read_psk_file(p.string());
}

void Loader::load_peer(std::size_t index, toml::table& table) {
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
          report(o, key, "must be an IPv4 or IPv6 host address (no /LENGTH), got " + in_quotes(*s));
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
void Loader::wipe_inline_keys(toml::table& root) {
  auto* psks = root["psk"].as_array();
  if (psks == nullptr) return;
  for (auto& entry : *psks) {
    auto* t = entry.as_table();
    if (t == nullptr) continue;
    if (auto* s = (*t)["key"].as_string()) wipe(s->get());
  }
}

}  // namespace buckwild::daemon::config_internal

// What a reload would change: the configuration in force against a freshly
// loaded one, key by key (docs/control.md "reload").
#pragma once

#include <string>
#include <vector>

#include "daemon/config/config.h"

namespace buckwild::daemon {

struct ConfigDiff {
  // Keys that differ and cannot change while running ("network.virtual_device").
  std::vector<std::string> fixed;
  // Keys that differ and take effect at once ("security.max_connections").
  std::vector<std::string> settings;
  // [[psk]] entries by id and [[peer]] entries by name. A PSK is changed when
  // its key or allowed_prefixes differ; a peer when any of its keys differs.
  std::vector<std::string> psks_added, psks_removed, psks_changed;
  std::vector<std::string> peers_added, peers_removed, peers_changed;

  bool empty() const {
    return fixed.empty() && settings.empty() && psks_added.empty() && psks_removed.empty() &&
           psks_changed.empty() && peers_added.empty() && peers_removed.empty() &&
           peers_changed.empty();
  }
};

ConfigDiff diff_config(const Config& running, const Config& next);

// The refusal of a diff with fixed keys, one line per key:
// "network.virtual_device cannot change while running; restart buckwild to change it".
std::vector<std::string> fixed_key_problems(const ConfigDiff& diff);

bool same_peer(const PeerConfig& a, const PeerConfig& b);
bool same_psk(const PskConfig& a, const PskConfig& b);
// The same key bytes (allowed_prefixes aside).
bool same_psk_key(const PskConfig& a, const PskConfig& b);

}  // namespace buckwild::daemon

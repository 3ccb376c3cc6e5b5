#include "daemon/tunnel/peers.h"

namespace buckwild::daemon {

SysResult<Peers> Peers::create(const Config& config) {
  Peers peers;
  for (const PeerConfig& p : config.peers) {
    auto peer = std::make_unique<Peer>();
    peer->config = &p;
    std::vector<discovery::Psk> own;
    for (std::size_t i = 0; i < config.psks.size(); ++i) {
      if (!p.psk.empty() && config.psks[i].id != p.psk) continue;
      own.push_back({config.psks[i].id, crypto::SecretBytes::copy_of(config.psks[i].key.view())});
      peer->psk_index.push_back(i);
    }
    auto set = discovery::PskSet::create(std::move(own));
    if (!set) return sys_fail_plain(EINVAL, "peer " + p.name + ": " + set.error().what);
    peer->psks = std::make_unique<discovery::PskSet>(std::move(*set));
    peers.peers_.push_back(std::move(peer));
  }
  return peers;
}

std::optional<std::size_t> Peers::identify(const SocketAddress& source,
                                           std::string_view psk_id) const {
  for (std::size_t i = 0; i < peers_.size(); ++i) {
    const PeerConfig& pc = *peers_[i]->config;
    if (!pc.endpoint || pc.endpoint->ip.unmapped() != source.ip.unmapped()) continue;
    if (!pc.psk.empty() && pc.psk != psk_id) continue;
    return i;
  }
  for (std::size_t i = 0; i < peers_.size(); ++i) {
    const PeerConfig& pc = *peers_[i]->config;
    if (!pc.endpoint && !pc.psk.empty() && pc.psk == psk_id) return i;
  }
  return std::nullopt;
}

Peer* Peers::with_session(std::uint64_t session_id) {
  for (auto& p : peers_) {
    if (p != nullptr && p->session_id == session_id) return p.get();
  }
  return nullptr;
}

std::optional<std::size_t> Peers::find(std::string_view name) const {
  for (std::size_t i = 0; i < peers_.size(); ++i) {
    if (peers_[i] != nullptr && peers_[i]->config->name == name) return i;
  }
  return std::nullopt;
}

void Peers::adopt(std::size_t i, std::unique_ptr<Peer> kept) {
  kept->config = peers_[i]->config;
  kept->psk_index = std::move(peers_[i]->psk_index);
  peers_[i] = std::move(kept);
}

}  // namespace buckwild::daemon

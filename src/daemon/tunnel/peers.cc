#include "daemon/tunnel/peers.h"

namespace buckwild::daemon {

SysResult<Peers> Peers::create(const Config& config) {
  // The loader refuses these configurations with the key at fault; a
  // Config built otherwise (tests, a reload) is held to the same binding.
  Peers peers;
  for (const PeerConfig& p : config.peers) {
    const std::optional<std::size_t> k = peer_psk_index(config, p);
    if (!k) {
      return sys_fail_plain(EINVAL, "peer " + p.name +
                                        (p.psk.empty() ? std::string(": names no psk, and there are several")
                                                       : ": no [[psk]] has id " + p.psk));
    }
    for (const auto& other : peers.peers_) {
      if (other->psk_index.front() == *k) {
        return sys_fail_plain(EINVAL, "peers " + other->config->name + " and " + p.name +
                                          " both prove PSK " + config.psks[*k].id +
                                          ": each peer needs its own");
      }
    }
    if (!config.psks[*k].allowed_prefixes.empty()) {
      return sys_fail_plain(EINVAL, "PSK " + config.psks[*k].id + " authenticates peer " + p.name +
                                        " and cannot also have allowed_prefixes");
    }
    auto peer = std::make_unique<Peer>();
    peer->config = &p;
    std::vector<discovery::Psk> own;
    own.push_back({config.psks[*k].id, crypto::SecretBytes::copy_of(config.psks[*k].key.view())});
    peer->psk_index.push_back(*k);
    auto set = discovery::PskSet::create(std::move(own));
    if (!set) return sys_fail_plain(EINVAL, "peer " + p.name + ": " + set.error().what);
    peer->psks = std::make_unique<discovery::PskSet>(std::move(*set));
    peers.peers_.push_back(std::move(peer));
  }
  return peers;
}

std::optional<std::size_t> Peers::identify(std::size_t psk_index) const {
  for (std::size_t i = 0; i < peers_.size(); ++i) {
    if (peers_[i] != nullptr && peers_[i]->psk_index.front() == psk_index) return i;
  }
  return std::nullopt;
}

std::vector<std::size_t> Peers::psk_indices() const {
  std::vector<std::size_t> out;
  for (const auto& p : peers_) {
    if (p != nullptr) out.push_back(p->psk_index.front());
  }
  return out;
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

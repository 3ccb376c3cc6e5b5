// Relations between keys, checked once the file and the environment are
// read: required keys the environment may have supplied, ranges that depend
// on other keys, duplicates, and addresses that must (or must not) lie inside
// the tunnel network.
#include <algorithm>
#include <string>

#include "daemon/config/config_loader.h"

namespace buckwild::daemon::config_internal {
namespace {

constexpr std::size_t kMaxPsks = 256;

}  // namespace

void Loader::check() {
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

  if (config_.ntp.enabled && config_.ntp.servers.empty()) {
    report_key(origins_.contains("ntp.servers") ? "ntp.servers" : "ntp.enabled",
               "ntp.enabled = true needs at least one server in ntp.servers (three or more "
               "let a lying server be outvoted)");
  }

  if (config_.control.socket.empty()) {
    config_.control.socket = "/run/buckwild/" + net.virtual_device + ".sock";
  }

  check_psks();
  check_peers();
}

bool Loader::inside_virtual_network(const IpAddress& ip) const {
  const auto& net = config_.network;
  if (ip.is_v4())
    return origins_.contains("network.virtual_address") && net.virtual_address.contains(ip);
  return net.virtual_address6 && net.virtual_address6->contains(ip);
}

bool Loader::inside_virtual_network(const Cidr& c) const {
  const auto& net = config_.network;
  if (c.family() == IpFamily::kV4) return net.virtual_address.contains(c);
  return net.virtual_address6 && net.virtual_address6->contains(c);
}

void Loader::check_psks() {
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
        report(psk_origins_[i], base + ".id",
               "duplicate id " + in_quotes(psks[i].id) + " (also psk[" + std::to_string(j) + "])");
      }
    }
    const std::size_t bits = psks[i].key.size() * 8;
    if (!psks[i].key.empty() && bits < config_.security.entropy_requirement_bits) {
      report(psk_origins_[i], base + ".key",
             "has " + std::to_string(bits) +
                 " bits, fewer than security.entropy_requirement_bits (" +
                 std::to_string(config_.security.entropy_requirement_bits) +
                 "); buckwild genpsk makes 256");
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

void Loader::check_peers() {
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

    check_peer_psk(i);
  }
}

// A session's peer is the one bound to the PSK the initiator proved
// (docs/protocol.md §11.5): the address it came from may be a NAT's, shared
// by other holders. So each listed peer proves exactly one PSK, and that PSK
// names no other peer and admits no peer without an entry; otherwise a holder
// could not be told from the peer and would take its address and routes.
void Loader::check_peer_psk(std::size_t i) {
  PeerConfig& peer = config_.peers[i];
  const std::string base = "peer[" + std::to_string(i) + "]";
  const auto& psks = config_.psks;
  if (peer.psk.empty()) {
    if (psks.size() == 1 && !psks[0].id.empty()) {
      peer.psk = psks[0].id;  // the only one
    } else if (psks.size() > 1) {
      report(peer_table_origins_[i], base + ".psk",
             "missing: with " + std::to_string(psks.size()) +
                 " [[psk]] entries each [[peer]] must name the one it proves (a peer is "
                 "known by its PSK, not by its address)");
    }
    if (peer.psk.empty()) return;
  }
  // Where the problem is: its `psk`, or the [[peer]] that names none.
  auto report_psk = [&](const std::string& problem) {
    if (origins_.contains(base + ".psk")) {
      report_key(base + ".psk", problem);
    } else {
      report(peer_table_origins_[i], base + ".psk", problem);
    }
  };
  const std::optional<std::size_t> k = peer_psk_index(config_, peer);
  if (!k) {
    report_psk("no [[psk]] has id " + in_quotes(peer.psk));
    return;
  }
  for (std::size_t j = 0; j < i; ++j) {
    if (config_.peers[j].psk == peer.psk) {
      report_psk("PSK " + in_quotes(peer.psk) + " already authenticates peer[" +
                 std::to_string(j) + "] (" + in_quotes(config_.peers[j].name) +
                 "): a session proving it could be either, so give each peer its own [[psk]] "
                 "(buckwild genpsk makes one)");
      return;
    }
  }
  if (!psks[*k].allowed_prefixes.empty()) {
    report_key("psk[" + std::to_string(*k) + "].allowed_prefixes",
               "PSK " + in_quotes(peer.psk) + " authenticates " + base + " (" +
                   in_quotes(peer.name) +
                   "): whoever proves it is that peer, so it cannot also admit peers without "
                   "an entry; give those their own [[psk]]");
  }
}

}  // namespace buckwild::daemon::config_internal

namespace buckwild::daemon {

std::optional<std::size_t> peer_psk_index(const Config& config, const PeerConfig& peer) {
  if (peer.psk.empty()) {
    if (config.psks.size() == 1) return 0;
    return std::nullopt;
  }
  for (std::size_t k = 0; k < config.psks.size(); ++k) {
    if (config.psks[k].id == peer.psk) return k;
  }
  return std::nullopt;
}

}  // namespace buckwild::daemon

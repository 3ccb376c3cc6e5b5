#include "daemon/tunnel/session_table.h"

#include <spdlog/spdlog.h>

#include "daemon/tunnel/source_check.h"

namespace buckwild::daemon {

std::string short_id(std::uint64_t id) {
  return fmt::format("{:08x}…", id >> 32);
}

Succession succession(const SessionEntry& existing, TimePoint existing_since,
                      const session::Session& incoming, TimePoint now) {
  const bool crossed = existing.session->initiator() != incoming.initiator() &&
                       now - existing_since < kSimultaneousWindow;
  return crossed && incoming.id() > existing.id ? Succession::kKeepExisting
                                                : Succession::kReplaceExisting;
}

SessionEntry* SessionTable::find(std::uint64_t id) {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second.get();
}

const SessionEntry* SessionTable::find(std::uint64_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second.get();
}

std::vector<std::uint64_t> SessionTable::ids() const {
  std::vector<std::uint64_t> ids;
  ids.reserve(by_id_.size());
  for (const auto& [id, e] : by_id_) ids.push_back(id);
  return ids;
}

SessionEntry& SessionTable::insert(std::unique_ptr<SessionEntry> entry,
                                   std::optional<IpAddress> address) {
  SessionEntry& e = *entry;
  if (address) by_address_[*address] = e.id;
  by_id_.emplace(e.id, std::move(entry));
  return e;
}

std::unique_ptr<SessionEntry> SessionTable::remove(std::uint64_t id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return nullptr;
  std::unique_ptr<SessionEntry> e = std::move(it->second);
  by_id_.erase(it);
  std::erase_if(by_address_, [id](const auto& kv) { return kv.second == id; });
  return e;
}

SessionEntry* SessionTable::route(const IpAddress& destination) {
  if (auto it = by_address_.find(destination); it != by_address_.end()) {
    if (SessionEntry* e = find(it->second)) return e;
  }
  // Routed prefixes behind peers: longest match over the (few) configured routes.
  SessionEntry* best = nullptr;
  int best_len = -1;
  for (auto& [id, e] : by_id_) {
    for (const Cidr& c : e->allowed) {
      if (c.contains(destination) && c.prefix_len > best_len) {
        best = e.get();
        best_len = c.prefix_len;
      }
    }
  }
  return best;
}

bool SessionTable::accept_source(SessionEntry& e, const IpAddress& source) {
  const SourceVerdict verdict =
      check_source(e.allowed, e.claimed, e.claimable, source,
                   [this](const IpAddress& ip) { return belongs_to_someone(ip); });
  if (verdict != SourceVerdict::kClaim) return verdict == SourceVerdict::kAllowed;
  e.claimed = source;
  by_address_[source] = e.id;
  spdlog::info("session {}: peer without an entry uses virtual address {}", short_id(e.id),
               source.to_string());
  return true;
}

bool SessionTable::belongs_to_someone(const IpAddress& address) const {
  return by_address_.contains(address) || configured_address(address);
}

bool SessionTable::configured_address(const IpAddress& address) const {
  if (config_->network.virtual_address.address == address) return true;
  if (config_->network.virtual_address6 && config_->network.virtual_address6->address == address)
    return true;
  for (const PeerConfig& pc : config_->peers) {
    if (pc.virtual_address == address) return true;
    for (const Cidr& route : pc.routes) {
      if (route.contains(address)) return true;
    }
  }
  return false;
}

std::size_t SessionTable::unlisted() const {
  std::size_t n = 0;
  for (const auto& [id, e] : by_id_) n += e->peer ? 0 : 1;
  return n;
}

std::vector<std::uint64_t> SessionTable::unlisted_from(const IpAddress& ip) const {
  std::vector<std::uint64_t> ids;
  for (const auto& [id, e] : by_id_) {
    if (!e->peer && e->remote.ip.unmapped() == ip.unmapped()) ids.push_back(id);
  }
  return ids;
}

}  // namespace buckwild::daemon

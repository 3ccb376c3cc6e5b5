#include "daemon/stream/nat_table.h"

#include <cassert>
#include <functional>

namespace buckwild::daemon {

std::size_t NatKeyHash::operator()(const NatKey& k) const noexcept {
  const std::hash<SocketAddress> h;
  return h(k.source) * 1000003u ^ h(k.destination);
}

const NatRule* NatTable::find(const NatKey& key) const {
  auto it = rules_.find(key);
  return it == rules_.end() ? nullptr : &it->second;
}

std::optional<FlowId> NatTable::insert(const NatKey& key, const NatRule& rule) {
  auto [it, fresh] = rules_.try_emplace(key, rule);
  if (fresh) return std::nullopt;
  const FlowId previous = it->second.flow;
  it->second = rule;
  if (previous == rule.flow) return std::nullopt;
  return previous;
}

void NatTable::erase(const NatKey& key, FlowId owner) {
  if (auto it = rules_.find(key); it != rules_.end() && it->second.flow == owner) rules_.erase(it);
}

std::optional<std::uint16_t> NatTable::allocate_port(FlowId flow) {
  constexpr std::size_t kPorts = 65536 - kFirstPort;
  for (std::size_t tries = 0; tries < kPorts; ++tries) {
    const std::uint16_t p = next_port_;
    next_port_ = static_cast<std::uint16_t>(next_port_ == 65535 ? kFirstPort : next_port_ + 1);
    if (ports_.try_emplace(p, flow).second) return p;
  }
  return std::nullopt;
}

FlowId NatTable::port_owner(std::uint16_t port) const {
  auto it = ports_.find(port);
  return it == ports_.end() ? kNoFlow : it->second;
}

void NatTable::release_port(std::uint16_t port, FlowId owner) {
  if (auto it = ports_.find(port); it != ports_.end() && it->second == owner) ports_.erase(it);
}

bool NatTable::admits(const IpAddress& source) const {
  if (live_flows_ >= limits_.max_flows) return false;
  return flows_from(source) < limits_.max_per_source;
}

void NatTable::count_flow(const IpAddress& source) {
  ++per_source_[source];
  ++live_flows_;
}

void NatTable::uncount_flow(const IpAddress& source) {
  auto it = per_source_.find(source);
  assert(it != per_source_.end() && live_flows_ > 0);
  if (it == per_source_.end()) return;
  if (--it->second == 0) per_source_.erase(it);
  --live_flows_;
}

std::size_t NatTable::flows_from(const IpAddress& source) const {
  auto it = per_source_.find(source);
  return it == per_source_.end() ? 0 : it->second;
}

}  // namespace buckwild::daemon

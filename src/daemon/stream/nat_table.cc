#include "daemon/stream/nat_table.h"

#include <algorithm>
#include <cassert>
#include <functional>

namespace buckwild::daemon {

std::size_t NatKeyHash::operator()(const NatKey& k) const noexcept {
  const std::hash<SocketAddress> h;
  return h(k.source) * 1000003u ^ h(k.destination);
}

std::size_t FlowOwnerHash::operator()(const FlowOwner& o) const noexcept {
  const std::size_t h = o.kind == FlowOwner::Kind::kAddress ? std::hash<IpAddress>{}(o.address)
                                                            : std::hash<std::uint64_t>{}(o.id);
  return h * 31u + static_cast<std::size_t>(o.kind);
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

NatTable::NatTable(NatLimits limits, std::size_t ports)
    : limits_(limits), owners_(std::min(ports, kPorts), kNoFlow) {
  for (std::size_t i = 0; i < owners_.size(); ++i)
    free_ports_.push_back(static_cast<std::uint16_t>(kFirstPort + i));
}

std::optional<std::uint16_t> NatTable::allocate_port(FlowId flow) {
  if (free_ports_.empty()) return std::nullopt;
  const std::uint16_t p = free_ports_.front();
  free_ports_.pop_front();
  owners_[p - kFirstPort] = flow;
  return p;
}

FlowId NatTable::port_owner(std::uint16_t port) const {
  const std::size_t i = port - std::size_t{kFirstPort};
  return port < kFirstPort || i >= owners_.size() ? kNoFlow : owners_[i];
}

void NatTable::release_port(std::uint16_t port, FlowId owner) {
  if (owner == kNoFlow || port_owner(port) != owner) return;
  owners_[port - kFirstPort] = kNoFlow;
  free_ports_.push_back(port);
}

bool NatTable::admits(const FlowOwner& owner) const {
  if (live_flows_ >= limits_.max_flows) return false;
  return flows_of(owner) < limits_.max_per_source;
}

void NatTable::count_flow(const FlowOwner& owner) {
  ++per_owner_[owner];
  ++live_flows_;
}

void NatTable::uncount_flow(const FlowOwner& owner) {
  auto it = per_owner_.find(owner);
  assert(it != per_owner_.end() && live_flows_ > 0);
  if (it == per_owner_.end()) return;
  if (--it->second == 0) per_owner_.erase(it);
  --live_flows_;
}

std::size_t NatTable::flows_of(const FlowOwner& owner) const {
  auto it = per_owner_.find(owner);
  return it == per_owner_.end() ? 0 : it->second;
}

}  // namespace buckwild::daemon

// The valid-port map and the daemon's own-port map: what the frame filter
// lets through to the hopping range. The valid-port map changes
// make-before-break, with a bitmap of ports in use beside it that the
// programs check before the map.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "bpf/filter.skel.h"
#include "daemon/ebpf/ebpf_internal.h"
#include "daemon/ebpf/ebpf_programs.h"

namespace buckwild::daemon {
namespace {

bw_port_key make_key(const IpAddress& source, std::uint16_t port) {
  bw_port_key key{};
  IpAddress mapped = source.mapped_v6();
  std::memcpy(key.source.bytes, mapped.bytes().data(), sizeof key.source.bytes);
  key.port = port;
  return key;
}

// The entries of `wanted` that fit in `capacity`, nearest their group's middle
// window first: a set that outgrows the map loses its outermost windows (the
// largest delay allowances), never the windows in force now. A group is one
// connection of one session; its windows are w - d ... w + d.
template <class PortMap>
std::size_t trim_to_capacity(PortMap& wanted, std::size_t capacity) {
  if (wanted.size() <= capacity) return 0;
  struct Span {
    std::uint32_t first;
    std::int64_t low = 0, high = 0;
  };
  auto group_of = [](const bw_port_value& v) { return (v.session_id << 16) ^ v.connection_id; };
  std::unordered_map<std::uint64_t, Span> spans;
  // Windows are the low 32 bits of absolute windows: measured from the group's
  // first entry they are small signed numbers, so a wrap changes nothing.
  auto offset = [](std::uint32_t w, std::uint32_t from) {
    return static_cast<std::int64_t>(static_cast<std::int32_t>(w - from));
  };
  for (const auto& [key, value] : wanted) {
    auto [it, fresh] = spans.try_emplace(group_of(value), Span{value.window});
    const std::int64_t o = offset(value.window, it->second.first);
    it->second.low = fresh ? o : std::min(it->second.low, o);
    it->second.high = fresh ? o : std::max(it->second.high, o);
  }
  std::vector<std::pair<std::int64_t, bw_port_key>> by_distance;
  by_distance.reserve(wanted.size());
  for (const auto& [key, value] : wanted) {
    const Span& span = spans.at(group_of(value));
    const std::int64_t twice = 2 * offset(value.window, span.first) - (span.low + span.high);
    by_distance.emplace_back(twice < 0 ? -twice : twice, key);
  }
  std::stable_sort(by_distance.begin(), by_distance.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (std::size_t i = capacity; i < by_distance.size(); ++i) wanted.erase(by_distance[i].second);
  return by_distance.size() - capacity;
}

}  // namespace

std::size_t EbpfPrograms::PortKeyHash::operator()(const bw_port_key& key) const noexcept {
  return std::hash<std::string_view>{}(
      std::string_view(reinterpret_cast<const char*>(&key), sizeof key));
}

bool EbpfPrograms::PortKeyEqual::operator()(const bw_port_key& a,
                                            const bw_port_key& b) const noexcept {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

SysResult<std::chrono::nanoseconds> EbpfPrograms::update_valid_ports(
    const std::vector<ValidPort>& next) {
  PortMap wanted;
  wanted.reserve(next.size());
  for (const ValidPort& p : next) {
    bw_port_value value{};
    value.session_id = p.session_id;
    value.window = p.window;
    value.connection_id = p.connection_id;
    value.worker = p.worker;
    wanted[make_key(p.source, p.port)] = value;
  }
  // Fail safe (issue #20, defect 5): a set larger than the map used to be
  // refused whole, leaving the old set in force while every session hopped
  // away from it. Now the outermost windows give way.
  trimmed_ = trim_to_capacity(wanted, max_valid_ports_);

  std::vector<bw_port_key> add_keys;
  std::vector<bw_port_value> add_values;
  std::size_t new_keys = 0;
  for (const auto& [key, value] : wanted) {
    auto it = current_.find(key);
    if (it != current_.end() && std::memcmp(&it->second, &value, sizeof value) == 0) continue;
    if (it == current_.end()) ++new_keys;
    add_keys.push_back(key);
    add_values.push_back(value);
  }
  std::vector<bw_port_key> remove_keys;
  for (const auto& entry : current_) {
    if (!wanted.contains(entry.first)) remove_keys.push_back(entry.first);
  }
  // Make-before-break holds old and new together for a moment. When they do
  // not fit together, the leaving entries go first: a pair in both sets is
  // still never missing, only the leaving ones end a moment early.
  const bool remove_first = current_.size() + new_keys > max_valid_ports_;

  const int fd = bpf_map__fd(skel_->maps.valid_ports);
  bpf_map_batch_opts opts{};
  opts.sz = sizeof opts;
  opts.elem_flags = BPF_ANY;
  // valid_port_bits, shared with the programs through the mapping of .bss: a
  // new port's bit is set before its entries exist, and bits are cleared only
  // once the map has lost a port's last entry (a set bit just means "look").
  __u64* bits = skel_->bss->valid_port_bits;
  const auto start = std::chrono::steady_clock::now();
  for (const bw_port_key& key : add_keys) {
    __atomic_fetch_or(&bits[key.port >> 6], __u64{1} << (key.port & 63), __ATOMIC_RELEASE);
  }
  auto add = [&]() -> SysResult<void> {
    if (add_keys.empty()) return {};
    auto count = static_cast<__u32>(add_keys.size());
    if (int err = bpf_map_update_batch(fd, add_keys.data(), add_values.data(), &count, &opts);
        err != 0) {
      for (__u32 i = 0; i < count && i < add_keys.size(); ++i)
        current_[add_keys[i]] = add_values[i];
      return sys_fail(-err, "cannot add to the valid-port map");
    }
    return {};
  };
  auto remove = [&]() -> SysResult<void> {
    if (remove_keys.empty()) return {};
    bpf_map_batch_opts del{};
    del.sz = sizeof del;
    auto count = static_cast<__u32>(remove_keys.size());
    if (int err = bpf_map_delete_batch(fd, remove_keys.data(), &count, &del); err != 0) {
      if (!remove_first) {
        for (const auto& [key, value] : wanted) current_[key] = value;
      }
      for (__u32 i = 0; i < count && i < remove_keys.size(); ++i) current_.erase(remove_keys[i]);
      return sys_fail(-err, "cannot remove from the valid-port map");
    }
    if (remove_first) {
      for (const bw_port_key& key : remove_keys) current_.erase(key);
    }
    return {};
  };
  if (auto done = remove_first ? remove() : add(); !done) return std::unexpected(done.error());
  if (auto done = remove_first ? add() : remove(); !done) return std::unexpected(done.error());
  std::array<__u64, BW_PORT_BIT_WORDS> now_valid{};
  for (const auto& entry : wanted)
    now_valid[entry.first.port >> 6] |= __u64{1} << (entry.first.port & 63);
  for (std::size_t i = 0; i < now_valid.size(); ++i) {
    if (__atomic_load_n(&bits[i], __ATOMIC_RELAXED) != now_valid[i]) {
      __atomic_store_n(&bits[i], now_valid[i], __ATOMIC_RELEASE);
    }
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  current_ = std::move(wanted);
  return std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed);
}

SysResult<void> EbpfPrograms::set_own_ports(const std::vector<std::uint16_t>& ports) {
  std::vector<std::pair<std::uint16_t, std::uint16_t>> of_worker0;
  of_worker0.reserve(ports.size());
  for (std::uint16_t port : ports) of_worker0.emplace_back(port, 0);
  return set_owned_ports(of_worker0);
}

SysResult<void> EbpfPrograms::set_owned_ports(
    const std::vector<std::pair<std::uint16_t, std::uint16_t>>& ports) {
  std::unordered_map<std::uint16_t, std::uint16_t> wanted;
  for (const auto& [port, worker] : ports) wanted.emplace(port, worker);
  if (wanted.size() > BW_OWN_PORTS_MAX) {
    return sys_fail_plain(E2BIG, "the daemon's own-port map holds " +
                                     std::to_string(BW_OWN_PORTS_MAX) + " ports; " +
                                     std::to_string(wanted.size()) + " asked");
  }
  // Add first: a port of ours must never look like another application's.
  for (const auto& [port, worker] : wanted) {
    auto it = own_ports_.find(port);
    if (it != own_ports_.end() && it->second == worker) continue;
    const std::uint8_t value = static_cast<std::uint8_t>(1 + worker);
    if (int err = bpf_map__update_elem(skel_->maps.own_ports, &port, sizeof port, &value,
                                       sizeof value, BPF_ANY);
        err != 0) {
      return sys_fail(-err, "cannot add to the own-port map");
    }
    own_ports_[port] = worker;
  }
  for (auto it = own_ports_.begin(); it != own_ports_.end();) {
    if (wanted.contains(it->first)) {
      ++it;
      continue;
    }
    std::uint16_t port = it->first;
    if (int err = bpf_map__delete_elem(skel_->maps.own_ports, &port, sizeof port, 0);
        err != 0 && err != -ENOENT) {
      return sys_fail(-err, "cannot remove from the own-port map");
    }
    it = own_ports_.erase(it);
  }
  return {};
}


SysResult<void> EbpfPrograms::set_peer_sources(const std::vector<IpAddress>& sources) {
  std::vector<std::pair<IpAddress, std::uint16_t>> of_worker0;
  of_worker0.reserve(sources.size());
  for (const IpAddress& a : sources) of_worker0.emplace_back(a, 0);
  return set_served_peer_sources(of_worker0);
}

SysResult<void> EbpfPrograms::set_served_peer_sources(
    const std::vector<std::pair<IpAddress, std::uint16_t>>& sources) {
  std::vector<std::pair<IpAddress, std::uint16_t>> wanted;
  wanted.reserve(sources.size());
  for (const auto& [a, worker] : sources) wanted.emplace_back(a.mapped_v6(), worker);
  // One worker per address: the first named (stable sort keeps the order).
  std::stable_sort(wanted.begin(), wanted.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  wanted.erase(std::unique(wanted.begin(), wanted.end(),
                           [](const auto& x, const auto& y) { return x.first == y.first; }),
               wanted.end());
  if (wanted == peer_sources_) return {};
  if (wanted.size() > BW_PEER_SOURCES_MAX) {
    return sys_fail_plain(E2BIG, "the peer-source map holds " + std::to_string(BW_PEER_SOURCES_MAX) +
                                     " addresses; " + std::to_string(wanted.size()) + " asked");
  }
  const auto before = [this](const IpAddress& a) -> const std::pair<IpAddress, std::uint16_t>* {
    auto it = std::lower_bound(peer_sources_.begin(), peer_sources_.end(), a,
                               [](const auto& e, const IpAddress& x) { return e.first < x; });
    return it != peer_sources_.end() && it->first == a ? &*it : nullptr;
  };
  for (const auto& [a, worker] : wanted) {
    const auto* old = before(a);
    if (old != nullptr && old->second == worker) continue;
    const bw_addr k = addr_key(a);
    const std::uint8_t value = static_cast<std::uint8_t>(1 + worker);
    if (int err = bpf_map__update_elem(skel_->maps.peer_sources, &k, sizeof k, &value,
                                       sizeof value, BPF_ANY);
        err != 0) {
      return sys_fail(-err, "cannot add to the peer-source map");
    }
  }
  for (const auto& [a, worker] : peer_sources_) {
    if (std::binary_search(wanted.begin(), wanted.end(), std::pair<IpAddress, std::uint16_t>{a, 0},
                           [](const auto& x, const auto& y) { return x.first < y.first; })) {
      continue;
    }
    const bw_addr k = addr_key(a);
    if (int err = bpf_map__delete_elem(skel_->maps.peer_sources, &k, sizeof k, 0);
        err != 0 && err != -ENOENT) {
      return sys_fail(-err, "cannot remove from the peer-source map");
    }
  }
  peer_sources_ = std::move(wanted);
  return {};
}

SysResult<void> EbpfPrograms::set_tun_routes(const std::vector<std::pair<Cidr, std::uint16_t>>& routes) {
  // One worker per prefix: the first named.
  std::map<RouteKey, std::uint16_t> wanted;
  for (const auto& [c, worker] : routes) {
    const Cidr net = c.network();
    wanted.emplace(RouteKey{net.address, net.prefix_len}, worker);
  }
  if (wanted.size() > BW_TUN_ROUTES_MAX) {
    return sys_fail_plain(E2BIG, "the TUN steering map holds " + std::to_string(BW_TUN_ROUTES_MAX) +
                                     " prefixes; " + std::to_string(wanted.size()) + " asked");
  }
  const auto key_of = [](const RouteKey& r) {
    bw_route_key k{};
    k.address = addr_key(r.first);
    k.prefix_len = r.first.is_v6() ? r.second : 96u + r.second;
    return k;
  };
  // Written before removed: a prefix moving between workers is never missing.
  for (const auto& [route, worker] : wanted) {
    auto it = tun_routes_.find(route);
    if (it != tun_routes_.end() && it->second == worker) continue;
    const bw_route_key k = key_of(route);
    const __u32 value = worker;
    if (int err = bpf_map__update_elem(skel_->maps.tun_routes, &k, sizeof k, &value, sizeof value,
                                       BPF_ANY);
        err != 0) {
      return sys_fail(-err, "cannot add to the TUN steering map");
    }
    tun_routes_[route] = worker;
  }
  for (auto it = tun_routes_.begin(); it != tun_routes_.end();) {
    if (wanted.contains(it->first)) {
      ++it;
      continue;
    }
    const bw_route_key k = key_of(it->first);
    if (int err = bpf_map__delete_elem(skel_->maps.tun_routes, &k, sizeof k, 0);
        err != 0 && err != -ENOENT) {
      return sys_fail(-err, "cannot remove from the TUN steering map");
    }
    it = tun_routes_.erase(it);
  }
  return {};
}

}  // namespace buckwild::daemon

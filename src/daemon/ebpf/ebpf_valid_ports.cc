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
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "bpf/filter.skel.h"
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
    wanted[make_key(p.source, p.port)] = value;
  }

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
  // Make-before-break holds old and new together for a moment.
  if (current_.size() + new_keys > max_valid_ports_) {
    return sys_fail_plain(E2BIG, "the valid-port map holds " + std::to_string(max_valid_ports_) +
                                     " entries; the old and new sets together need " +
                                     std::to_string(current_.size() + new_keys));
  }

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
  if (!add_keys.empty()) {
    auto count = static_cast<__u32>(add_keys.size());
    if (int err = bpf_map_update_batch(fd, add_keys.data(), add_values.data(), &count, &opts);
        err != 0) {
      for (__u32 i = 0; i < count && i < add_keys.size(); ++i)
        current_[add_keys[i]] = add_values[i];
      return sys_fail(-err, "cannot add to the valid-port map");
    }
  }
  if (!remove_keys.empty()) {
    bpf_map_batch_opts del{};
    del.sz = sizeof del;
    auto count = static_cast<__u32>(remove_keys.size());
    if (int err = bpf_map_delete_batch(fd, remove_keys.data(), &count, &del); err != 0) {
      for (const auto& [key, value] : wanted) current_[key] = value;
      for (__u32 i = 0; i < count && i < remove_keys.size(); ++i) current_.erase(remove_keys[i]);
      return sys_fail(-err, "cannot remove from the valid-port map");
    }
  }
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
  const std::unordered_set<std::uint16_t> wanted(ports.begin(), ports.end());
  if (wanted.size() > BW_OWN_PORTS_MAX) {
    return sys_fail_plain(E2BIG, "the daemon's own-port map holds " +
                                     std::to_string(BW_OWN_PORTS_MAX) + " ports; " +
                                     std::to_string(wanted.size()) + " asked");
  }
  const std::uint8_t one = 1;
  // Add first: a port of ours must never look like another application's.
  for (std::uint16_t port : wanted) {
    if (own_ports_.contains(port)) continue;
    if (int err = bpf_map__update_elem(skel_->maps.own_ports, &port, sizeof port, &one, sizeof one,
                                       BPF_ANY);
        err != 0) {
      return sys_fail(-err, "cannot add to the own-port map");
    }
    own_ports_.insert(port);
  }
  for (auto it = own_ports_.begin(); it != own_ports_.end();) {
    if (wanted.contains(*it)) {
      ++it;
      continue;
    }
    std::uint16_t port = *it;
    if (int err = bpf_map__delete_elem(skel_->maps.own_ports, &port, sizeof port, 0);
        err != 0 && err != -ENOENT) {
      return sys_fail(-err, "cannot remove from the own-port map");
    }
    it = own_ports_.erase(it);
  }
  return {};
}

}  // namespace buckwild::daemon

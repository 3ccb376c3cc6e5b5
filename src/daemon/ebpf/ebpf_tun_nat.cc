// Stream mode's NAT in the kernel: bw_tun_nat at TC egress of the virtual
// interface, and the rules it reads (docs/architecture.md "Transparent TCP").
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "bpf/filter.skel.h"
#include "daemon/ebpf/ebpf_internal.h"
#include "daemon/ebpf/ebpf_programs.h"

namespace buckwild::daemon {
namespace {

// Our filter at the egress hook of the virtual interface.
TcFilter egress_filter(int ifindex) {
  return TcFilter{.ifindex = ifindex, .point = BPF_TC_EGRESS, .handle = 0xB3E, .priority = 1};
}

bw_nat_key nat_key(const SocketAddress& source, const SocketAddress& destination) {
  bw_nat_key k{};
  k.source = addr_key(source.ip);
  k.dest = addr_key(destination.ip);
  k.source_port = source.port;
  k.dest_port = destination.port;
  return k;
}

}  // namespace

SysResult<void> EbpfPrograms::attach_tun_nat(int ifindex) {
  if (tun_nat_ifindex_ != 0) return sys_fail_plain(EEXIST, "the stream NAT program is attached already");
  auto created = egress_filter(ifindex).attach(tun_nat_program());
  if (!created) return sys_fail_plain(created.error().sys_errno, "cannot attach at TC egress: " + created.error().message);
  tun_nat_ifindex_ = ifindex;
  tun_nat_created_hook_ = *created;
  return {};
}

void EbpfPrograms::detach_tun_nat() {
  if (tun_nat_ifindex_ == 0) return;
  const TcFilter filter = egress_filter(tun_nat_ifindex_);
  bpf_tc_hook hook = filter.hook();
  bpf_tc_opts ours = filter.opts();
  bpf_tc_detach(&hook, &ours);  // gone already when the device went first
  if (tun_nat_created_hook_) filter.remove_qdisc();
  tun_nat_ifindex_ = 0;
}

int EbpfPrograms::tun_nat_program() const {
  return bpf_program__fd(skel_->progs.bw_tun_nat);
}

SysResult<void> EbpfPrograms::set_nat_rule(const SocketAddress& source, const SocketAddress& destination,
                                           const SocketAddress& new_source,
                                           const SocketAddress& new_destination) {
  const bw_nat_key k = nat_key(source, destination);
  bw_nat_value v{};
  v.source = addr_key(new_source.ip);
  v.dest = addr_key(new_destination.ip);
  v.source_port = new_source.port;
  v.dest_port = new_destination.port;
  if (int err = bpf_map__update_elem(skel_->maps.tun_nat, &k, sizeof k, &v, sizeof v, BPF_ANY); err != 0) {
    return sys_fail_plain(-err, "cannot add to the stream NAT map: " + errno_text(-err));
  }
  return {};
}

SysResult<void> EbpfPrograms::erase_nat_rule(const SocketAddress& source, const SocketAddress& destination) {
  const bw_nat_key k = nat_key(source, destination);
  if (int err = bpf_map__delete_elem(skel_->maps.tun_nat, &k, sizeof k, 0); err != 0 && err != -ENOENT) {
    return sys_fail_plain(-err, "cannot remove from the stream NAT map: " + errno_text(-err));
  }
  return {};
}

SysResult<std::array<std::uint64_t, BW_NAT_COUNTER_COUNT>> EbpfPrograms::nat_counters() const {
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return sys_fail(-cpus, "cannot count the possible CPUs");
  std::vector<__u64> per_cpu(static_cast<std::size_t>(cpus));
  std::array<std::uint64_t, BW_NAT_COUNTER_COUNT> out{};
  for (__u32 key = 0; key < BW_NAT_COUNTER_COUNT; ++key) {
    if (int err = bpf_map__lookup_elem(skel_->maps.tun_nat_counters, &key, sizeof key, per_cpu.data(),
                                       per_cpu.size() * sizeof(__u64), 0);
        err != 0) {
      return sys_fail(-err, "cannot read the stream NAT counters");
    }
    for (__u64 v : per_cpu) out[key] += v;
  }
  return out;
}

}  // namespace buckwild::daemon

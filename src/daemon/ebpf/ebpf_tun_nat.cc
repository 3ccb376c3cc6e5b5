// Stream mode's NAT in the kernel: bw_tun_nat at TC egress of the virtual
// interface, and the rules it reads (docs/architecture.md "Transparent TCP").
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "bpf/filter.skel.h"
#include "daemon/ebpf/ebpf_programs.h"

namespace buckwild::daemon {
namespace {

// Our filter's place at the egress hook of the virtual interface: a fixed
// handle and priority, so a replaced filter is found again to remove.
constexpr std::uint32_t kNatHandle = 0xB3E;
constexpr std::uint32_t kNatPriority = 1;

bpf_tc_hook egress_hook(int ifindex) {
  bpf_tc_hook hook{};
  hook.sz = sizeof hook;
  hook.ifindex = ifindex;
  hook.attach_point = BPF_TC_EGRESS;
  return hook;
}

bpf_tc_opts our_nat_filter() {
  bpf_tc_opts opts{};
  opts.sz = sizeof opts;
  opts.handle = kNatHandle;
  opts.priority = kNatPriority;
  return opts;
}

void put_address(bw_addr& out, const IpAddress& a) {
  const IpAddress mapped = a.mapped_v6();
  std::memcpy(out.bytes, mapped.bytes().data(), sizeof out.bytes);
}

bw_nat_key nat_key(const SocketAddress& source, const SocketAddress& destination) {
  bw_nat_key k{};
  put_address(k.source, source.ip);
  put_address(k.dest, destination.ip);
  k.source_port = source.port;
  k.dest_port = destination.port;
  return k;
}

}  // namespace

SysResult<void> EbpfPrograms::attach_tun_nat(int ifindex) {
  if (tun_nat_ifindex_ != 0) return sys_fail_plain(EEXIST, "the stream NAT program is attached already");
  bpf_tc_hook hook = egress_hook(ifindex);
  int err = bpf_tc_hook_create(&hook);  // the clsact qdisc
  if (err != 0 && err != -EEXIST) return sys_fail_plain(-err, "cannot add a clsact qdisc: " + errno_text(-err));
  const bool created = err == 0;
  bpf_tc_opts opts = our_nat_filter();
  opts.prog_fd = tun_nat_program();
  opts.flags = BPF_TC_F_REPLACE;
  err = bpf_tc_attach(&hook, &opts);
  if (err != 0) {
    if (created) {
      hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
      bpf_tc_hook_destroy(&hook);
    }
    return sys_fail_plain(-err, "cannot attach at TC egress: " + errno_text(-err));
  }
  tun_nat_ifindex_ = ifindex;
  tun_nat_created_hook_ = created;
  return {};
}

void EbpfPrograms::detach_tun_nat() {
  if (tun_nat_ifindex_ == 0) return;
  bpf_tc_hook hook = egress_hook(tun_nat_ifindex_);
  bpf_tc_opts ours = our_nat_filter();
  bpf_tc_detach(&hook, &ours);  // gone already when the device went first
  if (tun_nat_created_hook_) {
    hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
    bpf_tc_hook_destroy(&hook);
  }
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
  put_address(v.source, new_source.ip);
  put_address(v.dest, new_destination.ip);
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

// Helpers the eBPF loader's files share (ebpf_attach.cc, ebpf_tun_nat.cc,
// ebpf_valid_ports.cc): a map key's address, and one cls_bpf filter of ours
// at a TC hook.
#pragma once

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "bpf/filter_abi.h"
#include "core/common/ip_address.h"
#include "daemon/os/sys_error.h"

namespace buckwild::daemon {

// An address as the maps key it: IPv6, IPv4 as ::ffff:a.b.c.d.
inline bw_addr addr_key(const IpAddress& a) {
  bw_addr k{};
  const IpAddress mapped = a.mapped_v6();
  std::memcpy(k.bytes, mapped.bytes().data(), sizeof k.bytes);
  return k;
}

// Our filter's place at a TC hook: a fixed handle and priority, so a daemon
// restarted after a crash replaces its own stale filter instead of stacking
// a second one, and finds it again to remove.
struct TcFilter {
  int ifindex = 0;
  bpf_tc_attach_point point = BPF_TC_INGRESS;
  std::uint32_t handle = 0;
  std::uint32_t priority = 1;

  bpf_tc_hook hook() const {
    bpf_tc_hook h{};
    h.sz = sizeof h;
    h.ifindex = ifindex;
    h.attach_point = point;
    return h;
  }
  bpf_tc_opts opts() const {
    bpf_tc_opts o{};
    o.sz = sizeof o;
    o.handle = handle;
    o.priority = priority;
    return o;
  }
  // Removes the clsact qdisc (both hooks) from the interface.
  void remove_qdisc() const {
    bpf_tc_hook h = hook();
    h.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
    bpf_tc_hook_destroy(&h);
  }
  // Attaches `prog_fd`, adding the clsact qdisc if the interface has none.
  // Returns whether it added the qdisc (then removing it is ours); on failure
  // a qdisc it added is gone again. Errors: the kernel's errno.
  SysResult<bool> attach(int prog_fd) const {
    bpf_tc_hook h = hook();
    int err = bpf_tc_hook_create(&h);
    if (err != 0 && err != -EEXIST) return sys_fail_plain(-err, errno_text(-err));
    const bool created = err == 0;
    bpf_tc_opts o = opts();
    o.prog_fd = prog_fd;
    o.flags = BPF_TC_F_REPLACE;
    err = bpf_tc_attach(&h, &o);
    if (err != 0) {
      if (created) remove_qdisc();
      return sys_fail_plain(-err, errno_text(-err));
    }
    return created;
  }
};

}  // namespace buckwild::daemon

// Attaching the frame filter to underlay interfaces and taking it off again:
// XDP in the driver or generic mode as a bpf_link, or a TC ingress filter,
// tried in the order asked; bare-IP interfaces (tun, wireguard) marked for
// the programs, which then parse from the IP header.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "bpf/filter.skel.h"
#include "daemon/ebpf/ebpf_internal.h"
#include "daemon/ebpf/ebpf_programs.h"

namespace buckwild::daemon {
namespace {

// Our TC filter at the ingress hook of an underlay interface.
TcFilter ingress_filter(int ifindex) {
  return TcFilter{.ifindex = ifindex, .point = BPF_TC_INGRESS, .handle = 0xB3D, .priority = 1};
}

// True when frames on `name` start at the IP header (tun, wireguard), false
// for an Ethernet header (including loopback). Other link types are refused.
SysResult<bool> bare_ip_link(const std::string& name) {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return sys_fail(errno, "cannot create a socket to query " + name);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFHWADDR, &ifr) != 0) {
    return sys_fail(errno, "cannot read the link type of " + name);
  }
  switch (ifr.ifr_hwaddr.sa_family) {
    case ARPHRD_ETHER:
    case ARPHRD_LOOPBACK:
      return false;
    case ARPHRD_NONE:
    case ARPHRD_RAWIP:
      return true;
    default:
      return sys_fail_plain(EOPNOTSUPP, "interface " + name + " has link type " +
                                            std::to_string(ifr.ifr_hwaddr.sa_family) +
                                            ", which the eBPF filter cannot parse");
  }
}

std::uint32_t program_id(int prog_fd) {
  bpf_prog_info info{};
  __u32 len = sizeof info;
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) return 0;
  return info.id;
}

}  // namespace

std::vector<InterfaceAttachment> EbpfPrograms::attachments() const {
  std::vector<InterfaceAttachment> out;
  out.reserve(interfaces_.size());
  for (const Interface& iface : interfaces_) out.push_back(iface.attachment);
  return out;
}

SysResult<InterfaceAttachment> EbpfPrograms::attach_interface(std::string_view interface,
                                                              std::span<const AttachMode> order) {
  std::string name(interface);
  if (order.empty()) return sys_fail_plain(EINVAL, "no attach mode to try on " + name);
  unsigned index = ::if_nametoindex(name.c_str());
  if (index == 0) return sys_fail_plain(ENODEV, "no network interface named \"" + name + "\"");
  const int ifindex = static_cast<int>(index);
  for (const Interface& iface : interfaces_) {
    if (iface.attachment.ifindex == ifindex) {
      return sys_fail_plain(EEXIST, "the eBPF filter is already attached to " + name);
    }
  }
  auto bare_ip = bare_ip_link(name);
  if (!bare_ip) return std::unexpected(bare_ip.error());

  Interface iface;
  iface.attachment.interface = name;
  iface.attachment.ifindex = ifindex;
  iface.l3_device = *bare_ip;
  __u32 key = index;
  if (iface.l3_device) {
    __u8 one = 1;
    if (int err = bpf_map__update_elem(skel_->maps.l3_devices, &key, sizeof key, &one, sizeof one,
                                       BPF_ANY);
        err != 0) {
      return sys_fail(-err, "cannot mark " + name + " as a bare-IP interface");
    }
  }
  std::string reasons;
  int last_errno = 0;
  for (AttachMode mode : order) {
    auto attached = try_attach(iface, mode);
    if (attached) {
      iface.attachment.mode = mode;
      iface.attachment.fallback_reason = reasons;
      InterfaceAttachment result = iface.attachment;
      interfaces_.push_back(std::move(iface));
      return result;
    }
    if (!reasons.empty()) reasons += "; ";
    reasons += std::string(attach_mode_name(mode)) + ": " + attached.error().message;
    last_errno = attached.error().sys_errno;
  }
  if (iface.l3_device) bpf_map__delete_elem(skel_->maps.l3_devices, &key, sizeof key, 0);
  return sys_fail_plain(last_errno,
                        "cannot attach the eBPF filter to " + name + " (" + reasons + ")");
}

SysResult<void> EbpfPrograms::try_attach(Interface& iface, AttachMode mode) {
  const int ifindex = iface.attachment.ifindex;
  if (mode == AttachMode::kXdpDriver || mode == AttachMode::kXdpGeneric) {
    // A link, not a netlink attachment: it goes away with the last descriptor,
    // so a daemon that dies cannot leave the interface filtered.
    bpf_link_create_opts opts{};
    opts.sz = sizeof opts;
    opts.flags = mode == AttachMode::kXdpDriver ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
    int fd = bpf_link_create(bpf_program__fd(skel_->progs.bw_xdp), ifindex, BPF_XDP, &opts);
    if (fd < 0) return sys_fail_plain(-fd, errno_text(-fd));
    iface.xdp_link.reset(fd);
    return {};
  }

  auto prog = tc_program();  // loaded the first time an interface needs it
  if (!prog) return std::unexpected(prog.error());
  auto created = ingress_filter(ifindex).attach(*prog);
  if (!created) return std::unexpected(created.error());
  iface.tc = true;
  iface.created_tc_hook = *created;
  return {};
}

void EbpfPrograms::detach_interface(Interface& iface) {
  iface.xdp_link.reset();
  if (!iface.tc) return;
  const TcFilter filter = ingress_filter(iface.attachment.ifindex);
  bpf_tc_hook hook = filter.hook();
  bpf_tc_opts query = filter.opts();
  // Remove the filter only if it is still ours (not replaced by another
  // daemon since).
  if (bpf_tc_query(&hook, &query) == 0 &&
      query.prog_id == program_id(program_fd(BpfHook::kTc))) {
    bpf_tc_opts ours = filter.opts();
    bpf_tc_detach(&hook, &ours);
  }
  if (iface.created_tc_hook) filter.remove_qdisc();
  iface.tc = false;
}

}  // namespace buckwild::daemon

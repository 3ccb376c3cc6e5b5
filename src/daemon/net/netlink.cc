#include "daemon/net/netlink.h"

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>

namespace buckwild::daemon {
namespace {

constexpr std::size_t kBufferSize =
    32 * 1024;  // > MNL_SOCKET_BUFFER_SIZE: dumps come in big pieces

// State shared by the data callback and the control callbacks of one request.
struct Exchange {
  const std::function<void(const nlmsghdr*)>* on_message;
  std::string kernel_message;  // from the extended ACK, if any
};

int data_cb(const nlmsghdr* nlh, void* data) {
  auto* ex = static_cast<Exchange*>(data);
  if (*ex->on_message) (*ex->on_message)(nlh);
  return MNL_CB_OK;
}

int ext_ack_attr_cb(const nlattr* attr, void* data) {
  if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
      mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0) {
    static_cast<Exchange*>(data)->kernel_message = mnl_attr_get_str(attr);
  }
  return MNL_CB_OK;
}

// NLMSG_ERROR: an error code of 0 is the acknowledgement; anything else is the
// failure, with an optional extended-ACK text after the echoed request header.
int error_cb(const nlmsghdr* nlh, void* data) {
  if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(nlmsgerr))) {
    errno = EBADMSG;
    return MNL_CB_ERROR;
  }
  const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
  if (err->error == 0) return MNL_CB_STOP;
  if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
    std::size_t offset = sizeof(nlmsgerr);
    if (!(nlh->nlmsg_flags & NLM_F_CAPPED) && err->msg.nlmsg_len >= sizeof(nlmsghdr)) {
      offset += err->msg.nlmsg_len - sizeof(nlmsghdr);
    }
    if (mnl_nlmsg_size(offset) <= nlh->nlmsg_len) {
      mnl_attr_parse(nlh, static_cast<unsigned>(offset), ext_ack_attr_cb, data);
    }
  }
  errno = -err->error;
  return MNL_CB_ERROR;
}

int done_cb(const nlmsghdr*, void*) {
  return MNL_CB_STOP;
}
int noop_cb(const nlmsghdr*, void*) {
  return MNL_CB_OK;
}
int overrun_cb(const nlmsghdr*, void*) {
  errno = ENOSPC;
  return MNL_CB_ERROR;
}

// Attributes of one message, indexed by type (unknown types ignored).
template <std::size_t N>
struct Attributes {
  std::array<const nlattr*, N> at{};
  static int collect(const nlattr* attr, void* data) {
    auto* self = static_cast<Attributes*>(data);
    auto type = mnl_attr_get_type(attr);
    if (type < N) self->at[type] = attr;
    return MNL_CB_OK;
  }
  void parse(const nlmsghdr* nlh, unsigned offset) { mnl_attr_parse(nlh, offset, collect, this); }
  const nlattr* operator[](unsigned type) const { return type < N ? at[type] : nullptr; }
};

std::optional<IpAddress> address_attr(const nlattr* attr, unsigned char family) {
  if (attr == nullptr) return std::nullopt;
  auto len = mnl_attr_get_payload_len(attr);
  const auto* p = static_cast<const std::uint8_t*>(mnl_attr_get_payload(attr));
  if (family == AF_INET && len == 4) return IpAddress::v4({p[0], p[1], p[2], p[3]});
  if (family == AF_INET6 && len == 16) {
    std::array<std::uint8_t, 16> b;
    std::memcpy(b.data(), p, 16);
    return IpAddress::v6(b);
  }
  return std::nullopt;
}

unsigned char af(const IpAddress& ip) {
  return ip.is_v4() ? AF_INET : AF_INET6;
}

std::string interface_name(int ifindex) {
  char name[IF_NAMESIZE] = {};
  if (::if_indextoname(static_cast<unsigned>(ifindex), name) == nullptr) {
    return std::string(1, '#').append(std::to_string(ifindex));
  }
  return name;
}

}  // namespace

void Netlink::Deleter::operator()(mnl_socket* s) const {
  mnl_socket_close(s);
}

Netlink::Netlink(mnl_socket* socket) : socket_(socket), buffer_(kBufferSize) {}
Netlink::Netlink(Netlink&&) noexcept = default;
Netlink& Netlink::operator=(Netlink&&) noexcept = default;
Netlink::~Netlink() = default;

SysResult<Netlink> Netlink::open() {
  mnl_socket* raw = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (raw == nullptr) return sys_fail(errno, "cannot open a netlink socket");
  Netlink nl(raw);
  if (mnl_socket_bind(raw, 0, MNL_SOCKET_AUTOPID) < 0) {
    return sys_fail(errno, "cannot bind the netlink socket");
  }
  nl.port_id_ = mnl_socket_get_portid(raw);
  nl.seq_ = static_cast<std::uint32_t>(std::time(nullptr));
  // Best effort: the kernel's own explanation of a failure, without the echo
  // of our request.
  int one = 1;
  mnl_socket_setsockopt(raw, NETLINK_EXT_ACK, &one, sizeof one);
  mnl_socket_setsockopt(raw, NETLINK_CAP_ACK, &one, sizeof one);
  timeval tv{5, 0};
  if (::setsockopt(mnl_socket_get_fd(raw), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
    return sys_fail(errno, "cannot set a timeout on the netlink socket");
  }
  return nl;
}

SysResult<int> Netlink::ifindex(std::string_view name) {
  std::string n(name);
  unsigned index = ::if_nametoindex(n.c_str());
  if (index == 0) {
    int err = errno;
    if (err == ENODEV || err == ENXIO)
      return sys_fail_plain(err, "no network interface named \"" + n + "\"");
    return sys_fail(err, "cannot look up network interface \"" + n + "\"");
  }
  return static_cast<int>(index);
}

SysResult<void> Netlink::transact(nlmsghdr* request, const MessageCallback& on_message,
                                  const std::string& what) {
  request->nlmsg_seq = ++seq_;
  if (mnl_socket_sendto(socket_.get(), request, request->nlmsg_len) < 0) {
    return sys_fail(errno, what + ": sending to netlink failed");
  }
  Exchange ex{&on_message, {}};
  std::array<mnl_cb_t, NLMSG_MIN_TYPE> ctl{};
  ctl[NLMSG_NOOP] = noop_cb;
  ctl[NLMSG_ERROR] = error_cb;
  ctl[NLMSG_DONE] = done_cb;
  ctl[NLMSG_OVERRUN] = overrun_cb;
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(socket_.get(), buffer_.data(), buffer_.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return sys_fail_plain(ETIMEDOUT, what + ": no answer from the kernel within 5 s");
      }
      return sys_fail(errno, what + ": reading from netlink failed");
    }
    int rc = mnl_cb_run2(buffer_.data(), static_cast<std::size_t>(n), request->nlmsg_seq, port_id_,
                         data_cb, &ex, ctl.data(), static_cast<unsigned>(ctl.size()));
    if (rc == MNL_CB_ERROR) {
      int err = errno;
      std::string message = what + ": " + errno_text(err);
      if (!ex.kernel_message.empty()) message += " (kernel: " + ex.kernel_message + ")";
      return sys_fail_plain(err, std::move(message));
    }
    if (rc <= MNL_CB_STOP) return {};
  }
}

namespace {

LinkInfo parse_link(const nlmsghdr* reply) {
  const auto* m = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(reply));
  Attributes<IFLA_MAX + 1> attrs;
  attrs.parse(reply, sizeof(ifinfomsg));
  LinkInfo li;
  li.ifindex = m->ifi_index;
  li.flags = m->ifi_flags;
  if (const nlattr* a = attrs[IFLA_IFNAME]; a && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) >= 0) {
    li.name = mnl_attr_get_str(a);
  }
  if (const nlattr* a = attrs[IFLA_MTU]; a && mnl_attr_validate(a, MNL_TYPE_U32) >= 0) {
    li.mtu = mnl_attr_get_u32(a);
  }
  return li;
}

}  // namespace

SysResult<LinkInfo> Netlink::link(int ifindex) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buffer_.data());
  nlh->nlmsg_type = RTM_GETLINK;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;

  std::optional<LinkInfo> info;
  auto r = transact(
      nlh,
      [&](const nlmsghdr* reply) {
        if (reply->nlmsg_type == RTM_NEWLINK) info = parse_link(reply);
      },
      "cannot read interface #" + std::to_string(ifindex));
  if (!r) return std::unexpected(r.error());
  if (!info) return sys_fail_plain(ENODEV, "no interface #" + std::to_string(ifindex));
  return *info;
}

SysResult<std::vector<LinkInfo>> Netlink::links() {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buffer_.data());
  nlh->nlmsg_type = RTM_GETLINK;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  std::vector<LinkInfo> out;
  auto r = transact(
      nlh,
      [&](const nlmsghdr* reply) {
        if (reply->nlmsg_type == RTM_NEWLINK) out.push_back(parse_link(reply));
      },
      "cannot list the network interfaces");
  if (!r) return std::unexpected(r.error());
  return out;
}

SysResult<void> Netlink::set_link(int ifindex, std::optional<std::uint32_t> mtu, LinkState state,
                                  std::optional<std::uint32_t> queue_length) {
  const bool up = state == LinkState::kUp;
  nlmsghdr* nlh = mnl_nlmsg_put_header(buffer_.data());
  nlh->nlmsg_type = RTM_NEWLINK;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  ifi->ifi_change = IFF_UP;
  ifi->ifi_flags = up ? IFF_UP : 0;
  if (mtu) mnl_attr_put_u32(nlh, IFLA_MTU, *mtu);
  if (queue_length) mnl_attr_put_u32(nlh, IFLA_TXQLEN, *queue_length);
  std::string what = "cannot " + std::string(up ? "bring up" : "bring down") + " interface " +
                     interface_name(ifindex);
  if (mtu) what += " with MTU " + std::to_string(*mtu);
  return transact(nlh, {}, what);
}

SysResult<void> Netlink::add_address(int ifindex, const Cidr& address) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buffer_.data());
  nlh->nlmsg_type = RTM_NEWADDR;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = af(address.address);
  ifa->ifa_prefixlen = address.prefix_len;
  ifa->ifa_index = static_cast<std::uint32_t>(ifindex);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  auto bytes = address.address.bytes();
  if (address.address.is_v4()) {
    mnl_attr_put(nlh, IFA_LOCAL, bytes.size(), bytes.data());
    mnl_attr_put(nlh, IFA_ADDRESS, bytes.size(), bytes.data());
  } else {
    ifa->ifa_flags = IFA_F_NODAD;
    mnl_attr_put(nlh, IFA_ADDRESS, bytes.size(), bytes.data());
    mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD);
  }
  return transact(nlh, {},
                  "cannot add address " + address.to_string() + " to " + interface_name(ifindex));
}

SysResult<std::vector<Cidr>> Netlink::addresses(int ifindex) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buffer_.data());
  nlh->nlmsg_type = RTM_GETADDR;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_UNSPEC;

  std::vector<Cidr> out;
  auto r = transact(
      nlh,
      [&](const nlmsghdr* reply) {
        if (reply->nlmsg_type != RTM_NEWADDR) return;
        const auto* m = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(reply));
        if (static_cast<int>(m->ifa_index) != ifindex) return;
        Attributes<IFA_MAX + 1> attrs;
        attrs.parse(reply, sizeof(ifaddrmsg));
        // IFA_LOCAL is the interface's own address on point-to-point links;
        // IFA_ADDRESS is the peer there, and the own address elsewhere.
        auto ip = address_attr(attrs[IFA_LOCAL], m->ifa_family);
        if (!ip) ip = address_attr(attrs[IFA_ADDRESS], m->ifa_family);
        if (ip) out.push_back(Cidr{*ip, m->ifa_prefixlen});
      },
      "cannot list the addresses of " + interface_name(ifindex));
  if (!r) return std::unexpected(r.error());
  return out;
}

SysResult<void> Netlink::add_route(int ifindex, const Cidr& destination,
                                   std::optional<IpAddress> preferred_source) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buffer_.data());
  nlh->nlmsg_type = RTM_NEWROUTE;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = af(destination.address);
  rtm->rtm_dst_len = destination.prefix_len;
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_STATIC;
  rtm->rtm_scope = destination.address.is_v4() ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  rtm->rtm_type = RTN_UNICAST;
  auto dst = destination.address.bytes();
  mnl_attr_put(nlh, RTA_DST, dst.size(), dst.data());
  mnl_attr_put_u32(nlh, RTA_OIF, static_cast<std::uint32_t>(ifindex));
  if (preferred_source) {
    auto src = preferred_source->bytes();
    mnl_attr_put(nlh, RTA_PREFSRC, src.size(), src.data());
  }
  return transact(
      nlh, {}, "cannot add route " + destination.to_string() + " via " + interface_name(ifindex));
}

SysResult<void> Netlink::delete_route(int ifindex, const Cidr& destination) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buffer_.data());
  nlh->nlmsg_type = RTM_DELROUTE;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = af(destination.address);
  rtm->rtm_dst_len = destination.prefix_len;
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_STATIC;
  rtm->rtm_scope = RT_SCOPE_NOWHERE;
  rtm->rtm_type = RTN_UNICAST;
  auto dst = destination.address.bytes();
  mnl_attr_put(nlh, RTA_DST, dst.size(), dst.data());
  mnl_attr_put_u32(nlh, RTA_OIF, static_cast<std::uint32_t>(ifindex));
  auto r = transact(nlh, {},
                    "cannot delete route " + destination.to_string() + " via " + interface_name(ifindex));
  if (!r && r.error().sys_errno == ESRCH) return {};
  return r;
}

SysResult<RouteInfo> Netlink::route_to(const IpAddress& destination) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buffer_.data());
  nlh->nlmsg_type = RTM_GETROUTE;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = af(destination);
  rtm->rtm_dst_len = static_cast<unsigned char>(destination.bits());
  auto dst = destination.bytes();
  mnl_attr_put(nlh, RTA_DST, dst.size(), dst.data());

  std::optional<RouteInfo> info;
  auto r = transact(
      nlh,
      [&](const nlmsghdr* reply) {
        if (reply->nlmsg_type != RTM_NEWROUTE) return;
        const auto* m = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(reply));
        Attributes<RTA_MAX + 1> attrs;
        attrs.parse(reply, sizeof(rtmsg));
        RouteInfo ri;
        if (const nlattr* a = attrs[RTA_OIF]; a && mnl_attr_validate(a, MNL_TYPE_U32) >= 0) {
          ri.ifindex = static_cast<int>(mnl_attr_get_u32(a));
        }
        ri.preferred_source = address_attr(attrs[RTA_PREFSRC], m->rtm_family);
        ri.gateway = address_attr(attrs[RTA_GATEWAY], m->rtm_family);
        info = std::move(ri);
      },
      "no route to " + destination.to_string());
  if (!r) return std::unexpected(r.error());
  if (!info || info->ifindex == 0) {
    return sys_fail_plain(
        ENETUNREACH, "no route to " + destination.to_string() + " leaves through an interface");
  }
  info->interface = interface_name(info->ifindex);
  return *info;
}

}  // namespace buckwild::daemon

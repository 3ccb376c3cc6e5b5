// Interface configuration over rtnetlink (libmnl): link state and MTU,
// addresses, routes, and route look-ups.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/cidr.h"
#include "core/common/ip_address.h"
#include "daemon/os/sys_error.h"

struct mnl_socket;
struct nlmsghdr;

namespace buckwild::daemon {

struct LinkInfo {
  int ifindex = 0;
  std::string name;
  std::uint32_t mtu = 0;
  std::uint32_t flags = 0;  // IFF_UP, IFF_RUNNING, IFF_POINTOPOINT, ...
};

// What the kernel would do with a packet to some address (`ip route get`).
struct RouteInfo {
  int ifindex = 0;
  std::string interface;
  std::optional<IpAddress> preferred_source;  // RTA_PREFSRC
  std::optional<IpAddress> gateway;           // RTA_GATEWAY, when not on-link
};

// One NETLINK_ROUTE socket. Every call is a synchronous request: it sends one
// message and reads until the kernel's acknowledgement or the end of a dump,
// with a 5 s receive timeout so a daemon can never hang here. Errors carry the
// kernel's errno and, when the kernel gives one (extended ACK), its own words.
// Changes need CAP_NET_ADMIN (EPERM otherwise). Not thread-safe; move-only.
class Netlink {
 public:
  static SysResult<Netlink> open();

  Netlink(Netlink&&) noexcept;
  Netlink& operator=(Netlink&&) noexcept;
  ~Netlink();

  // if_nametoindex with a readable error (ENODEV: no such interface).
  static SysResult<int> ifindex(std::string_view name);

  // Name, MTU and flags of interface `ifindex`.
  SysResult<LinkInfo> link(int ifindex);
  // Every interface in this network namespace.
  SysResult<std::vector<LinkInfo>> links();
  enum class LinkState : std::uint8_t { kDown, kUp };
  // Sets the MTU (when given) and brings the link up or down (RTM_NEWLINK).
  // `queue_length` sets the transmit queue (packets the kernel may hold for
  // the device's reader) when given.
  SysResult<void> set_link(int ifindex, std::optional<std::uint32_t> mtu, LinkState state,
                           std::optional<std::uint32_t> queue_length = std::nullopt);
  // Adds (or replaces) an interface address with its prefix: 10.77.0.1/24 also
  // gives the kernel's prefix route through the device once it is up. IPv6
  // addresses are added without duplicate address detection (IFA_F_NODAD), so
  // they are usable at once on a point-to-point TUN link.
  SysResult<void> add_address(int ifindex, const Cidr& address);
  // Every address on interface `ifindex`, as address/prefix.
  SysResult<std::vector<Cidr>> addresses(int ifindex);
  // Adds (or replaces) a route to `destination` (a network, no host bits) out
  // of interface `ifindex` in the main table, optionally with a preferred
  // source address.
  SysResult<void> add_route(int ifindex, const Cidr& destination,
                            std::optional<IpAddress> preferred_source = std::nullopt);
  // Deletes the route to `destination` out of interface `ifindex` (a reload
  // removed the peer behind it). A route that is gone already is no error.
  SysResult<void> delete_route(int ifindex, const Cidr& destination);
  // The route the kernel would pick for `destination` (RTM_GETROUTE):
  // ENETUNREACH / EHOSTUNREACH when there is none.
  SysResult<RouteInfo> route_to(const IpAddress& destination);

 private:
  struct Deleter {
    void operator()(mnl_socket* s) const;
  };
  using MessageCallback = std::function<void(const nlmsghdr*)>;

  explicit Netlink(mnl_socket* socket);
  // Sends the message built in buffer_ and reads replies until the ACK / DONE,
  // passing each data message to `on_message`. `what` starts error messages.
  SysResult<void> transact(nlmsghdr* request, const MessageCallback& on_message,
                           const std::string& what);

  std::unique_ptr<mnl_socket, Deleter> socket_;
  std::uint32_t port_id_ = 0;
  std::uint32_t seq_ = 0;
  std::vector<std::uint8_t> buffer_;
};

}  // namespace buckwild::daemon

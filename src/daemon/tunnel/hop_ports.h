// The ports the sessions receive on, window by window (docs/protocol.md §10.3).
//
//   user-space path  a socket for every port a session needs now (windows
//                    w−d … w+d of connection 0 and of each live connection),
//                    opened before its window starts, closed after it ends;
//   eBPF path        those ports are the valid (peer, port) pairs the kernel
//                    steers to the discovery socket; the only sockets are the
//                    ones the sessions send from (so source ports hop too).
//
// An update computes what is needed, opens what is missing (make before
// break), then closes what is no longer needed, draining each closing socket
// first. Draining runs the receive path, which may ask for another update (a
// connection opened by a datagram still queued on a closing port): such a
// request is folded into the update under way and never runs inside it, so no
// table is changed while it is being walked.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "core/common/ip_address.h"
#include "core/common/socket_address.h"
#include "daemon/ebpf/ebpf_path.h"
#include "daemon/log/rate_limited_log.h"
#include "daemon/net/udp_socket.h"
#include "daemon/os/event_loop.h"
#include "daemon/os/sys_error.h"

namespace buckwild::daemon {

using SocketFactory =
    std::function<SysResult<std::unique_ptr<DatagramSocket>>(const SocketAddress& bind_address)>;

// One port a session needs now.
struct PortNeed {
  ValidPort pair;          // peer, port, session, window, connection
  bool send_from = false;  // our current port of connection 0: we send from it
};

struct HopPortStats {
  std::uint64_t bind_failures = 0;  // a hopping port that could not be opened
  std::uint64_t open = 0;           // hopping sockets open now
  // eBPF path only.
  std::uint64_t valid_ports = 0;         // (peer, port) pairs steered to us now
  std::uint64_t valid_port_updates = 0;  // rewrites of that set
  std::uint64_t valid_port_update_failures = 0;
  std::uint64_t valid_port_update_max_ns = 0;  // slowest rewrite so far
  std::uint64_t deferred_updates = 0;          // requests folded into an update under way
};

class HopPorts {
 public:
  struct Deps {
    EventLoop& loop;
    SocketFactory bind_socket;
    EbpfPath* ebpf = nullptr;  // null: the user-space path
    IpAddress listen_address;
    std::uint16_t discovery_port = 0;  // served by the discovery socket, never opened here
    // Appends what the sessions need now.
    std::function<void(std::vector<PortNeed>& out)> needs;
    // A hopping socket is readable, or is being drained before it closes.
    std::function<void(DatagramSocket& socket)> on_readable;
    // The set of sockets changed: re-choose the ones to send from
    // (socket_for). Called before any socket closes.
    std::function<void()> on_updated;
  };

  HopPorts(Deps deps, RateLimitedLog& warn_log);
  ~HopPorts();
  HopPorts(const HopPorts&) = delete;
  HopPorts& operator=(const HopPorts&) = delete;

  enum class Closing : std::uint8_t { kCloseUnneeded, kKeepAll };
  // Brings the ports in line with deps.needs(). With kKeepAll nothing closes
  // (for a caller that may be inside a callback of a socket that would).
  void update(Closing closing);
  // A session's connections changed: opens what they need now, and closes
  // what they no longer need on the next turn of the loop.
  void connections_changed();

  // The open socket on local `port`, or null.
  DatagramSocket* socket_for(std::uint16_t port) const;
  const HopPortStats& stats() const { return stats_; }

 private:
  void run_round(Closing closing);
  void steer(const std::vector<PortNeed>& needs);
  void record_own_ports(const std::vector<std::uint16_t>& also);
  void open(std::uint16_t port);

  Deps deps_;
  RateLimitedLog& warn_log_;
  std::unordered_map<std::uint16_t, std::unique_ptr<DatagramSocket>> sockets_;
  // Sockets taken out of sockets_ during an update, drained, and destroyed
  // once the update is over (a send may still use one while it drains).
  std::vector<std::unique_ptr<DatagramSocket>> closing_;
  bool updating_ = false;
  bool again_ = false;
  TimerId deferred_ = kNoTimer;
  std::vector<PortNeed> needs_;        // scratch, kept to avoid reallocating
  std::vector<std::uint16_t> wanted_;  // scratch
  HopPortStats stats_;
};

}  // namespace buckwild::daemon

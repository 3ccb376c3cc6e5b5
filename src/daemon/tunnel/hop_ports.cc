#include "daemon/tunnel/hop_ports.h"

#include <algorithm>
#include <unordered_set>

namespace buckwild::daemon {
namespace {

// Rounds one update may take when draining keeps asking for more; past this
// the rest waits for the next turn of the loop.
constexpr int kMaxRounds = 4;

}  // namespace

HopPorts::HopPorts(Deps deps, RateLimitedLog& warn_log)
    : deps_(std::move(deps)), warn_log_(warn_log) {}

HopPorts::~HopPorts() {
  if (deferred_ != kNoTimer) deps_.loop.cancel_timer(deferred_);
  for (auto& [port, socket] : sockets_) deps_.loop.unwatch_fd(socket->fd());
}

DatagramSocket* HopPorts::socket_for(std::uint16_t port) const {
  auto it = sockets_.find(port);
  return it == sockets_.end() ? nullptr : it->second.get();
}

void HopPorts::connections_changed() {
  // A new connection's ports open now, before its first packet leaves, so the
  // answer cannot arrive at a port we have not opened yet. Closing waits for
  // the next turn: we may be inside a callback of a socket it would close.
  update(Closing::kKeepAll);
  if (deferred_ != kNoTimer) return;
  deferred_ = deps_.loop.add_timer(0, [this] {
    deferred_ = kNoTimer;
    update(Closing::kCloseUnneeded);
  });
}

void HopPorts::update(Closing closing) {
  if (updating_) {
    // Asked from inside a drain: the update under way runs another round.
    again_ = true;
    ++stats_.deferred_updates;
    return;
  }
  updating_ = true;
  int rounds = 0;
  do {
    again_ = false;
    run_round(closing);
  } while (again_ && ++rounds < kMaxRounds);
  if (again_ && deferred_ == kNoTimer) {
    deferred_ = deps_.loop.add_timer(0, [this] {
      deferred_ = kNoTimer;
      update(Closing::kCloseUnneeded);
    });
  }
  stats_.open = sockets_.size();
  deps_.on_updated();
  closing_.clear();  // after on_updated: nothing sends from them any more
  updating_ = false;
}

void HopPorts::run_round(Closing closing) {
  // 1. What the sessions need now.
  needs_.clear();
  deps_.needs(needs_);
  if (deps_.ebpf != nullptr) steer(needs_);
  wanted_.clear();
  for (const PortNeed& n : needs_) {
    if (deps_.ebpf != nullptr && !n.send_from) continue;  // steered, no socket
    if (n.pair.port == deps_.discovery_port) continue;    // the discovery socket serves it
    wanted_.push_back(n.pair.port);
  }
  std::sort(wanted_.begin(), wanted_.end());
  wanted_.erase(std::unique(wanted_.begin(), wanted_.end()), wanted_.end());

  // 2. Open what is missing. On the eBPF path the ports about to be bound are
  // ours before they exist, so the frame filter never takes them for another
  // application's.
  record_own_ports(wanted_);
  for (std::uint16_t port : wanted_) {
    if (!sockets_.contains(port)) open(port);
  }
  if (closing == Closing::kKeepAll) return;

  // 3. Take out what is no longer needed, then drain it: what already arrived
  // is read before the port goes. Draining may re-enter update() (again_).
  const std::size_t first_closing = closing_.size();
  for (auto it = sockets_.begin(); it != sockets_.end();) {
    if (std::binary_search(wanted_.begin(), wanted_.end(), it->first)) {
      ++it;
      continue;
    }
    deps_.loop.unwatch_fd(it->second->fd());
    closing_.push_back(std::move(it->second));
    it = sockets_.erase(it);
  }
  for (std::size_t i = first_closing; i < closing_.size(); ++i) deps_.on_readable(*closing_[i]);
  record_own_ports({});
}

void HopPorts::open(std::uint16_t port) {
  auto socket = deps_.bind_socket(SocketAddress{deps_.listen_address, port});
  if (!socket) {
    ++stats_.bind_failures;
    warn_log_.log(deps_.loop.now(), "ports.bind", spdlog::level::warn,
                  "hopping port {} unavailable: {}", port, socket.error().message);
    return;
  }
  DatagramSocket* raw = socket->get();
  auto watched = deps_.loop.watch_fd(raw->fd(), kReadable,
                                     [this, raw](std::uint32_t) { deps_.on_readable(*raw); });
  if (!watched) {
    warn_log_.log(deps_.loop.now(), "ports.watch", spdlog::level::warn,
                  "hopping port {} cannot be watched: {}", port, watched.error().message);
    return;
  }
  sockets_.emplace(port, std::move(*socket));
}

void HopPorts::steer(const std::vector<PortNeed>& needs) {
  std::vector<ValidPort> valid;
  valid.reserve(needs.size());
  for (const PortNeed& n : needs) valid.push_back(n.pair);
  auto updated = deps_.ebpf->set_valid_ports(valid);
  if (!updated) {
    ++stats_.valid_port_update_failures;
    warn_log_.log(deps_.loop.now(), "ports.steer", spdlog::level::warn,
                  "cannot update the valid hopping ports ({} pairs): {}", valid.size(),
                  updated.error().message);
    return;
  }
  ++stats_.valid_port_updates;
  stats_.valid_ports = valid.size();
  stats_.valid_port_update_max_ns = std::max<std::uint64_t>(
      stats_.valid_port_update_max_ns, static_cast<std::uint64_t>(updated->count()));
}

void HopPorts::record_own_ports(const std::vector<std::uint16_t>& also) {
  if (deps_.ebpf == nullptr) return;
  std::vector<std::uint16_t> own{deps_.discovery_port};
  for (const auto& [port, socket] : sockets_) own.push_back(port);
  own.insert(own.end(), also.begin(), also.end());
  if (auto r = deps_.ebpf->set_own_ports(own); !r) {
    warn_log_.log(deps_.loop.now(), "ports.own", spdlog::level::warn,
                  "cannot record the tunnel's own ports: {}", r.error().message);
  }
}

}  // namespace buckwild::daemon

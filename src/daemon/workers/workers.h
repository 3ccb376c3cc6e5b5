// The data path on every core (docs/architecture.md "Workers"): N tunnels,
// each with its own event loop, TUN queue, sockets and sessions, sharing
// nothing on the packet path. Worker 0's tunnel runs on the main thread's
// loop, beside the control plane, as the one tunnel of a single-worker
// daemon does; workers 1..N-1 each run on a thread of their own. The eBPF
// path steers every datagram to the socket of the worker that owns its
// session (or, for discovery, serves its source), and the virtual interface
// hands each packet to the queue of the worker serving its destination.
//
// The control plane reaches the other workers' tunnels only through their
// mailboxes (os/mailbox.h), and they reach the main thread the same way:
// their sessions' events, audit records and a fatal TUN error.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "core/crypto/random.h"
#include "daemon/config/config.h"
#include "daemon/ebpf/kernel_ebpf_path.h"
#include "daemon/log/security_audit.h"
#include "daemon/net/tcp_endpoints.h"
#include "daemon/net/tun_device.h"
#include "daemon/net/udp_socket.h"
#include "daemon/os/clock.h"
#include "daemon/os/event_loop.h"
#include "daemon/os/mailbox.h"
#include "daemon/tunnel/peer_claims.h"
#include "daemon/tunnel/tunnel.h"

namespace buckwild::daemon {

// The workers this host should run for `config`: [network] workers, or one
// per CPU the process may run on ("auto"), at most 64.
std::uint32_t wanted_workers(const Config& config);

// What every worker's tunnel is given that the daemon owns.
struct WorkerEnvironment {
  const Config* config = nullptr;  // the start-up configuration
  std::uint32_t mtu = 0;
  const Clock* clock = nullptr;  // thread-safe (time/disciplined_clock.h)
  crypto::RandomSource* rng = nullptr;  // thread-safe (RAND_bytes)
  SocketFactory bind_socket;
  KernelEbpfPath* ebpf = nullptr;  // null: the user-space path, one worker
  // On the main thread: worker 0's audit trail, events and fatal errors.
  EventLoop* main_loop = nullptr;
  SecurityAudit* audit = nullptr;
  TcpEndpoints* tcp = nullptr;
  std::function<void(const TunnelEvent&)> on_event;
  std::function<void(const SysError&)> on_fatal;
};

class Workers {
 public:
  // Starts worker 0's tunnel on env.main_loop with `tun` (the device's first
  // queue), then `count` - 1 threads, each with a queue of `tun`, its own
  // loop, TCP endpoints and audit (forwarded to the main thread), and its
  // tunnel. With count > 1, `tun` must be multi-queue and env.ebpf set; the
  // TUN queue steering program is installed. Fails with the first worker's
  // error (any started are stopped).
  static SysResult<std::unique_ptr<Workers>> start(LinuxTunDevice& tun, std::uint32_t count,
                                                   WorkerEnvironment env);
  ~Workers();
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  std::uint32_t count() const { return static_cast<std::uint32_t>(workers_.size()); }
  // Runs `fn` on each worker's tunnel, on the worker's thread, one worker
  // after the other, and returns once all ran. From the main thread.
  void for_each(const std::function<void(Tunnel&, std::uint32_t)>& fn);

  // The control plane over all workers (the Tunnel functions of the same
  // names, docs/control.md). status(): one document, counters summed, each
  // peer as the worker that holds its session (or looks for it) reports it,
  // with "worker" set.
  nlohmann::json status();
  SysResult<ReloadSummary> reconfigure(const Config& next);
  void on_clock_step(std::int64_t step_us);
  nlohmann::json request_rekey(std::string_view who);
  std::optional<bool> admin_up(std::string_view name);
  bool set_admin_up(std::string_view name, bool up);
  void end_sessions(const char* why);
  // Whether the daemon has an audit log now (the workers' audits count only then).
  void set_audit_enabled(bool on) { audit_enabled_.store(on, std::memory_order_relaxed); }

 private:
  struct Worker;
  explicit Workers(WorkerEnvironment env);
  TunnelDeps deps_for(Worker& w, std::uint32_t index, std::uint32_t count);
  void post_to(std::uint32_t index, std::function<void(Tunnel&)> work);

  WorkerEnvironment env_;
  LinuxTunDevice* first_tun_ = nullptr;  // worker 0's queue: the daemon's device
  std::unique_ptr<Mailbox> main_mailbox_;  // the workers' posts to the main thread
  PeerClaims claims_;
  std::atomic<bool> audit_enabled_{false};
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace buckwild::daemon

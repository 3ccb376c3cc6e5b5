// The [metrics] HTTP endpoint: `GET /metrics` answers with the Prometheus
// exposition of the tunnel (prometheus.h), off the packet path.
//
// HTTP is libmicrohttpd's, never ours. Of the two maintained HTTP servers
// Debian 12 packages, libmicrohttpd is a mature C library that runs in one
// internal thread of its own and lets us bound every resource a client can
// hold: the number of connections, each connection's idle time and its
// memory. cpp-httplib starts a thread pool and offers less control over
// what a connection may cost. docs/control.md "Metrics" says the same to
// operators.
//
// Two threads. libmicrohttpd's thread accepts, parses and answers; the
// exposition is made on the event loop's thread, because it reads tunnel
// state that is not thread-safe. For each GET /metrics the HTTP thread
// posts a request through an eventfd the loop watches and waits, at most
// `snapshot_timeout`, for the loop to hand back the text (503 when it does
// not). Requests are answered one at a time (a scraper needs no more), so a
// loop that is slow to answer holds the others back by at most that long.
//
//   GET or HEAD /metrics     200, text/plain; version=0.0.4; charset=utf-8
//   other path               404
//   other method             405 (Allow: GET, HEAD)
//   a GET or HEAD with body  400
//   no snapshot in time,     503
//   or shutting down
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/common/socket_address.h"
#include "core/common/time.h"
#include "daemon/os/event_loop.h"
#include "daemon/os/sys_error.h"
#include "daemon/os/unique_fd.h"

struct MHD_Daemon;

namespace buckwild::daemon {

struct MetricsServerLimits {
  unsigned connection_limit = 8;                // concurrent HTTP connections, all clients
  unsigned idle_timeout_seconds = 10;           // a connection idle this long is closed
  std::size_t connection_memory = 32 * 1024;    // per connection: request line, headers
  Duration snapshot_timeout = seconds(2);       // the loop's answer, or 503
  Duration shutdown_grace = milliseconds(500);  // requests under way when the server goes
};

class MetricsServer {
 public:
  // Makes the exposition. Called on the event loop's thread only, once per
  // request; must not throw.
  using Snapshot = std::function<std::string()>;

  // Listens on `listen` (IPv4, or IPv6 only for an IPv6 address; port 0 picks
  // a free port, see address()) and starts libmicrohttpd's thread. Call on
  // the loop's thread; `loop` must outlive the server. The HTTP thread starts
  // with every signal blocked, so signals still reach the loop's signalfd.
  // Errors: "metrics: cannot listen on ADDRESS: <strerror>" (port in use, an
  // address not on this host), or libmicrohttpd failing to start.
  static SysResult<std::unique_ptr<MetricsServer>> start(EventLoop& loop,
                                                         const SocketAddress& listen,
                                                         Snapshot snapshot,
                                                         MetricsServerLimits limits = {});

  // Call on the loop's thread. A request waiting for a snapshot is answered
  // 503 at once; requests under way get up to `shutdown_grace` to be sent,
  // then every connection is closed. Returns when libmicrohttpd's thread has
  // ended.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The address listened on, with the port chosen when `listen` had port 0.
  const SocketAddress& address() const { return address_; }

 private:
  MetricsServer(EventLoop& loop, SocketAddress address, Snapshot snapshot,
                MetricsServerLimits limits, UniqueFd wake);

  // libmicrohttpd's callbacks (metrics_server.cc), on its thread and, while
  // starting, on ours.
  friend struct MetricsServerCallbacks;
  // On the HTTP thread: a fresh exposition from the loop, or nullopt after
  // snapshot_timeout or when shutting down.
  std::optional<std::string> request_snapshot();
  // On the loop's thread: the eventfd is readable.
  void on_wake();
  void note_start_error(std::string message);
  // A request was presented to us / has ended (sent, or its connection closed).
  void request_began();
  void request_ended();

  EventLoop& loop_;
  SocketAddress address_;
  Snapshot snapshot_;
  MetricsServerLimits limits_;
  UniqueFd wake_;  // eventfd: the HTTP thread -> the loop
  MHD_Daemon* daemon_ = nullptr;

  // Shared by the two threads.
  std::mutex mu_;
  std::condition_variable answered_cv_;
  std::condition_variable drained_cv_;  // in_flight_ reached 0
  std::uint64_t asked_ = 0;             // requests posted
  std::uint64_t answered_ = 0;          // the request `body_` answers
  std::string body_;
  std::size_t in_flight_ = 0;  // requests presented to us and not yet ended
  bool closing_ = false;
  bool starting_ = true;     // libmicrohttpd's messages are kept only while starting
  std::string start_error_;  // its first one
};

}  // namespace buckwild::daemon

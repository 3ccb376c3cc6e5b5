// TcpEndpoints for tests: every TCP connection is a Unix socket pair, so
// readiness and backpressure are the kernel's own and ManualEventLoop polls the
// bridge's descriptors unchanged. The test holds the other end of each pair
// and plays the application (for a connection the listener accepts) or the
// server (for one the bridge opens).
//
//   Listener: the test queues connections with push_connection() (giving the
//   peer address accept() reports); fd() is readable while the queue is not
//   empty. fail_accepts_with(EMFILE) makes accept() fail and leaves the
//   connection queued, as the kernel does.
//   connect(): the test decides per target with set_connect_outcome():
//   kSucceed (the default: writable at once, connect_result() 0, the server's
//   end waits in take_server()), kRefuse (writable, connect_result()
//   ECONNREFUSED), kPending (never writable: the read end of a pipe) or
//   kFailNow (connect() itself fails with ENETUNREACH).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "daemon/os/unique_fd.h"
#include "daemon/net/tcp_endpoints.h"

namespace buckwild::daemon {

class FakeTcpEndpoints final : public TcpEndpoints {
 public:
  enum class ConnectOutcome : std::uint8_t { kSucceed, kRefuse, kPending, kFailNow };

  struct ConnectCall {
    IpAddress from;
    SocketAddress to;
    SocketAddress local;  // what connect() reported as the stream's local address
  };

  FakeTcpEndpoints();
  ~FakeTcpEndpoints() override;

  // TcpEndpoints. listen() fails with EADDRINUSE for an address already listened on.
  SysResult<std::unique_ptr<TcpListener>> listen(const IpAddress& address) override;
  SysResult<Connecting> connect(const IpAddress& from, const SocketAddress& to) override;
  std::optional<std::uint32_t> owner_uid(const SocketAddress& local, const SocketAddress&) override {
    auto it = owners_.find(local);
    if (it == owners_.end()) return std::nullopt;
    return it->second;
  }
  // The user owner_uid() reports for an application's socket at `local`.
  void set_owner(const SocketAddress& local, std::uint32_t uid) { owners_[local] = uid; }

  // ---- the test's side ----

  // Socket buffer size (SO_SNDBUF and SO_RCVBUF) for both ends of the pairs
  // made from now on; 0 leaves the kernel's default.
  void set_buffer_size(int bytes) { buffer_size_ = bytes; }

  // Queues a connection on the listener of `listener_address`, from `peer` as
  // the listener should see it. Returns the application's end; nullopt if
  // nothing listens there.
  std::optional<UniqueFd> push_connection(const IpAddress& listener_address, const SocketAddress& peer);
  // Makes accept() on that listener fail with `err` (0: accept again). The
  // queued connections stay queued.
  void fail_accepts_with(const IpAddress& listener_address, int err);
  // accept() calls on that listener so far, failed ones included.
  std::size_t accept_calls(const IpAddress& listener_address) const;
  std::size_t pending_connections(const IpAddress& listener_address) const;
  // The port the listener on `address` reports, 0 if none.
  std::uint16_t listener_port(const IpAddress& address) const;

  void set_connect_outcome(const SocketAddress& to, ConnectOutcome outcome) { outcomes_[to] = outcome; }
  const std::vector<ConnectCall>& connect_calls() const { return connects_; }
  // The server's end of the oldest successful connect() to `to` not taken yet.
  std::optional<UniqueFd> take_server(const SocketAddress& to);

  // Streams closed after abort_on_close() (an RST on a real socket; a Unix
  // socket can only show EOF, so the test asks here).
  std::size_t abortive_closes() const { return shared_->abortive_closes; }

  struct ListenerState;  // shared with the listener the bridge owns
  struct Shared {
    std::size_t abortive_closes = 0;
  };

 private:
  SysResult<std::pair<UniqueFd, UniqueFd>> make_pair();
  ListenerState* find_listener(const IpAddress& address) const;

  int buffer_size_ = 0;
  std::uint16_t next_listen_port_ = 7000;
  std::uint16_t next_local_port_ = 40000;
  std::shared_ptr<Shared> shared_;
  std::vector<std::shared_ptr<ListenerState>> listeners_;
  std::map<SocketAddress, ConnectOutcome> outcomes_;
  std::vector<ConnectCall> connects_;
  std::map<SocketAddress, std::deque<UniqueFd>> servers_;
  std::map<SocketAddress, std::uint32_t> owners_;
};

}  // namespace buckwild::daemon

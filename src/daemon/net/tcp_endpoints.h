// The kernel TCP sockets the stream bridge ends applications' connections in,
// behind an interface: the bridge's listener on the virtual address, the
// streams it accepts there, and the connections it opens towards a server on
// the peer's behalf. KernelTcpEndpoints is the real one; FakeTcpEndpoints
// (testing/) hands out Unix socket pairs, so the bridge runs in a test process
// with real readiness and real backpressure and the test plays the kernel.
//
// Every descriptor is non-blocking and close-on-exec; the bridge watches fd()
// on its event loop and calls the operations below when it is ready.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>

#include "core/common/bytes.h"
#include "core/common/ip_address.h"
#include "core/common/socket_address.h"
#include "daemon/net/sock_diag.h"
#include "daemon/os/sys_error.h"

namespace buckwild::daemon {

// How a read or write went: bytes moved (a read of 0 with `eof` is the peer's
// FIN), would block, or failed with `error` (an errno: the stream is dead).
struct StreamIo {
  std::size_t bytes = 0;
  bool eof = false;
  bool would_block = false;
  int error = 0;
};

// One TCP connection: accepted from an application, or opened to a server.
class TcpStream {
 public:
  virtual ~TcpStream() = default;
  virtual int fd() const = 0;
  virtual StreamIo read(MutableBytes into) = 0;
  virtual StreamIo write(Bytes from) = 0;
  // Sends our FIN (shutdown(SHUT_WR)); reading continues.
  virtual void shutdown_write() = 0;
  // For a stream from connect(), once fd() is writable: 0 when connected,
  // EINPROGRESS while still connecting, else the errno it failed with
  // (ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ...).
  virtual int connect_result() = 0;
  // Makes the coming close an abortive one (an RST, SO_LINGER 0), as the far
  // end's was.
  virtual void abort_on_close() = 0;
};

// The bridge's listener on one virtual address.
class TcpListener {
 public:
  virtual ~TcpListener() = default;
  virtual int fd() const = 0;
  // The port it listens on (chosen by the kernel).
  virtual std::uint16_t port() const = 0;
  struct Accepted {
    std::unique_ptr<TcpStream> stream;
    SocketAddress peer;  // as the listener sees the application
  };
  // The next pending connection. Fails with EAGAIN when none is pending; with
  // EMFILE, ENFILE, ENOBUFS or ENOMEM when the process or host is out of
  // descriptors or memory (the connection stays queued); other errnos concern
  // that one connection.
  virtual SysResult<Accepted> accept() = 0;
};

class TcpEndpoints {
 public:
  virtual ~TcpEndpoints() = default;
  // Listens on `address` at a port the kernel chooses. The address may not be
  // configured yet (IP_FREEBIND).
  virtual SysResult<std::unique_ptr<TcpListener>> listen(const IpAddress& address) = 0;
  // Starts a connection from `from` (port chosen by the kernel; IP_FREEBIND)
  // to `to`. Returns the stream and its local address; the outcome comes with
  // fd() writable and connect_result(). Fails at once for errors the kernel
  // reports before any packet leaves.
  struct Connecting {
    std::unique_ptr<TcpStream> stream;
    SocketAddress local;
  };
  virtual SysResult<Connecting> connect(const IpAddress& from, const SocketAddress& to) = 0;
  // The user owning the local TCP socket `local` -> `remote` (an application
  // connecting through the tunnel); nullopt if it cannot be told.
  virtual std::optional<std::uint32_t> owner_uid(const SocketAddress& local, const SocketAddress& remote) = 0;
};

// The kernel's sockets.
class KernelTcpEndpoints final : public TcpEndpoints {
 public:
  SysResult<std::unique_ptr<TcpListener>> listen(const IpAddress& address) override;
  SysResult<Connecting> connect(const IpAddress& from, const SocketAddress& to) override;
  std::optional<std::uint32_t> owner_uid(const SocketAddress& local, const SocketAddress& remote) override {
    return diag_.tcp_owner(local, remote);
  }

 private:
  SockDiag diag_;
};

}  // namespace buckwild::daemon

#include "daemon/net/tcp_endpoints.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "daemon/os/unique_fd.h"

namespace buckwild::daemon {
namespace {

int family_of(const IpAddress& a) {
  return a.is_v4() ? AF_INET : AF_INET6;
}

// Lets a socket bind an address that is not configured (yet): the virtual
// address in tests, or before netlink has added it.
void set_freebind(int fd, const IpAddress& address) {
  int one = 1;
  (void)::setsockopt(fd, address.is_v4() ? IPPROTO_IP : IPPROTO_IPV6,
                     address.is_v4() ? IP_FREEBIND : IPV6_FREEBIND, &one, sizeof one);
}

void set_nodelay(int fd) {
  int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

SysResult<SocketAddress> local_address_of(int fd) {
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return sys_fail(errno, "getsockname()");
  auto bound = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  if (!bound) return sys_fail_plain(EAFNOSUPPORT, "unexpected local address family");
  return *bound;
}

class KernelTcpStream final : public TcpStream {
 public:
  explicit KernelTcpStream(UniqueFd fd) : fd_(std::move(fd)) {}
  ~KernelTcpStream() override {
    if (abort_) {
      linger l{1, 0};
      (void)::setsockopt(fd_.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
  }

  int fd() const override { return fd_.get(); }

  StreamIo read(MutableBytes into) override {
    for (;;) {
      const ssize_t n = ::recv(fd_.get(), into.data(), into.size(), 0);
      if (n > 0) return StreamIo{.bytes = static_cast<std::size_t>(n)};
      if (n == 0) return StreamIo{.eof = true};
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return StreamIo{.would_block = true};
      return StreamIo{.error = errno};
    }
  }

  StreamIo write(Bytes from) override {
    for (;;) {
      const ssize_t n = ::send(fd_.get(), from.data(), from.size(), MSG_NOSIGNAL);
      if (n >= 0) return StreamIo{.bytes = static_cast<std::size_t>(n)};
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return StreamIo{.would_block = true};
      return StreamIo{.error = errno};
    }
  }

  void shutdown_write() override { (void)::shutdown(fd_.get(), SHUT_WR); }

  int connect_result() override {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
    if (err != 0) return err;
    sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (::getpeername(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &sl) != 0) return EINPROGRESS;
    return 0;
  }

  void abort_on_close() override { abort_ = true; }

 private:
  UniqueFd fd_;
  bool abort_ = false;
};

class KernelTcpListener final : public TcpListener {
 public:
  KernelTcpListener(UniqueFd fd, std::uint16_t port) : fd_(std::move(fd)), port_(port) {}
  int fd() const override { return fd_.get(); }
  std::uint16_t port() const override { return port_; }

  SysResult<Accepted> accept() override {
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    UniqueFd fd(
        ::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) return sys_fail(errno, "accept()");
    auto peer = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    if (!peer) return sys_fail_plain(EAFNOSUPPORT, "accept(): unexpected peer address family");
    set_nodelay(fd.get());
    return Accepted{std::make_unique<KernelTcpStream>(std::move(fd)), *peer};
  }

 private:
  UniqueFd fd_;
  std::uint16_t port_;
};

}  // namespace

SysResult<std::unique_ptr<TcpListener>> KernelTcpEndpoints::listen(const IpAddress& address) {
  UniqueFd s(::socket(family_of(address), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!s) return sys_fail(errno, "stream listener socket");
  int one = 1;
  (void)::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  set_freebind(s.get(), address);
  sockaddr_storage ss;
  const socklen_t len = SocketAddress{address, 0}.to_sockaddr(ss);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    return sys_fail(errno, "stream listener on " + address.to_string());
  }
  if (::listen(s.get(), SOMAXCONN) != 0) return sys_fail(errno, "stream listener listen()");
  auto bound = local_address_of(s.get());
  if (!bound)
    return sys_fail_plain(bound.error().sys_errno, "stream listener: " + bound.error().message);
  return std::make_unique<KernelTcpListener>(std::move(s), bound->port);
}

SysResult<TcpEndpoints::Connecting> KernelTcpEndpoints::connect(const IpAddress& from,
                                                                const SocketAddress& to) {
  UniqueFd fd(::socket(family_of(to.ip), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return sys_fail(errno, "socket()");
  set_freebind(fd.get(), from);
  sockaddr_storage ss;
  socklen_t len = SocketAddress{from, 0}.to_sockaddr(ss);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    return sys_fail(errno, "bind() to " + from.to_string());
  }
  auto local = local_address_of(fd.get());
  if (!local) return std::unexpected(local.error());
  set_nodelay(fd.get());
  len = to.to_sockaddr(ss);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
    return sys_fail(errno, "connect() to " + to.to_string());
  }
  return Connecting{std::make_unique<KernelTcpStream>(std::move(fd)), *local};
}

}  // namespace buckwild::daemon

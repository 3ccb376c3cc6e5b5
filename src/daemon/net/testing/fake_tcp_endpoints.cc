#include "daemon/net/testing/fake_tcp_endpoints.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "daemon/os/testing/readiness_flag.h"

namespace buckwild::daemon {

struct FakeTcpEndpoints::ListenerState {
  IpAddress address;
  std::uint16_t port = 0;
  struct Pending {
    UniqueFd fd;  // the bridge's end
    SocketAddress peer;
  };
  std::deque<Pending> queue;
  int fail_errno = 0;
  std::size_t accept_calls = 0;
  bool open = true;  // false once the bridge closed the listener
  ReadinessFlag ready;

  void update() {
    if (queue.empty()) {
      ready.clear();
    } else {
      ready.set();
    }
  }
};

namespace {

StreamIo io_result(ssize_t n, bool reading) {
  if (n > 0) return StreamIo{.bytes = static_cast<std::size_t>(n)};
  if (n == 0) return reading ? StreamIo{.eof = true} : StreamIo{};
  if (errno == EAGAIN || errno == EWOULDBLOCK) return StreamIo{.would_block = true};
  return StreamIo{.error = errno};
}

class FakeTcpStream final : public TcpStream {
 public:
  // `keep` is held open beside `fd` (the write end of a pending connect's pipe).
  FakeTcpStream(UniqueFd fd, int connect_result, std::shared_ptr<FakeTcpEndpoints::Shared> shared,
                UniqueFd keep = UniqueFd())
      : fd_(std::move(fd)), keep_(std::move(keep)), connect_result_(connect_result), shared_(std::move(shared)) {}
  ~FakeTcpStream() override {
    if (abort_) ++shared_->abortive_closes;
  }

  int fd() const override { return fd_.get(); }
  StreamIo read(MutableBytes into) override {
    ssize_t n;
    do {
      n = ::recv(fd_.get(), into.data(), into.size(), 0);
    } while (n < 0 && errno == EINTR);
    return io_result(n, true);
  }
  StreamIo write(Bytes from) override {
    ssize_t n;
    do {
      n = ::send(fd_.get(), from.data(), from.size(), MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return io_result(n, false);
  }
  void shutdown_write() override { (void)::shutdown(fd_.get(), SHUT_WR); }
  int connect_result() override { return connect_result_; }
  void abort_on_close() override { abort_ = true; }

 private:
  UniqueFd fd_;
  UniqueFd keep_;
  int connect_result_;
  bool abort_ = false;
  std::shared_ptr<FakeTcpEndpoints::Shared> shared_;
};

class FakeTcpListener final : public TcpListener {
 public:
  FakeTcpListener(std::shared_ptr<FakeTcpEndpoints::ListenerState> state,
                  std::shared_ptr<FakeTcpEndpoints::Shared> shared)
      : state_(std::move(state)), shared_(std::move(shared)) {}
  ~FakeTcpListener() override { state_->open = false; }

  int fd() const override { return state_->ready.fd(); }
  std::uint16_t port() const override { return state_->port; }
  SysResult<Accepted> accept() override {
    ++state_->accept_calls;
    if (state_->fail_errno != 0) return sys_fail(state_->fail_errno, "accept()");
    if (state_->queue.empty()) return sys_fail_plain(EAGAIN, "accept(): nothing pending");
    FakeTcpEndpoints::ListenerState::Pending p = std::move(state_->queue.front());
    state_->queue.pop_front();
    state_->update();
    return Accepted{std::make_unique<FakeTcpStream>(std::move(p.fd), 0, shared_), p.peer};
  }

 private:
  std::shared_ptr<FakeTcpEndpoints::ListenerState> state_;
  std::shared_ptr<FakeTcpEndpoints::Shared> shared_;
};

}  // namespace

FakeTcpEndpoints::FakeTcpEndpoints() : shared_(std::make_shared<Shared>()) {}
FakeTcpEndpoints::~FakeTcpEndpoints() = default;

SysResult<std::pair<UniqueFd, UniqueFd>> FakeTcpEndpoints::make_pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    return sys_fail(errno, "socketpair()");
  }
  std::pair<UniqueFd, UniqueFd> pair{UniqueFd(fds[0]), UniqueFd(fds[1])};
  if (buffer_size_ > 0) {
    for (int fd : fds) {
      (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer_size_, sizeof buffer_size_);
      (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_size_, sizeof buffer_size_);
    }
  }
  return pair;
}

FakeTcpEndpoints::ListenerState* FakeTcpEndpoints::find_listener(const IpAddress& address) const {
  for (const auto& l : listeners_) {
    if (l->open && l->address == address) return l.get();
  }
  return nullptr;
}

SysResult<std::unique_ptr<TcpListener>> FakeTcpEndpoints::listen(const IpAddress& address) {
  if (find_listener(address) != nullptr) return sys_fail(EADDRINUSE, "listen on " + address.to_string());
  auto state = std::make_shared<ListenerState>();
  state->address = address;
  state->port = next_listen_port_++;
  listeners_.push_back(state);
  return std::make_unique<FakeTcpListener>(std::move(state), shared_);
}

SysResult<TcpEndpoints::Connecting> FakeTcpEndpoints::connect(const IpAddress& from, const SocketAddress& to) {
  auto it = outcomes_.find(to);
  const ConnectOutcome outcome = it == outcomes_.end() ? ConnectOutcome::kSucceed : it->second;
  const SocketAddress local{from, next_local_port_++};
  if (outcome == ConnectOutcome::kFailNow) return sys_fail(ENETUNREACH, "connect() to " + to.to_string());
  connects_.push_back(ConnectCall{from, to, local});
  if (outcome == ConnectOutcome::kPending) {
    int p[2];
    if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) return sys_fail(errno, "pipe2()");
    return Connecting{std::make_unique<FakeTcpStream>(UniqueFd(p[0]), EINPROGRESS, shared_, UniqueFd(p[1])), local};
  }
  auto pair = make_pair();
  if (!pair) return std::unexpected(pair.error());
  if (outcome == ConnectOutcome::kRefuse) {
    return Connecting{std::make_unique<FakeTcpStream>(std::move(pair->first), ECONNREFUSED, shared_), local};
  }
  servers_[to].push_back(std::move(pair->second));
  return Connecting{std::make_unique<FakeTcpStream>(std::move(pair->first), 0, shared_), local};
}

std::optional<UniqueFd> FakeTcpEndpoints::push_connection(const IpAddress& listener_address,
                                                          const SocketAddress& peer) {
  ListenerState* l = find_listener(listener_address);
  if (l == nullptr) return std::nullopt;
  auto pair = make_pair();
  if (!pair) return std::nullopt;
  l->queue.push_back(ListenerState::Pending{std::move(pair->first), peer});
  l->update();
  return std::move(pair->second);
}

void FakeTcpEndpoints::fail_accepts_with(const IpAddress& listener_address, int err) {
  if (ListenerState* l = find_listener(listener_address)) l->fail_errno = err;
}

std::size_t FakeTcpEndpoints::accept_calls(const IpAddress& listener_address) const {
  const ListenerState* l = find_listener(listener_address);
  return l == nullptr ? 0 : l->accept_calls;
}

std::size_t FakeTcpEndpoints::pending_connections(const IpAddress& listener_address) const {
  const ListenerState* l = find_listener(listener_address);
  return l == nullptr ? 0 : l->queue.size();
}

std::uint16_t FakeTcpEndpoints::listener_port(const IpAddress& address) const {
  const ListenerState* l = find_listener(address);
  return l == nullptr ? 0 : l->port;
}

std::optional<UniqueFd> FakeTcpEndpoints::take_server(const SocketAddress& to) {
  auto it = servers_.find(to);
  if (it == servers_.end() || it->second.empty()) return std::nullopt;
  UniqueFd fd = std::move(it->second.front());
  it->second.pop_front();
  return fd;
}

}  // namespace buckwild::daemon

#include "daemon/control/metrics_server.h"

#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <string_view>
#include <utility>

#include "daemon/control/prometheus.h"

namespace buckwild::daemon {
namespace {

constexpr int kListenBacklog = 16;

// A listening TCP socket on `address`, and the address it got (the port
// chosen when `address` has port 0). We bind it ourselves, not libmicrohttpd,
// so that a failure comes back with its errno.
SysResult<std::pair<UniqueFd, SocketAddress>> listen_on(const SocketAddress& address) {
  const std::string what = "metrics: cannot listen on " + address.to_string();
  const bool v6 = address.ip.family() == IpFamily::kV6;
  UniqueFd fd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return sys_fail(errno, what);
  int on = 1;
  // A restarted daemon must not wait out the last run's TIME_WAIT
  // connections; a port another socket listens on still fails with EADDRINUSE.
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) {
    return sys_fail(errno, what);
  }
  // "[::]:9586" means IPv6 only; IPv4 is asked for with an IPv4 address.
  if (v6 && ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) != 0) {
    return sys_fail(errno, what);
  }
  sockaddr_storage ss{};
  socklen_t len = address.to_sockaddr(ss);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
    return sys_fail(errno, what);
  }
  if (::listen(fd.get(), kListenBacklog) != 0) return sys_fail(errno, what);
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &bound_len) != 0) {
    return sys_fail(errno, what);
  }
  auto actual = SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&bound), bound_len);
  if (!actual) return sys_fail_plain(0, what + ": the bound address is not IPv4 or IPv6");
  return std::pair{std::move(fd), *actual};
}

// Queues `body` with `status`. The body moves to the heap and libmicrohttpd
// frees it after sending, so a large exposition is never copied.
MHD_Result reply(MHD_Connection* connection, unsigned status, std::string body,
                 const char* content_type, const char* allow = nullptr) {
  auto text = std::make_unique<std::string>(std::move(body));
  MHD_Response* response = MHD_create_response_from_buffer_with_free_callback_cls(
      text->size(), text->data(), [](void* p) { delete static_cast<std::string*>(p); }, text.get());
  if (response == nullptr) return MHD_NO;
  static_cast<void>(text.release());  // the response owns it now
  MHD_Result ok = MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  if (ok == MHD_YES)
    ok = MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  if (ok == MHD_YES && allow != nullptr) {
    ok = MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, allow);
  }
  if (ok == MHD_YES) ok = MHD_queue_response(connection, status, response);
  MHD_destroy_response(response);  // reference counted: freed once sent
  return ok;
}

constexpr const char* kPlainText = "text/plain; charset=utf-8";

// True when the request announces a body (a GET or HEAD has none).
bool has_body(MHD_Connection* connection) {
  const char* length =
      MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  const char* encoding =
      MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
  return encoding != nullptr || (length != nullptr && std::string_view(length) != "0");
}

}  // namespace

struct MetricsServerCallbacks {
  // Every request, on libmicrohttpd's thread: first after its headers, then
  // once its (empty) body is in. A request we refuse is answered at the first
  // call, before any body it has is read: libmicrohttpd discards the body and
  // closes that connection. The others are answered at the second call, which
  // keeps a keep-alive connection open for the next scrape.
  static MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url,
                               const char* method, const char* /*version*/,
                               const char* /*upload_data*/, std::size_t* upload_data_size,
                               void** request_state) {
    auto* self = static_cast<MetricsServer*>(cls);
    const bool known_path = std::string_view(url) == "/metrics";
    if (*request_state == nullptr) {
      *request_state = self;  // counted until on_completed
      self->request_began();
      const std::string_view m(method);
      const bool known_method = m == MHD_HTTP_METHOD_GET || m == MHD_HTTP_METHOD_HEAD;
      if (known_method && !has_body(connection)) return MHD_YES;
      if (!known_path) return not_found(connection);
      if (!known_method) {
        return reply(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", kPlainText,
                     "GET, HEAD");
      }
      return reply(connection, MHD_HTTP_BAD_REQUEST, "a GET request has no body\n", kPlainText);
    }
    if (*upload_data_size != 0) {  // not announced, so not expected: ignored
      *upload_data_size = 0;
      return MHD_YES;
    }
    if (!known_path) return not_found(connection);
    std::optional<std::string> text = self->request_snapshot();
    if (!text) {
      return reply(connection, MHD_HTTP_SERVICE_UNAVAILABLE,
                   "the daemon did not produce its metrics in time, or is stopping\n", kPlainText);
    }
    return reply(connection, MHD_HTTP_OK, std::move(*text), kPrometheusContentType);
  }

  // A request presented to on_request has ended: answered and sent, or its
  // connection closed.
  static void on_completed(void* cls, MHD_Connection* /*connection*/, void** request_state,
                           MHD_RequestTerminationCode /*why*/) {
    if (*request_state == nullptr) return;
    *request_state = nullptr;
    static_cast<MetricsServer*>(cls)->request_ended();
  }

  static MHD_Result not_found(MHD_Connection* connection) {
    return reply(connection, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n",
                 kPlainText);
  }

  static void on_log(void* cls, const char* format, va_list args) {
    std::array<char, 256> buf{};
    std::vsnprintf(buf.data(), buf.size(), format, args);
    std::string message(buf.data());
    while (!message.empty() && (message.back() == '\n' || message.back() == '.')) {
      message.pop_back();
    }
    static_cast<MetricsServer*>(cls)->note_start_error(std::move(message));
  }
};

SysResult<std::unique_ptr<MetricsServer>> MetricsServer::start(EventLoop& loop,
                                                               const SocketAddress& listen,
                                                               Snapshot snapshot,
                                                               MetricsServerLimits limits) {
  auto socket = listen_on(listen);
  if (!socket) return std::unexpected(socket.error());
  auto& [listen_fd, address] = *socket;

  UniqueFd wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake) return sys_fail(errno, "metrics: cannot create an eventfd");
  std::unique_ptr<MetricsServer> server(
      new MetricsServer(loop, address, std::move(snapshot), limits, std::move(wake)));
  MetricsServer* self = server.get();
  if (auto w =
          loop.watch_fd(self->wake_.get(), kReadable, [self](std::uint32_t) { self->on_wake(); });
      !w) {
    return std::unexpected(w.error());
  }

  // libmicrohttpd gets a duplicate: it closes the descriptor it is given when
  // it stops, and on most of its failure paths but not on the earliest ones
  // (no descriptor or memory for its own inter-thread channel). Ours is
  // closed by us alone either way, so nothing is closed twice; that rare
  // failure leaks the duplicate.
  UniqueFd for_mhd(::fcntl(listen_fd.get(), F_DUPFD_CLOEXEC, 0));
  if (!for_mhd) return sys_fail(errno, "metrics: cannot duplicate the listening socket");

  // The thread libmicrohttpd starts inherits our signal mask: block every
  // signal for it, so none is delivered there instead of to the loop's
  // signalfd (which would kill the daemon instead of stopping it cleanly).
  sigset_t all;
  sigset_t previous;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &previous);
  unsigned flags =
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
  if (listen.ip.family() == IpFamily::kV6) flags |= MHD_USE_IPv6;
  // One option and its value a line.
  // clang-format off
  self->daemon_ = MHD_start_daemon(
      flags, 0, nullptr, nullptr, &MetricsServerCallbacks::on_request, self,
      MHD_OPTION_EXTERNAL_LOGGER, &MetricsServerCallbacks::on_log, self,
      MHD_OPTION_NOTIFY_COMPLETED, &MetricsServerCallbacks::on_completed, self,
      MHD_OPTION_LISTEN_SOCKET, static_cast<MHD_socket>(for_mhd.get()),
      MHD_OPTION_CONNECTION_LIMIT, static_cast<unsigned int>(limits.connection_limit),
      MHD_OPTION_CONNECTION_TIMEOUT, static_cast<unsigned int>(limits.idle_timeout_seconds),
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<std::size_t>(limits.connection_memory),
      MHD_OPTION_STRICT_FOR_CLIENT, static_cast<int>(1),
      MHD_OPTION_END);
  // clang-format on
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (self->daemon_ == nullptr) {
    static_cast<void>(for_mhd.release());  // see above: closed by it, or leaked
    std::lock_guard lock(self->mu_);
    std::string why = self->start_error_.empty() ? "libmicrohttpd did not start"
                                                 : "libmicrohttpd: " + self->start_error_;
    return sys_fail_plain(0, "metrics: cannot serve on " + address.to_string() + ": " + why);
  }
  static_cast<void>(for_mhd.release());  // libmicrohttpd's now
  {
    std::lock_guard lock(self->mu_);
    self->starting_ = false;
  }
  return server;
}

MetricsServer::MetricsServer(EventLoop& loop, SocketAddress address, Snapshot snapshot,
                             MetricsServerLimits limits, UniqueFd wake)
    : loop_(loop),
      address_(address),
      snapshot_(std::move(snapshot)),
      limits_(limits),
      wake_(std::move(wake)) {}

MetricsServer::~MetricsServer() {
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  answered_cv_.notify_all();
  if (daemon_ != nullptr) {
    // A request under way (one waiting for us is answered 503 now) gets a
    // moment to be sent before libmicrohttpd closes every connection.
    {
      std::unique_lock lock(mu_);
      drained_cv_.wait_for(lock, std::chrono::microseconds(limits_.shutdown_grace),
                           [this] { return in_flight_ == 0; });
    }
    // Joins libmicrohttpd's thread; only then may the eventfd it writes to go.
    MHD_stop_daemon(daemon_);
  }
  loop_.unwatch_fd(wake_.get());
}

void MetricsServer::request_began() {
  std::lock_guard lock(mu_);
  ++in_flight_;
}

void MetricsServer::request_ended() {
  {
    std::lock_guard lock(mu_);
    --in_flight_;
  }
  drained_cv_.notify_all();
}

std::optional<std::string> MetricsServer::request_snapshot() {
  std::unique_lock lock(mu_);
  if (closing_) return std::nullopt;
  const std::uint64_t ticket = ++asked_;
  lock.unlock();
  const std::uint64_t one = 1;
  // Cannot block (EFD_NONBLOCK) and cannot fill up (the counter would need
  // 2^64 requests); the loop drains it.
  static_cast<void>(::write(wake_.get(), &one, sizeof one));
  lock.lock();
  answered_cv_.wait_for(lock, std::chrono::microseconds(limits_.snapshot_timeout),
                        [&] { return answered_ >= ticket || closing_; });
  if (closing_ || answered_ < ticket) return std::nullopt;
  return std::exchange(body_, {});
}

void MetricsServer::on_wake() {
  std::uint64_t count = 0;
  static_cast<void>(::read(wake_.get(), &count, sizeof count));
  std::uint64_t ticket = 0;
  {
    std::lock_guard lock(mu_);
    if (closing_ || answered_ >= asked_) return;
    ticket = asked_;
  }
  // Outside the lock: the HTTP thread only ever waits on it, and the
  // exposition may take a while for a large tunnel.
  std::string text = snapshot_();
  {
    std::lock_guard lock(mu_);
    body_ = std::move(text);
    answered_ = ticket;
  }
  answered_cv_.notify_all();
}

void MetricsServer::note_start_error(std::string message) {
  // After start, libmicrohttpd's messages (a client that went away, a
  // timeout) come from its thread, where the daemon's logger may not be
  // used (a reload rebuilds its sinks on the loop's thread): they are dropped.
  std::lock_guard lock(mu_);
  if (starting_ && start_error_.empty()) start_error_ = std::move(message);
}

}  // namespace buckwild::daemon

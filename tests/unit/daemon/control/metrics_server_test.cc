#include "daemon/control/metrics_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/control/prometheus.h"

namespace buckwild::daemon {
namespace {

using namespace std::chrono_literals;

// 127.0.0.1, port 0: the kernel picks a free one (MetricsServer::address()).
SocketAddress loopback() {
  SocketAddress a = *SocketAddress::parse("127.0.0.1", 1);
  a.port = 0;
  return a;
}

std::unique_ptr<EpollEventLoop> make_loop() {
  auto loop = EpollEventLoop::create();
  if (!loop) ADD_FAILURE() << loop.error().message;
  return loop ? std::move(*loop) : nullptr;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct HttpReply {
  int status = 0;
  std::string headers;  // the status line and headers, each line ending in CRLF
  std::string body;
  // The value of header `name` (lower case), "" without one.
  std::string header(const std::string& name) const {
    const std::string key = "\r\n" + name + ":";
    const std::size_t at = lower(headers).find(key);
    if (at == std::string::npos) return "";
    std::size_t start = at + key.size();
    while (start < headers.size() && headers[start] == ' ') ++start;
    return headers.substr(start, headers.find("\r\n", start) - start);
  }
};

// A plain HTTP/1.1 client on a blocking socket. The test may speak HTTP by
// hand; only the server must not.
class Client {
 public:
  static std::optional<Client> connect(const SocketAddress& to) {
    sockaddr_storage ss{};
    socklen_t len = to.to_sockaddr(ss);
    UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return std::nullopt;
    Client c(std::move(fd));
    c.set_timeout(5s);
    if (::connect(c.fd_.get(), reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
      return std::nullopt;
    }
    return c;
  }

  void set_timeout(std::chrono::milliseconds t) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(t.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }

  bool send(const std::string& bytes) {
    std::size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::send(fd_.get(), bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }

  // One response (Content-Length framed; a HEAD response has no body).
  // nullopt on timeout, end of stream or nonsense.
  std::optional<HttpReply> read_reply(bool head = false) {
    std::size_t end;
    while ((end = in_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return std::nullopt;
    }
    HttpReply r;
    r.headers = in_.substr(0, end + 2);
    in_.erase(0, end + 4);
    if (!r.headers.starts_with("HTTP/1.1 ") || r.headers.size() < 12) return std::nullopt;
    r.status = std::stoi(r.headers.substr(9, 3));
    const std::string length = r.header("content-length");
    const std::size_t want = head || length.empty() ? 0 : std::stoul(length);
    while (in_.size() < want) {
      if (!fill()) return std::nullopt;
    }
    r.body = in_.substr(0, want);
    in_.erase(0, want);
    return r;
  }

  // True when the server closed the connection (EOF or reset) within the timeout.
  bool closed_by_server() {
    char c;
    ssize_t n = ::recv(fd_.get(), &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

 private:
  explicit Client(UniqueFd fd) : fd_(std::move(fd)) {}
  bool fill() {
    char buf[4096];
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n <= 0) return false;
    in_.append(buf, static_cast<std::size_t>(n));
    return true;
  }
  UniqueFd fd_;
  std::string in_;
};

std::optional<HttpReply> request(const SocketAddress& to, const std::string& method,
                                 const std::string& path) {
  auto c = Client::connect(to);
  if (!c) return std::nullopt;
  if (!c->send(method + " " + path + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")) {
    return std::nullopt;
  }
  return c->read_reply(method == "HEAD");
}

// Runs the loop (this thread) until `work` (another thread) is done; the
// client's socket timeouts bound the work, this bounds the loop.
template <typename F>
auto while_looping(EpollEventLoop& loop, F work) {
  auto done = std::async(std::launch::async, std::move(work));
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (done.wait_for(0s) != std::future_status::ready &&
         std::chrono::steady_clock::now() < deadline) {
    EXPECT_TRUE(loop.run_once(milliseconds(5)));
  }
  EXPECT_EQ(done.wait_for(0s), std::future_status::ready) << "client did not finish";
  return done.get();
}

// An EpollEventLoop that also tells the test which descriptors are watched:
// the server's eventfd, to see a request waiting for the loop.
class SpyLoop final : public EventLoop {
 public:
  explicit SpyLoop(EventLoop& inner) : inner_(inner) {}
  SysResult<void> watch_fd(int fd, std::uint32_t interest, FdCallback callback) override {
    watched.push_back(fd);
    return inner_.watch_fd(fd, interest, std::move(callback));
  }
  SysResult<void> update_fd(int fd, std::uint32_t interest) override {
    return inner_.update_fd(fd, interest);
  }
  void unwatch_fd(int fd) override { inner_.unwatch_fd(fd); }
  TimerId add_timer(Duration delay, TimerCallback cb) override {
    return inner_.add_timer(delay, std::move(cb));
  }
  TimerId add_timer_at(TimePoint deadline, TimerCallback cb) override {
    return inner_.add_timer_at(deadline, std::move(cb));
  }
  TimerId add_periodic_timer(Duration period, TimerCallback cb) override {
    return inner_.add_periodic_timer(period, std::move(cb));
  }
  bool cancel_timer(TimerId id) override { return inner_.cancel_timer(id); }
  SysResult<void> watch_signal(int signo, SignalCallback cb) override {
    return inner_.watch_signal(signo, std::move(cb));
  }
  TimePoint now() const override { return inner_.now(); }
  SysResult<void> run() override { return inner_.run(); }
  void stop() override { inner_.stop(); }

  std::vector<int> watched;

 private:
  EventLoop& inner_;
};

TEST(MetricsServerTest, GetMetricsServesAFreshSnapshotFromTheLoopThread) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  int calls = 0;
  std::thread::id caller;
  auto server = MetricsServer::start(*loop, loopback(), [&] {
    caller = std::this_thread::get_id();
    return "buckwild_test " + std::to_string(++calls) + "\n";
  });
  ASSERT_TRUE(server) << server.error().message;
  const SocketAddress at = (*server)->address();
  EXPECT_EQ(at.ip, loopback().ip);
  EXPECT_NE(at.port, 0);

  auto first = while_looping(*loop, [&] { return request(at, "GET", "/metrics"); });
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(first->body, "buckwild_test 1\n");
  EXPECT_EQ(first->header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(caller, std::this_thread::get_id());

  auto second = while_looping(*loop, [&] { return request(at, "GET", "/metrics?x=1"); });
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(second->body, "buckwild_test 2\n");

  auto head = while_looping(*loop, [&] { return request(at, "HEAD", "/metrics"); });
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->body, "");
}

TEST(MetricsServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  int calls = 0;
  auto server =
      MetricsServer::start(*loop, loopback(), [&] { return std::to_string(++calls) + "\n"; });
  ASSERT_TRUE(server) << server.error().message;
  auto bodies = while_looping(*loop, [at = (*server)->address()] {
    std::vector<std::string> out;
    auto c = Client::connect(at);
    if (!c) return out;
    for (int i = 0; i < 3; ++i) {
      if (!c->send("GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")) break;
      auto r = c->read_reply();
      if (!r) break;
      out.push_back(r->body);
    }
    return out;
  });
  EXPECT_EQ(bodies, (std::vector<std::string>{"1\n", "2\n", "3\n"}));
}

TEST(MetricsServerTest, OtherPathsAre404AndOtherMethods405) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  int calls = 0;
  auto server = MetricsServer::start(*loop, loopback(), [&] {
    ++calls;
    return std::string("x 1\n");
  });
  ASSERT_TRUE(server) << server.error().message;
  const SocketAddress at = (*server)->address();
  for (const char* path : {"/", "/other", "/metrics/", "/metricsx"}) {
    auto r = while_looping(*loop, [&] { return request(at, "GET", path); });
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 404) << path;
  }
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS"}) {
    auto r = while_looping(*loop, [&] { return request(at, method, "/metrics"); });
    ASSERT_TRUE(r) << method;
    EXPECT_EQ(r->status, 405) << method;
    EXPECT_EQ(r->header("allow"), "GET, HEAD") << method;
  }
  auto elsewhere = while_looping(*loop, [&] { return request(at, "POST", "/other"); });
  ASSERT_TRUE(elsewhere);
  EXPECT_EQ(elsewhere->status, 404);
  // A request with a body is answered without reading it, then closed.
  auto send_with_body = [&](const std::string& method) {
    return while_looping(*loop, [&] {
      std::optional<std::pair<HttpReply, bool>> r;
      auto c = Client::connect(at);
      if (!c) return r;
      c->send(method + " /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
      auto reply = c->read_reply();
      if (reply) r.emplace(*reply, c->closed_by_server());
      return r;
    });
  };
  auto posted = send_with_body("POST");
  ASSERT_TRUE(posted);
  EXPECT_EQ(posted->first.status, 405);
  EXPECT_TRUE(posted->second);
  auto get_with_body = send_with_body("GET");
  ASSERT_TRUE(get_with_body);
  EXPECT_EQ(get_with_body->first.status, 400);
  EXPECT_TRUE(get_with_body->second);
  EXPECT_EQ(calls, 0);
}

TEST(MetricsServerTest, NoAnswerFromTheLoopIs503AndALateAnswerIsNotReused) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  int calls = 0;
  MetricsServerLimits limits;
  limits.snapshot_timeout = milliseconds(200);
  auto server = MetricsServer::start(
      *loop, loopback(), [&] { return std::to_string(++calls) + "\n"; }, limits);
  ASSERT_TRUE(server) << server.error().message;
  const SocketAddress at = (*server)->address();

  // The loop does not run: the HTTP thread gives up after 200 ms.
  const auto before = std::chrono::steady_clock::now();
  auto r = request(at, "GET", "/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_GE(std::chrono::steady_clock::now() - before, 190ms);

  // The loop answers the abandoned request late; the next request still
  // gets a snapshot made for it.
  ASSERT_TRUE(loop->run_once(0));
  EXPECT_EQ(calls, 1);
  auto next = while_looping(*loop, [&] { return request(at, "GET", "/metrics"); });
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
  EXPECT_EQ(next->body, "2\n");
}

TEST(MetricsServerTest, DestroyingWhileARequestWaitsAnswers503AtOnce) {
  auto epoll = make_loop();
  ASSERT_TRUE(epoll);
  SpyLoop loop(*epoll);
  MetricsServerLimits limits;
  limits.snapshot_timeout = seconds(30);  // destruction must not wait for it
  auto server = MetricsServer::start(
      loop, loopback(), [] { return std::string("x 1\n"); }, limits);
  ASSERT_TRUE(server) << server.error().message;
  ASSERT_EQ(loop.watched.size(), 1u);
  const int wake = loop.watched[0];

  auto reply = std::async(std::launch::async,
                          [at = (*server)->address()] { return request(at, "GET", "/metrics"); });
  // The request is posted to the loop (its eventfd turns readable); the loop
  // never runs, so the HTTP thread is waiting.
  pollfd p{wake, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);

  const auto before = std::chrono::steady_clock::now();
  server->reset();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 2s);
  ASSERT_EQ(reply.wait_for(5s), std::future_status::ready);
  auto r = reply.get();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
}

TEST(MetricsServerTest, DestroyingWithIdleConnectionsReturns) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  auto server = MetricsServer::start(*loop, loopback(), [] { return std::string("x 1\n"); });
  ASSERT_TRUE(server) << server.error().message;
  auto idle = Client::connect((*server)->address());
  ASSERT_TRUE(idle);
  ASSERT_TRUE(idle->send("GET /metr"));  // half a request
  std::this_thread::sleep_for(50ms);
  const auto before = std::chrono::steady_clock::now();
  server->reset();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 2s);
  EXPECT_TRUE(idle->closed_by_server());
}

TEST(MetricsServerTest, ConnectionLimitHoldsNewClientsBackUntilOneLeaves) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  MetricsServerLimits limits;
  limits.connection_limit = 1;
  auto server = MetricsServer::start(
      *loop, loopback(), [] { return std::string("x 1\n"); }, limits);
  ASSERT_TRUE(server) << server.error().message;
  const SocketAddress at = (*server)->address();

  // The first client is served and keeps its connection (keep-alive).
  std::optional<Client> first = Client::connect(at);
  ASSERT_TRUE(first);
  auto r = while_looping(*loop, [&] {
    first->send("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    return first->read_reply();
  });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);

  // The second waits: nothing is read from it while the first holds the slot.
  std::optional<Client> second = Client::connect(at);
  ASSERT_TRUE(second);
  ASSERT_TRUE(second->send("GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  second->set_timeout(300ms);
  auto held = while_looping(*loop, [&] { return second->read_reply(); });
  EXPECT_FALSE(held);

  first.reset();
  second->set_timeout(5s);
  auto served = while_looping(*loop, [&] { return second->read_reply(); });
  ASSERT_TRUE(served);
  EXPECT_EQ(served->status, 200);
}

TEST(MetricsServerTest, IdleConnectionsAreClosedAfterTheTimeout) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  MetricsServerLimits limits;
  limits.idle_timeout_seconds = 1;
  auto server = MetricsServer::start(
      *loop, loopback(), [] { return std::string("x 1\n"); }, limits);
  ASSERT_TRUE(server) << server.error().message;
  auto idle = Client::connect((*server)->address());
  ASSERT_TRUE(idle);
  const auto before = std::chrono::steady_clock::now();
  EXPECT_TRUE(idle->closed_by_server());  // within the client's 5 s
  EXPECT_LT(std::chrono::steady_clock::now() - before, 4s);
}

TEST(MetricsServerTest, PortInUseIsAClearError) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  auto taken = MetricsServer::start(*loop, loopback(), [] { return std::string(); });
  ASSERT_TRUE(taken) << taken.error().message;
  const SocketAddress at = (*taken)->address();
  auto again = MetricsServer::start(*loop, at, [] { return std::string(); });
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().sys_errno, EADDRINUSE);
  EXPECT_EQ(again.error().message, "metrics: cannot listen on 127.0.0.1:" +
                                       std::to_string(at.port) + ": Address already in use");
}

TEST(MetricsServerTest, AddressNotOnThisHostIsAClearError) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  auto bad = MetricsServer::start(*loop, *SocketAddress::parse("203.0.113.77:9586", 0),
                                  [] { return std::string(); });
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().sys_errno, EADDRNOTAVAIL);
  EXPECT_EQ(bad.error().message,
            "metrics: cannot listen on 203.0.113.77:9586: Cannot assign requested address");
}

TEST(MetricsServerTest, ServesOnIpv6) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  auto v6 = *SocketAddress::parse("[::1]", 1);
  v6.port = 0;
  auto server = MetricsServer::start(*loop, v6, [] { return std::string("x 1\n"); });
  if (!server && server.error().sys_errno == EADDRNOTAVAIL) {
    GTEST_SKIP() << "no IPv6 loopback here: " << server.error().message;
  }
  ASSERT_TRUE(server) << server.error().message;
  EXPECT_EQ((*server)->address().ip, v6.ip);
  auto r =
      while_looping(*loop, [at = (*server)->address()] { return request(at, "GET", "/metrics"); });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "x 1\n");
}

// libmicrohttpd's thread ("MHD-single") must have every signal blocked, so
// that SIGTERM reaches the loop's signalfd; ours keeps its mask.
TEST(MetricsServerTest, HttpThreadBlocksSignals) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  sigset_t before;
  ::pthread_sigmask(SIG_BLOCK, nullptr, &before);
  auto server = MetricsServer::start(*loop, loopback(), [] { return std::string(); });
  ASSERT_TRUE(server) << server.error().message;
  sigset_t after;
  ::pthread_sigmask(SIG_BLOCK, nullptr, &after);
  EXPECT_EQ(sigismember(&before, SIGTERM), sigismember(&after, SIGTERM));

  // The thread names itself once it runs: look for it for up to 2 s.
  std::optional<std::string> blocked;
  for (int attempt = 0; attempt < 200 && !blocked; ++attempt) {
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream comm(task.path() / "comm");
      std::string name;
      std::getline(comm, name);
      if (name != "MHD-single") continue;
      std::ifstream status(task.path() / "status");
      for (std::string line; std::getline(status, line);) {
        if (line.starts_with("SigBlk:")) blocked = line.substr(7);
      }
    }
    if (!blocked) std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(blocked) << "no thread named MHD-single";
  const unsigned long long mask = std::stoull(*blocked, nullptr, 16);
  for (int signo : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGPIPE}) {
    EXPECT_TRUE(mask & (1ull << (signo - 1))) << "signal " << signo << ", SigBlk " << *blocked;
  }
}

// The whole way: a status document rendered on the loop thread and read back.
TEST(MetricsServerTest, ServesTheRenderedExposition) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  nlohmann::json status = {{"device", "bw0"}, {"uptime_ms", 1500}};
  auto server = MetricsServer::start(*loop, loopback(),
                                     [&] { return render_prometheus(std::span(&status, 1)); });
  ASSERT_TRUE(server) << server.error().message;
  auto r =
      while_looping(*loop, [at = (*server)->address()] { return request(at, "GET", "/metrics"); });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body,
            "# HELP buckwild_uptime_seconds Seconds since the daemon started.\n"
            "# TYPE buckwild_uptime_seconds gauge\n"
            "buckwild_uptime_seconds{device=\"bw0\"} 1.5\n");
}

}  // namespace
}  // namespace buckwild::daemon

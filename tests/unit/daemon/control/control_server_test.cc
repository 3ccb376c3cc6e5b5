#include "daemon/control/control_server.h"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/daemon_test_support.h"

namespace buckwild::daemon {
namespace {

using testing::TempDir;

constexpr std::string_view kStatusReply = R"({"ok":true,"status":{"device":"bw0"}})";

std::unique_ptr<EpollEventLoop> make_loop() {
  auto loop = EpollEventLoop::create();
  if (!loop) ADD_FAILURE() << loop.error().message;
  return loop ? std::move(*loop) : nullptr;
}

// Turns the loop until `done()` holds, at most `limit` of wall time and a
// bounded number of turns. Returns done().
template <typename Done>
bool run_until(EpollEventLoop& loop, Done done, Duration limit = seconds(3)) {
  const TimePoint end = loop.now() + limit;
  for (int turn = 0; turn < 200000 && !done(); ++turn) {
    if (loop.now() >= end) break;
    if (!loop.run_once(milliseconds(5))) return false;
  }
  return done();
}

// A non-blocking client in the test's thread: the server answers it only while
// the test turns the loop.
class TestClient {
 public:
  explicit TestClient(const std::string& path) {
    fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), std::min(path.size(), sizeof addr.sun_path - 1));
    connected_ = ::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  }
  bool connected() const { return connected_; }

  // Sends as much of `data` as the socket takes now; returns how much.
  std::size_t send(std::string_view data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
      ssize_t n = ::send(fd_.get(), data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<std::size_t>(n);
    }
    return sent;
  }
  void shutdown_write() { ::shutdown(fd_.get(), SHUT_WR); }

  // Reads what is waiting (bounded); notes the end of the connection.
  void poll() {
    char buffer[65536];
    for (int i = 0; i < 1024 && !closed_; ++i) {
      ssize_t n = ::recv(fd_.get(), buffer, sizeof buffer, 0);
      if (n > 0) {
        received_.append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        closed_ = true;
      } else {
        break;
      }
    }
  }
  bool closed() {
    poll();
    return closed_;
  }
  // Complete lines received so far.
  std::vector<std::string> lines() {
    poll();
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t nl; (nl = received_.find('\n', start)) != std::string::npos; start = nl + 1) {
      out.push_back(received_.substr(start, nl - start));
    }
    return out;
  }
  std::size_t line_count() { return lines().size(); }
  std::size_t received_bytes() const { return received_.size(); }

 private:
  UniqueFd fd_;
  bool connected_ = false;
  bool closed_ = false;
  std::string received_;
};

std::vector<ControlCommand> standard_commands(int* status_calls = nullptr) {
  std::vector<ControlCommand> commands;
  commands.push_back({"status", [status_calls](std::string_view) {
                        if (status_calls != nullptr) ++*status_calls;
                        return ControlReply{std::string(kStatusReply), nullptr};
                      }});
  commands.push_back({"reload", [](std::string_view) {
                        return ControlReply{R"({"ok":true,"reload":{}})", nullptr};
                      }});
  commands.push_back({"stop", [](std::string_view) {
                        return ControlReply{R"({"ok":true,"stop":"shutting down"})", nullptr};
                      }});
  return commands;
}

struct Fixture {
  explicit Fixture(ControlLimits limits = {},
                   std::vector<ControlCommand> commands = standard_commands()) {
    loop = make_loop();
    path = dir.path() + "/bw0.sock";
    if (!loop) return;
    auto created = ControlServer::create(*loop, ControlOptions{path, std::nullopt, limits},
                                         std::move(commands));
    if (!created) {
      ADD_FAILURE() << created.error().message;
      return;
    }
    server = std::move(*created);
  }
  bool ok() const { return loop && server; }

  TempDir dir;
  std::string path;
  std::unique_ptr<EpollEventLoop> loop;
  std::unique_ptr<ControlServer> server;
};

std::string error_of(const std::string& line) {
  auto reply = nlohmann::json::parse(line, nullptr, false);
  if (reply.is_discarded() || !reply.is_object()) return "not a JSON object: " + line;
  if (reply.value("ok", true) != false) return "not an error: " + line;
  return reply.value("error", std::string("no error text"));
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

TEST(ControlServerTest, RequestGetsReply) {
  Fixture f;
  ASSERT_TRUE(f.ok());
  TestClient client(f.path);
  ASSERT_TRUE(client.connected());
  client.send("status\n");
  ASSERT_TRUE(run_until(*f.loop, [&] { return client.line_count() == 1; }));
  EXPECT_EQ(client.lines()[0], kStatusReply);
  EXPECT_EQ(f.server->stats().clients_accepted, 1u);
  EXPECT_EQ(f.server->stats().requests, 1u);
  EXPECT_EQ(f.server->stats().bad_requests, 0u);
  EXPECT_FALSE(client.closed());  // the connection stays open for more requests
}

TEST(ControlServerTest, AHandlerKnowsWhichProcessAsked) {
  std::optional<ControlServer::Requester> seen;
  ControlServer* server = nullptr;
  std::vector<ControlCommand> commands;
  commands.push_back({"who", [&](std::string_view) {
                        seen = server->requester();
                        return ControlReply{R"({"ok":true})", nullptr};
                      }});
  Fixture f({}, std::move(commands));
  ASSERT_TRUE(f.ok());
  server = f.server.get();
  TestClient client(f.path);
  client.send("who\n");
  ASSERT_TRUE(run_until(*f.loop, [&] { return client.line_count() == 1; }));
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->pid, ::getpid());  // the test client is this process
  EXPECT_EQ(seen->uid, ::getuid());
  EXPECT_FALSE(f.server->requester().has_value());  // only while a handler runs
}

TEST(ControlServerTest, PipelinedRequestsAreAnsweredInOrder) {
  std::vector<ControlCommand> commands;
  int n = 0;
  std::vector<std::string> seen;
  for (std::string word : {"a", "b"}) {
    commands.push_back({word, [&n, &seen, word](std::string_view request) {
                          seen.emplace_back(request);
                          return ControlReply{R"({"ok":true,"word":")" + word + R"(","n":)" +
                                                  std::to_string(n++) + "}",
                                              nullptr};
                        }});
  }
  Fixture f({}, std::move(commands));
  ASSERT_TRUE(f.ok());
  TestClient client(f.path);
  client.send("a\nb\r\n  a\t\nb\n");
  ASSERT_TRUE(run_until(*f.loop, [&] { return client.line_count() == 4; }));
  auto lines = client.lines();
  EXPECT_EQ(lines[0], R"({"ok":true,"word":"a","n":0})");
  EXPECT_EQ(lines[1], R"({"ok":true,"word":"b","n":1})");
  EXPECT_EQ(lines[2], R"({"ok":true,"word":"a","n":2})");
  EXPECT_EQ(lines[3], R"({"ok":true,"word":"b","n":3})");
  // The handler gets the trimmed line.
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "a", "b"}));
}

TEST(ControlServerTest, UnknownEmptyAndArgumentsAreErrors) {
  Fixture f;
  ASSERT_TRUE(f.ok());
  TestClient client(f.path);
  client.send("frobnicate\n\n   \nstatus now\nstatus\n");
  ASSERT_TRUE(run_until(*f.loop, [&] { return client.line_count() == 5; }));
  auto lines = client.lines();
  EXPECT_EQ(
      lines[0],
      R"({"ok":false,"error":"unknown command \"frobnicate\"; the commands are: status, reload, stop"})");
  EXPECT_EQ(error_of(lines[1]), "empty request; the commands are: status, reload, stop");
  EXPECT_EQ(error_of(lines[2]), "empty request; the commands are: status, reload, stop");
  EXPECT_EQ(error_of(lines[3]), "\"status\" takes no arguments");
  EXPECT_EQ(lines[4], kStatusReply);  // errors do not end the connection
  EXPECT_EQ(f.server->stats().requests, 5u);
  EXPECT_EQ(f.server->stats().bad_requests, 4u);
}

TEST(ControlServerTest, OverlongLineIsAnErrorAndClosesTheConnection) {
  Fixture f;
  ASSERT_TRUE(f.ok());
  TestClient client(f.path);
  ASSERT_EQ(client.send(std::string(5000, 'x') + "\n"), 5001u);
  ASSERT_TRUE(run_until(*f.loop, [&] { return client.closed(); }));
  auto lines = client.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(error_of(lines[0]), "request line longer than 4096 bytes; closing the connection");
  EXPECT_EQ(f.server->clients(), 0u);
  EXPECT_EQ(f.server->stats().bad_requests, 1u);
}

TEST(ControlServerTest, LineOfExactlyTheLimitIsAccepted) {
  Fixture f;
  ASSERT_TRUE(f.ok());
  TestClient client(f.path);
  // 4096 bytes: "status" padded with spaces, then "\r\n" (the '\r' is not counted).
  std::string line = "status" + std::string(4090, ' ') + "\r\n";
  ASSERT_EQ(client.send(line), line.size());
  ASSERT_TRUE(run_until(*f.loop, [&] { return client.line_count() == 1; }));
  EXPECT_EQ(client.lines()[0], kStatusReply);
  EXPECT_FALSE(client.closed());
}

TEST(ControlServerTest, ThousandMalformedRequestsAreAllAnsweredInBoundedMemory) {
  Fixture f;
  ASSERT_TRUE(f.ok());
  TestClient client(f.path);
  // Unknown words, binary bytes (not UTF-8), a long word, empty lines.
  const std::vector<std::string> bad = {"bogus",
                                        std::string("\xff\xfe\x00zz", 5),
                                        std::string(300, 'w'),
                                        "",
                                        "STATUS",
                                        "{\"cmd\":\"status\"}"};
  std::string batch;
  for (int i = 0; i < 1000; ++i) batch += bad[static_cast<std::size_t>(i) % bad.size()] + "\n";
  std::size_t sent = 0;
  std::size_t most_buffered = 0;
  ASSERT_TRUE(run_until(*f.loop, [&] {
    sent += client.send(std::string_view(batch).substr(sent));
    most_buffered = std::max(most_buffered, f.server->buffered_bytes());
    return client.line_count() == 1000;
  }));
  auto lines = client.lines();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string e = error_of(lines[i]);
    EXPECT_TRUE(e.starts_with("unknown command") || e.starts_with("empty request"))
        << i << ": " << e;
  }
  EXPECT_EQ(f.server->stats().requests, 1000u);
  EXPECT_EQ(f.server->stats().bad_requests, 1000u);
  EXPECT_EQ(f.server->clients(), 1u);
  // One read chunk and one line of input, one pause's worth of output.
  EXPECT_LE(most_buffered, 4096u + 4096u + (64u << 10) + 512u);
  // The echoed word is cut short.
  EXPECT_LT(lines[2].size(), 200u);
  // And the connection still works.
  client.send("status\n");
  ASSERT_TRUE(run_until(*f.loop, [&] { return client.line_count() == 1001; }));
  EXPECT_EQ(client.lines()[1000], kStatusReply);
}

TEST(ControlServerTest, SeventeenthClientIsRefused) {
  Fixture f;
  ASSERT_TRUE(f.ok());
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < 16; ++i) {
    clients.push_back(std::make_unique<TestClient>(f.path));
    ASSERT_TRUE(clients.back()->connected());
  }
  ASSERT_TRUE(run_until(*f.loop, [&] { return f.server->clients() == 16; }));
  TestClient extra(f.path);
  ASSERT_TRUE(extra.connected());
  ASSERT_TRUE(run_until(*f.loop, [&] { return extra.closed(); }));
  auto lines = extra.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], R"({"ok":false,"error":"too many control clients (16); try again"})");
  EXPECT_EQ(f.server->stats().clients_refused, 1u);
  EXPECT_EQ(f.server->stats().clients_accepted, 16u);

  // The sixteen are still served; when one leaves, a new client gets in.
  clients[3]->send("status\n");
  ASSERT_TRUE(run_until(*f.loop, [&] { return clients[3]->line_count() == 1; }));
  clients.erase(clients.begin());
  ASSERT_TRUE(run_until(*f.loop, [&] { return f.server->clients() == 15; }));
  TestClient late(f.path);
  late.send("status\n");
  ASSERT_TRUE(run_until(*f.loop, [&] { return late.line_count() == 1; }));
  EXPECT_EQ(late.lines()[0], kStatusReply);
}

TEST(ControlServerTest, IdleClientIsClosedAndActiveOneIsNot) {
  ControlLimits limits;
  limits.idle_timeout = milliseconds(300);
  Fixture f(limits);
  ASSERT_TRUE(f.ok());
  TestClient idle(f.path);
  TestClient active(f.path);
  const TimePoint start = f.loop->now();
  // The active client asks every 50 ms for 650 ms: two idle timeouts, with
  // room for a loaded machine to be late.
  int asked = 0;
  ASSERT_TRUE(run_until(*f.loop, [&] {
    if (f.loop->now() - start >= milliseconds(50) * asked && asked < 14) {
      active.send("status\n");
      ++asked;
    }
    return asked == 14 && active.line_count() == 14;
  }));
  EXPECT_TRUE(idle.closed());
  EXPECT_FALSE(active.closed());
  EXPECT_EQ(f.server->stats().clients_timed_out, 1u);
  EXPECT_GE(f.loop->now() - start, milliseconds(650));
  ASSERT_TRUE(run_until(*f.loop, [&] { return active.closed(); }));
  EXPECT_EQ(f.server->stats().clients_timed_out, 2u);
  EXPECT_EQ(f.server->clients(), 0u);
}

TEST(ControlServerTest, ClientThatNeverReadsIsDroppedWithBoundedMemory) {
  const std::string big = R"({"ok":true,"status":{"pad":")" + std::string(100 << 10, 'p') + "\"}}";
  int calls = 0;
  int sent_callbacks = 0;
  std::vector<ControlCommand> commands;
  commands.push_back({"status", [&](std::string_view) {
                        ++calls;
                        return ControlReply{big, [&] { ++sent_callbacks; }};
                      }});
  ControlLimits limits;
  limits.write_stall_timeout = milliseconds(300);
  Fixture f(limits, std::move(commands));
  ASSERT_TRUE(f.ok());
  TestClient client(f.path);
  std::string requests;
  for (int i = 0; i < 1000; ++i) requests += "status\n";
  std::size_t sent = 0;
  std::size_t most_buffered = 0;
  // The client sends and sends, and never reads.
  ASSERT_TRUE(run_until(*f.loop,
                        [&] {
                          sent += client.send(std::string_view(requests).substr(sent));
                          most_buffered = std::max(most_buffered, f.server->buffered_bytes());
                          return f.server->stats().clients_accepted == 1 &&
                                 f.server->clients() == 0;
                        }))
      << "calls " << calls << " sent " << sent << " buffered " << f.server->buffered_bytes()
      << " received " << client.received_bytes();
  EXPECT_EQ(f.server->stats().clients_dropped_slow, 1u);
  // Backpressure: the server stopped answering (and reading) long before 1000.
  EXPECT_LT(calls, 100);
  EXPECT_LE(most_buffered, (64u << 10) + big.size() + 2 * 4096u);
  // Every reply's after_sent ran: sent, or the client gone.
  EXPECT_EQ(sent_callbacks, calls);
}

TEST(ControlServerTest, ReplyOverTheUnreadLimitDropsTheClient) {
  const std::string huge = R"({"ok":true,"status":{"pad":")" + std::string(2 << 20, 'p') + "\"}}";
  std::vector<ControlCommand> commands;
  commands.push_back({"status", [&](std::string_view) { return ControlReply{huge, nullptr}; }});
  ControlLimits limits;
  limits.max_unread_reply_bytes = 1 << 20;
  Fixture f(limits, std::move(commands));
  ASSERT_TRUE(f.ok());
  TestClient client(f.path);
  client.send("status\n");
  ASSERT_TRUE(run_until(*f.loop, [&] {
    return f.server->stats().clients_accepted == 1 && f.server->clients() == 0;
  }));
  EXPECT_EQ(f.server->stats().clients_dropped_slow, 1u);
  EXPECT_EQ(f.server->buffered_bytes(), 0u);
}

TEST(ControlServerTest, LastLineWithoutNewlineIsAnsweredThenClosed) {
  Fixture f;
  ASSERT_TRUE(f.ok());
  TestClient client(f.path);
  client.send("status\nstatus");
  client.shutdown_write();
  ASSERT_TRUE(run_until(*f.loop, [&] { return client.closed(); }));
  auto lines = client.lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], kStatusReply);
  EXPECT_EQ(f.server->clients(), 0u);
}

TEST(ControlServerTest, AfterSentRunsOnceTheReplyIsWritten) {
  bool stopped = false;
  std::vector<ControlCommand> commands;
  EpollEventLoop* loop_ptr = nullptr;
  commands.push_back({"stop", [&](std::string_view) {
                        return ControlReply{R"({"ok":true,"stop":"shutting down"})", [&] {
                                              stopped = true;
                                              loop_ptr->stop();
                                            }};
                      }});
  Fixture f({}, std::move(commands));
  ASSERT_TRUE(f.ok());
  loop_ptr = f.loop.get();
  TestClient client(f.path);
  client.send("stop\n");
  f.loop->add_timer(seconds(3), [&] { f.loop->stop(); });  // a watchdog
  ASSERT_TRUE(f.loop->run());
  EXPECT_TRUE(stopped);
  auto lines = client.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], R"({"ok":true,"stop":"shutting down"})");
}

TEST(ControlServerTest, HandlerThatThrowsGetsAnErrorReply) {
  std::vector<ControlCommand> commands;
  commands.push_back(
      {"status", [](std::string_view) -> ControlReply { throw std::runtime_error("boom"); }});
  commands.push_back({"multi", [](std::string_view) { return ControlReply{"{}\n{}", nullptr}; }});
  Fixture f({}, std::move(commands));
  ASSERT_TRUE(f.ok());
  TestClient client(f.path);
  client.send("status\nmulti\n");
  ASSERT_TRUE(run_until(*f.loop, [&] { return client.line_count() == 2; }));
  EXPECT_EQ(error_of(client.lines()[0]), "internal error while answering \"status\": boom");
  EXPECT_EQ(error_of(client.lines()[1]), "internal error: the reply to \"multi\" is not one line");
  EXPECT_EQ(f.server->stats().bad_requests, 2u);
}

TEST(ControlServerTest, SocketIsMode0600) {
  Fixture f;
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(mode_of(f.path), 0600u);
  struct stat st {};
  ASSERT_EQ(::lstat(f.path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
}

TEST(ControlServerTest, SocketWithGroupIsMode0660AndThatGroup) {
  // Another group than ours where we may give files away (root), else our own.
  std::string name = "root";
  if (testing::is_root() && ::getgrnam("daemon") != nullptr) name = "daemon";
  if (!testing::is_root()) {
    group* own = ::getgrgid(::getegid());
    ASSERT_NE(own, nullptr);
    name = own->gr_name;
  }
  group* g = ::getgrnam(name.c_str());
  ASSERT_NE(g, nullptr);
  const gid_t gid = g->gr_gid;
  TempDir dir;
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  std::string path = dir.path() + "/bw0.sock";
  auto server = ControlServer::create(*loop, ControlOptions{path, name, {}}, standard_commands());
  ASSERT_TRUE(server) << server.error().message;
  EXPECT_EQ(mode_of(path), 0660u);
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, gid) << name;
}

TEST(ControlServerTest, UnknownGroupIsAClearErrorAndLeavesNothing) {
  TempDir dir;
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  std::string path = dir.path() + "/bw0.sock";
  auto server = ControlServer::create(*loop, ControlOptions{path, "no-such-group-bw", {}},
                                      standard_commands());
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().message,
            "the control socket's group \"no-such-group-bw\" does not exist ([control] group)");
  EXPECT_FALSE(exists(path));
}

TEST(ControlServerTest, SecondServerOnTheSamePathIsRefused) {
  Fixture f;
  ASSERT_TRUE(f.ok());
  auto second =
      ControlServer::create(*f.loop, ControlOptions{f.path, std::nullopt, {}}, standard_commands());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().sys_errno, EADDRINUSE);
  EXPECT_EQ(second.error().message, "another buckwild is running on " + f.path);
  // The first one is untouched and still answers.
  TestClient client(f.path);
  client.send("status\n");
  ASSERT_TRUE(run_until(*f.loop, [&] { return client.line_count() == 1; }));
  EXPECT_EQ(client.lines()[0], kStatusReply);
}

TEST(ControlServerTest, StaleSocketIsReplaced) {
  TempDir dir;
  std::string path = dir.path() + "/bw0.sock";
  {
    // A socket file left by a process that is gone: bound, never unlinked.
    UniqueFd old(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    ASSERT_EQ(::bind(old.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
  }
  ASSERT_TRUE(exists(path));
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  auto server =
      ControlServer::create(*loop, ControlOptions{path, std::nullopt, {}}, standard_commands());
  ASSERT_TRUE(server) << server.error().message;
  TestClient client(path);
  client.send("status\n");
  ASSERT_TRUE(run_until(*loop, [&] { return client.line_count() == 1; }));
}

TEST(ControlServerTest, SomethingElseAtThePathIsLeftAlone) {
  TempDir dir;
  std::string path = dir.write("bw0.sock", "precious\n");
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  auto server =
      ControlServer::create(*loop, ControlOptions{path, std::nullopt, {}}, standard_commands());
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().sys_errno, EEXIST);
  EXPECT_EQ(testing::read_file(path), "precious\n");
}

TEST(ControlServerTest, DestructorUnlinksOnlyItsOwnSocket) {
  TempDir dir;
  std::string path = dir.path() + "/bw0.sock";
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  {
    auto server =
        ControlServer::create(*loop, ControlOptions{path, std::nullopt, {}}, standard_commands());
    ASSERT_TRUE(server) << server.error().message;
    EXPECT_TRUE(exists(path));
  }
  EXPECT_FALSE(exists(path));

  // A newer daemon took the path over: the older server leaves it alone.
  auto older =
      ControlServer::create(*loop, ControlOptions{path, std::nullopt, {}}, standard_commands());
  ASSERT_TRUE(older) << older.error().message;
  ASSERT_EQ(::unlink(path.c_str()), 0);
  auto newer =
      ControlServer::create(*loop, ControlOptions{path, std::nullopt, {}}, standard_commands());
  ASSERT_TRUE(newer) << newer.error().message;
  older->reset();
  EXPECT_TRUE(exists(path));
  TestClient client(path);
  client.send("status\n");
  ASSERT_TRUE(run_until(*loop, [&] { return client.line_count() == 1; }));
}

TEST(ControlServerTest, DestructorClosesClients) {
  Fixture f;
  ASSERT_TRUE(f.ok());
  TestClient client(f.path);
  ASSERT_TRUE(run_until(*f.loop, [&] { return f.server->clients() == 1; }));
  f.server.reset();
  EXPECT_TRUE(client.closed());
  EXPECT_FALSE(exists(f.path));
}

TEST(ControlServerTest, MissingParentDirectoryIsCreatedButOnlyOneLevel) {
  TempDir dir;
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  std::string parent = dir.path() + "/run";
  std::string path = parent + "/bw0.sock";
  mode_t old_umask = ::umask(077);
  auto server =
      ControlServer::create(*loop, ControlOptions{path, std::nullopt, {}}, standard_commands());
  ::umask(old_umask);
  ASSERT_TRUE(server) << server.error().message;
  EXPECT_EQ(mode_of(parent), 0755u);
  EXPECT_EQ(mode_of(path), 0600u);

  std::string deep = dir.path() + "/a/b/bw0.sock";
  auto refused =
      ControlServer::create(*loop, ControlOptions{deep, std::nullopt, {}}, standard_commands());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().sys_errno, ENOENT);
  EXPECT_NE(refused.error().message.find(dir.path() + "/a/b"), std::string::npos)
      << refused.error().message;
}

TEST(ControlServerTest, PathTooLongIsRefused) {
  auto loop = make_loop();
  ASSERT_TRUE(loop);
  std::string path = "/tmp/" + std::string(120, 'x') + ".sock";
  auto server =
      ControlServer::create(*loop, ControlOptions{path, std::nullopt, {}}, standard_commands());
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().sys_errno, ENAMETOOLONG);
}

TEST(ControlServerTest, ErrorReplyIsValidJsonForAnyMessage) {
  EXPECT_EQ(control_error_reply("plain"), R"({"ok":false,"error":"plain"})");
  auto parsed =
      nlohmann::json::parse(control_error_reply("quote\" nl\n bad\xff\xfe"), nullptr, false);
  ASSERT_FALSE(parsed.is_discarded());
  EXPECT_EQ(parsed["ok"], false);
  EXPECT_EQ(default_control_socket_path("bw0"), "/run/buckwild/bw0.sock");
}

}  // namespace
}  // namespace buckwild::daemon

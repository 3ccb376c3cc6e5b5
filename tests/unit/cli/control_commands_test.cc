#include "cli/control_commands.h"

#include "daemon/control/prometheus.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/control_text.h"
#include "daemon/os/event_loop.h"
#include "support/daemon_test_support.h"

namespace buckwild::cli {
namespace {

using daemon::ControlCommand;
using daemon::ControlReply;
using daemon::testing::TempDir;

Json docs_status() {
  std::ifstream in(std::string(BUCKWILD_SOURCE_DIR) + "/docs/control.md");
  std::string doc((std::istreambuf_iterator<char>(in)), {});
  std::size_t pos = doc.find("```json\n");
  if (pos == std::string::npos) return nullptr;
  pos += 8;
  return Json::parse(doc.substr(pos, doc.find("```", pos) - pos), nullptr, false);
}

std::string ok_status_reply(const Json& status) {
  Json reply;
  reply["ok"] = true;
  reply["status"] = status;
  return reply.dump();
}

// A ControlServer on its own event loop in a thread, as the daemon runs one:
// the command under test blocks in this thread while the server answers. The
// loop stops when a handler's after_sent says so or when this goes away; the
// server is destroyed on its thread (which unlinks the socket, as at exit).
class ServerThread {
 public:
  ServerThread(std::string path, std::vector<ControlCommand> commands) {
    auto loop = daemon::EpollEventLoop::create();
    if (!loop) {
      ADD_FAILURE() << loop.error().message;
      return;
    }
    loop_ = std::move(*loop);
    auto server = daemon::ControlServer::create(
        *loop_, daemon::ControlOptions{std::move(path), std::nullopt, {}}, std::move(commands));
    if (!server) {
      ADD_FAILURE() << server.error().message;
      return;
    }
    server_ = std::move(*server);
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) std::abort();
    wake_read_.reset(fds[0]);
    wake_write_.reset(fds[1]);
    (void)loop_->watch_fd(wake_read_.get(), daemon::kReadable,
                          [this](std::uint32_t) { loop_->stop(); });
    thread_ = std::thread([this] {
      (void)loop_->run();
      server_.reset();
      loop_->unwatch_fd(wake_read_.get());
    });
  }
  ~ServerThread() {
    if (thread_.joinable()) {
      (void)!::write(wake_write_.get(), "x", 1);
      thread_.join();
    }
  }
  bool ok() const { return thread_.joinable(); }
  daemon::EventLoop& loop() { return *loop_; }

 private:
  std::unique_ptr<daemon::EpollEventLoop> loop_;
  std::unique_ptr<daemon::ControlServer> server_;
  daemon::UniqueFd wake_read_;
  daemon::UniqueFd wake_write_;
  std::thread thread_;
};

std::vector<ControlCommand> answering_status(std::string reply) {
  std::vector<ControlCommand> commands;
  commands.push_back({"status", [reply](std::string_view) {
                        return ControlReply{reply, nullptr};
                      }});
  return commands;
}

struct Output {
  std::ostringstream out;
  std::ostringstream err;
};

ControlTarget in_dir(const TempDir& dir, std::string device = "") {
  ControlTarget t;
  t.socket_dir = dir.path();
  t.device = std::move(device);
  t.timeout = seconds(5);
  return t;
}

TEST(ControlCommandsTest, StatusOfOneDeviceAsTextAndJson) {
  Json status = docs_status();
  ASSERT_TRUE(status.is_object());
  TempDir dir;
  ServerThread server(dir.path() + "/bw0.sock", answering_status(ok_status_reply(status)));
  ASSERT_TRUE(server.ok());

  Output text;
  EXPECT_EQ(cli::status(in_dir(dir, "bw0"), cli::StatusFormat::kText, false, text.out, text.err), kExitOk)
      << text.err.str();
  EXPECT_EQ(text.out.str(), render_status(status));
  EXPECT_EQ(text.err.str(), "");

  Output json;
  EXPECT_EQ(cli::status(in_dir(dir, "bw0"), cli::StatusFormat::kJson, false, json.out, json.err), kExitOk)
      << json.err.str();
  // The object itself, in the daemon's field order.
  EXPECT_EQ(json.out.str(), status.dump(2) + "\n");

  // --socket names the same socket.
  Output by_path;
  ControlTarget t = in_dir(dir);
  t.socket = dir.path() + "/bw0.sock";
  EXPECT_EQ(cli::status(t, cli::StatusFormat::kJson, false, by_path.out, by_path.err), kExitOk);
  EXPECT_EQ(by_path.out.str(), json.out.str());
}

TEST(ControlCommandsTest, StatusOfEveryTunnelIsSortedAndJsonIsAnArray) {
  Json status = docs_status();
  ASSERT_TRUE(status.is_object());
  Json second = status;
  second["device"] = "bw1";
  TempDir dir;
  // Started in the other order: the output is sorted by socket name.
  ServerThread b(dir.path() + "/bw1.sock", answering_status(ok_status_reply(second)));
  ServerThread a(dir.path() + "/bw0.sock", answering_status(ok_status_reply(status)));
  dir.write("notes.txt", "not a socket\n");
  dir.write("fake.sock", "a file, not a socket\n");
  ASSERT_TRUE(a.ok() && b.ok());

  Output text;
  EXPECT_EQ(cli::status(in_dir(dir), cli::StatusFormat::kText, false, text.out, text.err), kExitOk) << text.err.str();
  EXPECT_EQ(text.out.str(), render_status(status) + "\n" + render_status(second));

  Output json;
  EXPECT_EQ(cli::status(in_dir(dir), cli::StatusFormat::kJson, false, json.out, json.err), kExitOk);
  EXPECT_EQ(json.out.str(), Json::array({status, second}).dump(2) + "\n");
}

TEST(ControlCommandsTest, StatusInThePrometheusFormatIsEveryTunnelsRendering) {
  Json status = docs_status();
  Json second = status;
  second["device"] = "bw1";
  TempDir dir;
  ServerThread a(dir.path() + "/bw0.sock", answering_status(ok_status_reply(status)));
  ServerThread b(dir.path() + "/bw1.sock", answering_status(ok_status_reply(second)));
  ASSERT_TRUE(a.ok() && b.ok());
  Output prom;
  EXPECT_EQ(cli::status(in_dir(dir), cli::StatusFormat::kPrometheus, false, prom.out, prom.err), kExitOk)
      << prom.err.str();
  const std::vector<nlohmann::json> both = {nlohmann::json::parse(status.dump()),
                                            nlohmann::json::parse(second.dump())};
  EXPECT_EQ(prom.out.str(), daemon::render_prometheus(both));
  EXPECT_NE(prom.out.str().find("device=\"bw1\""), std::string::npos);
}

TEST(ControlCommandsTest, StatusWithOneTunnelAndNoDeviceIsStillAnArray) {
  Json status = docs_status();
  TempDir dir;
  ServerThread a(dir.path() + "/bw0.sock", answering_status(ok_status_reply(status)));
  ASSERT_TRUE(a.ok());
  Output json;
  EXPECT_EQ(cli::status(in_dir(dir), cli::StatusFormat::kJson, false, json.out, json.err), kExitOk);
  Json printed = Json::parse(json.out.str(), nullptr, false);
  ASSERT_TRUE(printed.is_array());
  ASSERT_EQ(printed.size(), 1u);
  EXPECT_EQ(printed[0], status);
}

TEST(ControlCommandsTest, NoTunnelRunning) {
  TempDir dir;
  Output o;
  EXPECT_EQ(cli::status(in_dir(dir), cli::StatusFormat::kText, false, o.out, o.err), kExitFailure);
  EXPECT_EQ(o.err.str(),
            "buckwild status: no buckwild tunnel is running (no sockets in " + dir.path() + ")\n");
  EXPECT_EQ(o.out.str(), "");
  ControlTarget missing = in_dir(dir);
  missing.socket_dir = dir.path() + "/nowhere";
  Output m;
  EXPECT_EQ(cli::reload(missing, m.out, m.err), kExitFailure);
  EXPECT_EQ(m.err.str(), "buckwild reload: no buckwild tunnel is running (no sockets in " +
                             dir.path() + "/nowhere)\n");
}

TEST(ControlCommandsTest, ConnectionErrorsSayWhatToDo) {
  TempDir dir;
  Output o;
  EXPECT_EQ(cli::status(in_dir(dir, "bw0"), cli::StatusFormat::kText, false, o.out, o.err), kExitFailure);
  EXPECT_EQ(o.err.str(),
            "buckwild status: cannot connect to " + dir.path() +
                "/bw0.sock: No such file or directory (is buckwild running for bw0?)\n");

  // A socket left by a daemon that is gone.
  {
    daemon::UniqueFd old(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path = dir.path() + "/bw0.sock";
    std::memcpy(addr.sun_path, path.data(), path.size());
    ASSERT_EQ(::bind(old.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
  }
  Output refused;
  EXPECT_EQ(cli::stop(in_dir(dir, "bw0"), refused.out, refused.err), kExitFailure);
  EXPECT_EQ(refused.err.str(),
            "buckwild stop: cannot connect to " + dir.path() +
                "/bw0.sock: Connection refused (is buckwild running for bw0?)\n");
  EXPECT_EQ(refused.out.str(), "");

  // Root is never refused by the mode, so the hint is checked on its own.
  EXPECT_EQ(connect_hint(EACCES, "bw0"), " (run as root or as a member of the socket's group)");
  EXPECT_EQ(connect_hint(EIO, "bw0"), "");

  Output bad_name;
  EXPECT_EQ(cli::status(in_dir(dir, "../etc"), cli::StatusFormat::kText, false, bad_name.out, bad_name.err),
            kExitFailure);
  EXPECT_EQ(bad_name.err.str(),
            "buckwild status: \"../etc\" is not a device name (give --socket PATH for a path)\n");
}

TEST(ControlCommandsTest, SilentDaemonTimesOutAndTheOthersAreStillShown) {
  Json status = docs_status();
  TempDir dir;
  ServerThread a(dir.path() + "/bw0.sock", answering_status(ok_status_reply(status)));
  ASSERT_TRUE(a.ok());
  // bw1 listens but never answers (a hung daemon).
  daemon::UniqueFd hung(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = dir.path() + "/bw1.sock";
  std::memcpy(addr.sun_path, path.data(), path.size());
  ASSERT_EQ(::bind(hung.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(hung.get(), 4), 0);

  ControlTarget t = in_dir(dir);
  t.timeout = milliseconds(200);
  Output o;
  EXPECT_EQ(cli::status(t, cli::StatusFormat::kText, false, o.out, o.err), kExitFailure);
  EXPECT_EQ(o.out.str(), render_status(status));
  EXPECT_EQ(o.err.str(), "buckwild status: " + path + ": no reply within 200 ms\n");
}

TEST(ControlCommandsTest, ErrorAndMalformedReplies) {
  TempDir dir;
  std::vector<ControlCommand> commands = answering_status(R"({"ok":false,"error":"busy"})");
  commands.push_back({"reload", [](std::string_view) { return ControlReply{"[1,2]", nullptr}; }});
  commands.push_back({"stop", [](std::string_view) {
                        return ControlReply{"this is not json", nullptr};
                      }});
  ServerThread a(dir.path() + "/bw0.sock", std::move(commands));
  ASSERT_TRUE(a.ok());
  Output s;
  EXPECT_EQ(cli::status(in_dir(dir, "bw0"), cli::StatusFormat::kText, false, s.out, s.err), kExitFailure);
  EXPECT_EQ(s.err.str(), "buckwild status: bw0: busy\n");
  Output r;
  EXPECT_EQ(cli::reload(in_dir(dir, "bw0"), r.out, r.err), kExitFailure);
  EXPECT_EQ(r.err.str(), "buckwild reload: " + dir.path() +
                             "/bw0.sock: the reply is not a JSON object: [1,2]\n");
  Output st;
  EXPECT_EQ(cli::stop(in_dir(dir, "bw0"), st.out, st.err), kExitFailure);
  EXPECT_EQ(st.out.str(), "");
}

TEST(ControlCommandsTest, ReloadPrintsTheSummary) {
  TempDir dir;
  std::vector<ControlCommand> commands;
  commands.push_back({"reload", [](std::string_view) {
                        return ControlReply{
                            R"({"ok":true,"reload":{"peers_added":["carol"],"peers_removed":[],)"
                            R"("peers_changed":[],"psks_added":[],"psks_removed":[],)"
                            R"("psks_changed":[],"settings_changed":)"
                            R"(["security.max_connections_per_source"],"sessions_ended":0}})",
                            nullptr};
                      }});
  ServerThread a(dir.path() + "/bw0.sock", std::move(commands));
  ASSERT_TRUE(a.ok());
  Output o;
  // No DEVICE: the one tunnel running.
  EXPECT_EQ(cli::reload(in_dir(dir), o.out, o.err), kExitOk) << o.err.str();
  EXPECT_EQ(o.out.str(),
            "reloaded: peers added carol; settings changed security.max_connections_per_source; 0 "
            "sessions ended\n");
  EXPECT_EQ(o.err.str(), "");
}

TEST(ControlCommandsTest, RefusedReloadPrintsEveryProblemAndFails) {
  TempDir dir;
  std::vector<ControlCommand> commands;
  commands.push_back(
      {"reload", [](std::string_view) {
         return ControlReply{
             R"({"ok":false,"error":"the configuration has problems; nothing changed",)"
             R"("problems":["/etc/buckwild/buckwild.toml:3:7: network.mtu: must be 576..9000",)"
             R"("/etc/buckwild/buckwild.toml:9:1: network.virtual_device cannot change while )"
             R"(running; restart buckwild to change it"]})",
             nullptr};
       }});
  ServerThread a(dir.path() + "/bw0.sock", std::move(commands));
  ASSERT_TRUE(a.ok());
  Output o;
  EXPECT_EQ(cli::reload(in_dir(dir, "bw0"), o.out, o.err), kExitFailure);
  EXPECT_EQ(o.out.str(), "");
  EXPECT_EQ(o.err.str(),
            "buckwild reload: bw0: the configuration has problems; nothing changed\n"
            "/etc/buckwild/buckwild.toml:3:7: network.mtu: must be 576..9000\n"
            "/etc/buckwild/buckwild.toml:9:1: network.virtual_device cannot change while running; "
            "restart "
            "buckwild to change it\n");
}

TEST(ControlCommandsTest, ReloadAndStopNeedOneTunnelWhenSeveralRun) {
  TempDir dir;
  ServerThread a(dir.path() + "/bw0.sock", answering_status("{}"));
  ServerThread b(dir.path() + "/bw1.sock", answering_status("{}"));
  ASSERT_TRUE(a.ok() && b.ok());
  Output r;
  EXPECT_EQ(cli::reload(in_dir(dir), r.out, r.err), kExitFailure);
  EXPECT_EQ(r.err.str(),
            "buckwild reload: several buckwild tunnels are running (bw0, bw1); name one: buckwild "
            "reload bw0\n");
  Output s;
  EXPECT_EQ(cli::stop(in_dir(dir), s.out, s.err), kExitFailure);
  EXPECT_EQ(s.err.str(),
            "buckwild stop: several buckwild tunnels are running (bw0, bw1); name one: buckwild "
            "stop bw0\n");
}

TEST(ControlCommandsTest, StopWaitsUntilTheDaemonHasGone) {
  TempDir dir;
  std::string path = dir.path() + "/bw0.sock";
  std::atomic<bool> stopped{false};
  ServerThread* self = nullptr;
  std::vector<ControlCommand> commands;
  commands.push_back({"stop", [&](std::string_view) {
                        // The daemon stops its loop once the reply has left, then
                        // removes the socket on the way out (ServerThread does so).
                        return ControlReply{R"({"ok":true,"stop":"shutting down"})", [&] {
                                              stopped = true;
                                              self->loop().stop();
                                            }};
                      }});
  ServerThread a(path, std::move(commands));
  self = &a;
  ASSERT_TRUE(a.ok());
  Output o;
  EXPECT_EQ(cli::stop(in_dir(dir, "bw0"), o.out, o.err), kExitOk) << o.err.str();
  EXPECT_EQ(o.out.str(), "bw0: stopping\n");
  EXPECT_EQ(o.err.str(), "");
  EXPECT_TRUE(stopped);
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(ControlCommandsTest, StopSaysSoWhenTheDaemonDoesNotExit) {
  TempDir dir;
  std::string path = dir.path() + "/bw0.sock";
  std::vector<ControlCommand> commands;
  commands.push_back({"stop", [](std::string_view) {
                        return ControlReply{R"({"ok":true,"stop":"shutting down"})", nullptr};
                      }});
  ServerThread a(path, std::move(commands));
  ASSERT_TRUE(a.ok());
  Output o;
  EXPECT_EQ(cli::stop(in_dir(dir, "bw0"), o.out, o.err, milliseconds(200)), kExitFailure);
  EXPECT_EQ(o.out.str(), "bw0: stopping\n");
  EXPECT_EQ(o.err.str(),
            "buckwild stop: bw0: still running after 200 ms (" + path + " is still there)\n");
}

TEST(ControlCommandsTest, SocketListing) {
  TempDir dir;
  EXPECT_TRUE(list_control_sockets(dir.path() + "/missing").empty());
  ServerThread b(dir.path() + "/b.sock", answering_status("{}"));
  ServerThread a(dir.path() + "/a.sock", answering_status("{}"));
  dir.write("c.sock", "");
  EXPECT_EQ(list_control_sockets(dir.path()),
            (std::vector<std::string>{dir.path() + "/a.sock", dir.path() + "/b.sock"}));
  EXPECT_EQ(device_of_socket("/run/buckwild/bw0.sock"), "bw0");
  EXPECT_EQ(device_of_socket("bw0.sock"), "bw0");
  EXPECT_EQ(device_of_socket("/tmp/control"), "control");
}

}  // namespace
}  // namespace buckwild::cli

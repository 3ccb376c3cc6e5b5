// The subagent without a master: it starts, says it cannot reach one, keeps
// the loop free and stops promptly. tests/e2e/snmp.sh runs it against a real
// snmpd (walks, a restart of snmpd, traps).
#include "daemon/snmp/snmp_agent.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "daemon/os/event_loop.h"

namespace buckwild::daemon::snmp {
namespace {

TEST(SnmpAgentTest, WithoutAMasterItKeepsTryingAndStopsPromptly) {
  auto loop = EpollEventLoop::create();
  ASSERT_TRUE(loop) << loop.error().message;
  char dir[] = "/tmp/buckwild-snmp-test.XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  SnmpAgentOptions options;
  options.agentx_socket = std::string(dir) + "/master";  // nobody listens
  options.ping_interval_seconds = 1;
  std::vector<std::string> messages;
  int snapshots = 0;
  auto agent = SnmpAgent::start(
      **loop, options,
      [&] {
        ++snapshots;
        return nlohmann::json::object();
      },
      [&](bool, const std::string& m) { messages.push_back(m); },
      [](const SnmpWrite&) { return SnmpWriteResult{}; });
  ASSERT_TRUE(agent) << agent.error().message;
  // Notifications without a master: handed to net-snmp (which has nowhere
  // to send them) or counted as dropped, never blocking the loop.
  for (int i = 0; i < 3; ++i) {
    SnmpNotification n;
    n.kind = Notification::kSessionDown;
    n.peer = "bob";
    n.reason = "peer stopped answering";
    (*agent)->notify(std::move(n));
  }

  // One process, one subagent: net-snmp's state is global.
  auto second = SnmpAgent::start(
      **loop, options, [] { return nlohmann::json(); }, [](bool, const std::string&) {},
      [](const SnmpWrite&) { return SnmpWriteResult{}; });
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("running already"), std::string::npos);

  // The loop runs its timers on time while the agent fails to connect.
  int ticks = 0;
  const TimerId tick = (*loop)->add_periodic_timer(milliseconds(50), [&] { ++ticks; });
  (*loop)->add_timer(milliseconds(1500), [&] { (*loop)->stop(); });
  ASSERT_TRUE((*loop)->run());
  (*loop)->cancel_timer(tick);
  EXPECT_GE(ticks, 25);
  EXPECT_EQ(snapshots, 0);  // nobody asked
  const SnmpAgentStats stats = (*agent)->stats();
  EXPECT_EQ(stats.notifications_sent + stats.notifications_dropped, 3u);

  const auto t0 = std::chrono::steady_clock::now();
  agent->reset();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, std::chrono::milliseconds(1500));
  bool said_why = false;
  for (const std::string& m : messages) {
    said_why = said_why || m.find("agentx master agent") != std::string::npos;
  }
  EXPECT_TRUE(said_why) << (messages.empty() ? "no messages" : messages.front());
  ::rmdir(dir);
}

}  // namespace
}  // namespace buckwild::daemon::snmp

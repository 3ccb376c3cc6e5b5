#include "cli/control_text.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace buckwild::cli {
namespace {

// The n-th ```json block of docs/control.md: the contract's own examples
// (0: the status object, 1: the reload reply).
Json docs_example(int n) {
  std::ifstream in(std::string(BUCKWILD_SOURCE_DIR) + "/docs/control.md");
  std::string doc((std::istreambuf_iterator<char>(in)), {});
  std::size_t pos = 0;
  for (int i = 0; i <= n; ++i) {
    pos = doc.find("```json\n", pos);
    if (pos == std::string::npos) return nullptr;
    pos += 8;
  }
  std::size_t end = doc.find("```", pos);
  return Json::parse(doc.substr(pos, end - pos), nullptr, false);
}

constexpr std::string_view kExampleText = R"(interface: bw0
  pid: 4242
  version: 0.1.0 (protocol v1)
  config file: /etc/buckwild/buckwild.toml
  uptime: 1 minute, 13 seconds
  reloads: 1 applied, 0 refused
  receive path: ebpf (xdp-generic on veth-a)
  listening on: 0.0.0.0, discovery port 1025
  window: 7086529130 (113 ms left of 250 ms)
  listening ports: 1025, 40211, 51873, 60222
  tcp mode: stream
  sessions: 1 established, 0 lost
  packets: 10 from the interface, 12 to it; 30 datagrams sent, 31 received
  discovery: responses 1, sessions 1
  stream: 0 flows, 0 B buffered, 0 B up, 0 B down
  ebpf: 6 valid ports (292 updates); xdp: pass 31; socket: pass 31
  time: ntp, 2 of 3 servers selected, correction -3000.4 ms, last sync 5 seconds ago
  time warning: the system clock is 3000.4 ms from our time (threshold 100 ms)
  ntp server 10.123.1.1:123: selected, offset 0.02 ms, delay 0.11 ms, poll 16 s
  ntp server 10.123.2.1:123: selected, offset -0.01 ms, delay 0.1 ms, poll 16 s
  ntp server 10.123.3.1:123: rejected, offset 10000.03 ms, delay 0.12 ms, poll 16 s

peer: bob
  endpoint: 192.0.2.2:1025
  virtual addresses: 10.99.0.2
  psk: main
  state: established, cause session_established
  session: 9f3c01a2 (initiator)
  established: 1 minute, 10 seconds ago
  last packet received: 180 ms ago
  ports: window 7086529130, sending to 51873, listening on 40211, 51873, 60222
  delay allowance: 1 window
  path MTU: 1400 (complete)
  clock offset: 0 ms
  time sync: 7 measurements, 0 resyncs, rtt 1 ms
  one-way delay: 1 ms
  rtt: 0.4 ms
  transfer: 4.02 KiB received, 3.89 KiB sent (31 packets received, 30 sent)
  rejected: 0 packets
  heartbeats: 2 sent, 2 received
  connections: 0 (0 retransmissions)
)";

TEST(ControlTextTest, DocsExampleRendersLikeWgShow) {
  Json status = docs_example(0);
  ASSERT_TRUE(status.is_object()) << "docs/control.md's status example is not a JSON object";
  EXPECT_EQ(render_status(status), kExampleText);
}

TEST(ControlTextTest, DocsShowTheRenderingOfTheirExample) {
  std::ifstream in(std::string(BUCKWILD_SOURCE_DIR) + "/docs/control.md");
  std::string doc((std::istreambuf_iterator<char>(in)), {});
  std::size_t start = doc.find("```\ninterface: ");
  ASSERT_NE(start, std::string::npos) << "docs/control.md shows no `buckwild status` output";
  start += 4;
  std::size_t end = doc.find("```", start);
  EXPECT_EQ(doc.substr(start, end - start), render_status(docs_example(0)));
}

TEST(ControlTextTest, NonZeroDropsAndUserspacePathAndPeersWithoutSessions) {
  Json status = docs_example(0);
  ASSERT_TRUE(status.is_object());
  status["drops"]["no_route"] = 3;
  status["drops"]["spoofed_source"] = 1;
  status["receive_path"] = Json{{"kind", "userspace"}, {"detail", nullptr}, {"why", "no CAP_BPF"}};
  status["ebpf"] = nullptr;
  status["stream"]["refused"] = 2;
  status["stream"]["memory_charged_bytes"] = 3u << 20;
  Json bob = status["peers"][0];
  Json carol = bob;
  carol["name"] = "carol";
  carol["endpoint_configured"] = "192.0.2.3:1025";
  carol["session"] = nullptr;
  carol["state"]["state"] = "connecting";
  carol["state"]["cause"] = "attempt_failed";
  carol["state"]["attempts"] = 2;
  Json stranger = bob;
  stranger["name"] = "10.99.0.9";
  stranger["configured"] = false;
  stranger["endpoint_configured"] = nullptr;
  stranger["psk"] = nullptr;
  stranger["virtual_addresses"] = Json::array({"10.99.0.9"});
  stranger["session"]["endpoint"] = "198.51.100.7:40000";
  stranger["session"]["rtt_ms"] = nullptr;
  stranger["session"]["rx_bytes"] = 5u << 20;
  bob["session"]["endpoint"] = "198.51.100.1:1025";  // roamed
  status["peers"] = Json::array({bob, carol, stranger});

  std::string text = render_status(status);
  EXPECT_NE(text.find("\n  drops: no route 3, spoofed source 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n  receive path: userspace (no CAP_BPF)\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("ebpf:"), std::string::npos) << text;
  EXPECT_NE(text.find("\n  stream: 0 flows, 0 B buffered, 0 B up, 0 B down, 3.00 MiB of the 512.00 MiB "
                      "memory budget; refused 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\npeer: bob\n  endpoint: 198.51.100.1:1025 (configured 192.0.2.2:1025)\n"),
            std::string::npos)
      << text;
  EXPECT_NE(
      text.find("\npeer: carol\n  endpoint: 192.0.2.3:1025 (configured)\n  virtual addresses: "
                "10.99.0.2\n  psk: main\n  state: connecting, attempt 2, cause attempt_failed\n  no session\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("\npeer: 10.99.0.9 (not configured)\n  endpoint: 198.51.100.7:40000\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  transfer: 5.00 MiB received"), std::string::npos) << text;
  // rtt null: left out for that peer only.
  std::size_t stranger_at = text.find("peer: 10.99.0.9");
  EXPECT_EQ(text.find("rtt:", stranger_at), std::string::npos);
}

TEST(ControlTextTest, AStreamConnectionGetsALineLikeSsTi) {
  Json status = docs_example(0);
  ASSERT_TRUE(status.is_object());
  Json& session = status["peers"][0]["session"];
  session["connections"] = 1;
  session["stream_connections"] = Json::array({Json{
      {"id", 19}, {"side", "client"}, {"application", "10.77.0.1:40112"},
      {"target", "10.77.0.2:5201"}, {"state", "ESTABLISHED"}, {"congestion_control", "bbr"},
      {"cwnd_bytes", 2'800'000}, {"pacing_bytes_per_second", 62'500'000}, {"bytes_in_flight", 1'100'000},
      {"srtt_ms", 20.7}, {"retransmissions", 1024}}});
  const std::string text = render_status(status);
  EXPECT_NE(text.find("  connection 19: ESTABLISHED, client 10.77.0.1:40112 -> 10.77.0.2:5201, "
                      "cwnd 2.67 MiB, 1.05 MiB in flight, pacing 500.0 Mbit/s, srtt 20.7 ms, "
                      "1024 retransmissions\n"),
            std::string::npos)
      << text;
}

TEST(ControlTextTest, ColorOnlyWhenAsked) {
  Json status = docs_example(0);
  std::string plain = render_status(status, false);
  std::string colored = render_status(status, true);
  EXPECT_EQ(plain.find('\x1b'), std::string::npos);
  EXPECT_TRUE(colored.starts_with("\x1b[1;32minterface\x1b[0m: bw0\n")) << colored;
  EXPECT_NE(colored.find("\x1b[1;33mpeer\x1b[0m: bob\n"), std::string::npos);
  EXPECT_NE(colored.find("  \x1b[1mpid\x1b[0m: 4242\n"), std::string::npos);
}

// Every leaf of the example replaced by values of every other shape: the
// rendering never throws and always names the interface line.
TEST(ControlTextTest, AnyFieldOfAnyShapeNeverBreaksTheRendering) {
  const Json example = docs_example(0);
  ASSERT_TRUE(example.is_object());
  const std::vector<Json> odd = {nullptr,
                                 "text",
                                 -1,
                                 1e300,
                                 -1e300,
                                 0.5,
                                 true,
                                 Json::array(),
                                 Json::object(),
                                 Json::array({nullptr, Json::object()}),
                                 std::uint64_t{UINT64_MAX}};
  std::vector<Json::json_pointer> leaves;
  std::function<void(const Json&, const Json::json_pointer&)> walk =
      [&](const Json& j, const Json::json_pointer& at) {
        leaves.push_back(at);
        if (j.is_object()) {
          for (const auto& [k, v] : j.items()) walk(v, at / k);
        } else if (j.is_array()) {
          for (std::size_t i = 0; i < j.size(); ++i) walk(j[i], at / i);
        }
      };
  walk(example, Json::json_pointer());
  ASSERT_GT(leaves.size(), 100u);
  std::size_t renders = 0;
  for (const auto& at : leaves) {
    for (const auto& value : odd) {
      Json mutated = example;
      if (at.empty()) {
        mutated = value;
      } else {
        mutated[at] = value;
      }
      std::string text;
      ASSERT_NO_THROW(text = render_status(mutated)) << at.to_string();
      EXPECT_TRUE(text.starts_with("interface: ")) << at.to_string();
      ++renders;
    }
  }
  EXPECT_EQ(renders, leaves.size() * odd.size());
}

TEST(ControlTextTest, ReloadSummaries) {
  Json reply = docs_example(1);
  ASSERT_TRUE(reply.is_object());
  EXPECT_EQ(render_reload(reply["reload"]),
            "reloaded: peers added carol; settings changed security.max_connections_per_source; 0 "
            "sessions ended");
  Json nothing = reply["reload"];
  nothing["peers_added"] = Json::array();
  nothing["settings_changed"] = Json::array();
  EXPECT_EQ(render_reload(nothing), "reloaded: nothing changed");
  Json ended = nothing;
  ended["sessions_ended"] = 1;
  EXPECT_EQ(render_reload(ended), "reloaded: 1 session ended");
  Json many = nothing;
  many["peers_removed"] = Json::array({"bob", "dave"});
  many["psks_changed"] = Json::array({"main"});
  many["sessions_ended"] = 2;
  EXPECT_EQ(render_reload(many),
            "reloaded: peers removed bob, dave; PSKs changed main; 2 sessions ended");
  EXPECT_EQ(render_reload(Json::object()), "reloaded: nothing changed");
  EXPECT_EQ(render_reload(Json("garbage")), "reloaded: nothing changed");
}

TEST(ControlTextTest, HumanUnits) {
  EXPECT_EQ(human_duration(0), "0 ms");
  EXPECT_EQ(human_duration(180), "180 ms");
  EXPECT_EQ(human_duration(999.6), "1000 ms");
  EXPECT_EQ(human_duration(1000), "1 second");
  EXPECT_EQ(human_duration(70110), "1 minute, 10 seconds");
  EXPECT_EQ(human_duration(3600 * 1000), "1 hour");
  EXPECT_EQ(human_duration((2 * 86400 + 3 * 3600 + 1) * 1000.0), "2 days, 3 hours, 1 second");
  EXPECT_EQ(human_duration(-5), "0 ms");
  EXPECT_EQ(human_duration(1e300), "11574074 days, 1 hour, 46 minutes, 40 seconds");
  EXPECT_EQ(human_bytes(0), "0 B");
  EXPECT_EQ(human_bytes(1023), "1023 B");
  EXPECT_EQ(human_bytes(4113), "4.02 KiB");
  EXPECT_EQ(human_bytes(3980), "3.89 KiB");
  EXPECT_EQ(human_bytes(5u << 20), "5.00 MiB");
  EXPECT_EQ(human_bytes(UINT64_MAX), "16.00 EiB");
  EXPECT_EQ(human_ms(0.4), "0.4 ms");
  EXPECT_EQ(human_ms(12), "12 ms");
  EXPECT_EQ(human_ms(-3.25), "-3.25 ms");
  EXPECT_EQ(human_ms(-0.001), "0 ms");
}

}  // namespace
}  // namespace buckwild::cli

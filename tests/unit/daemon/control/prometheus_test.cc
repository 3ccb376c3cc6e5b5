#include "daemon/control/prometheus.h"

#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace buckwild::daemon {
namespace {

using Json = nlohmann::json;

// The repository (not found from __FILE__: a compiler cache may make it relative).
std::filesystem::path source_root() { return BUCKWILD_SOURCE_DIR; }

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The status example in docs/control.md: the contract the exporter is
// written against, so the test follows the document.
Json docs_example() {
  const std::string doc = read_file(source_root() / "docs" / "control.md");
  const std::size_t section = doc.find("## `status`");
  const std::size_t start = doc.find("```json\n", section);
  const std::size_t end = doc.find("```", start + 8);
  if (section == std::string::npos || start == std::string::npos || end == std::string::npos) {
    ADD_FAILURE() << "no status example in docs/control.md";
    return Json::object();
  }
  return Json::parse(doc.substr(start + 8, end - start - 8));
}

std::string render_one(const Json& doc) {
  return render_prometheus(std::span(&doc, 1));
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const std::string& l : lines_of(text)) {
    if (l == line) return true;
  }
  return false;
}

std::size_t count_prefix(const std::string& text, const std::string& prefix) {
  std::size_t n = 0;
  for (const std::string& l : lines_of(text)) n += l.starts_with(prefix) ? 1 : 0;
  return n;
}

// The exposition's shape: every family has HELP then TYPE once, before its
// samples, which are contiguous and carry its name; counters end in _total.
void expect_well_formed(const std::string& text) {
  std::set<std::string> families;
  std::string current;
  std::string current_type;
  std::set<std::string> series;
  bool want_type = false;
  for (const std::string& line : lines_of(text)) {
    ASSERT_FALSE(line.empty()) << "empty line in\n" << text;
    if (line.starts_with("# HELP ")) {
      ASSERT_FALSE(want_type) << line;
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      ASSERT_TRUE(families.insert(name).second) << "family twice: " << name;
      ASSERT_TRUE(name.starts_with("buckwild_")) << name;
      current = name;
      want_type = true;
    } else if (line.starts_with("# TYPE ")) {
      ASSERT_TRUE(want_type) << line;
      want_type = false;
      std::istringstream in(line.substr(7));
      std::string name;
      in >> name >> current_type;
      ASSERT_EQ(name, current);
      ASSERT_TRUE(current_type == "counter" || current_type == "gauge") << line;
      ASSERT_EQ(current_type == "counter", name.ends_with("_total")) << line;
    } else {
      ASSERT_FALSE(want_type) << line;
      ASSERT_FALSE(current.empty()) << "sample before any family: " << line;
      const std::size_t end = line.find_first_of("{ ");
      ASSERT_EQ(line.substr(0, end), current) << line;
      const std::size_t value_at = line.rfind(' ');
      ASSERT_TRUE(series.insert(line.substr(0, value_at)).second) << "series twice: " << line;
      ASSERT_NE(line.find("device=\""), std::string::npos) << line;
    }
  }
}

TEST(PrometheusTest, DocsExampleHasEveryFamily) {
  const std::string text = render_one(docs_example());
  expect_well_formed(text);

  EXPECT_TRUE(has_line(text, "# TYPE buckwild_build_info gauge"));
  EXPECT_TRUE(
      has_line(text, R"(buckwild_build_info{device="bw0",version="0.1.0",protocol="1"} 1)"));
  EXPECT_TRUE(has_line(
      text, R"(buckwild_tunnel_info{device="bw0",receive_path="ebpf",tcp_mode="stream"} 1)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_uptime_seconds{device="bw0"} 73.021)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_reloads_total{device="bw0",result="applied"} 1)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_reloads_total{device="bw0",result="refused"} 0)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_hop_interval_seconds{device="bw0"} 0.25)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_hop_window{device="bw0"} 7086529130)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_listening_ports{device="bw0"} 4)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_tun_packets_total{device="bw0",direction="in"} 10)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_tun_packets_total{device="bw0",direction="out"} 12)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_datagrams_total{device="bw0",direction="sent"} 30)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_datagrams_total{device="bw0",direction="received"} 31)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_sessions_established_total{device="bw0"} 1)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_sessions_lost_total{device="bw0"} 0)"));
  EXPECT_TRUE(
      has_line(text, R"(buckwild_rekey_recoveries_total{device="bw0",outcome="recovered"} 0)"));
  EXPECT_TRUE(
      has_line(text, R"(buckwild_rekey_recoveries_total{device="bw0",outcome="exhausted"} 0)"));
  // Every drop reason of the document, named by its key.
  EXPECT_EQ(count_prefix(text, "buckwild_drops_total{"), docs_example()["drops"].size());
  EXPECT_TRUE(
      has_line(text, R"(buckwild_drops_total{device="bw0",reason="hop_port_bind_failures"} 0)"));
  EXPECT_EQ(count_prefix(text, "buckwild_tun_offload_total{"), docs_example()["tun_offload"].size());
  EXPECT_TRUE(
      has_line(text, R"(buckwild_tun_offload_total{device="bw0",event="passed_through"} 0)"));
  // Its two states ("gso", "gro") are words, not counts.
  EXPECT_EQ(count_prefix(text, "buckwild_udp_offload_total{"),
            docs_example()["udp_offload"].size() - 2);
  EXPECT_TRUE(has_line(text, R"(buckwild_udp_offload_total{device="bw0",event="gso_sends"} 0)"));
  EXPECT_EQ(text.find("event=\"gso\""), std::string::npos);
  EXPECT_TRUE(has_line(text, R"(buckwild_discovery_responses_total{device="bw0"} 1)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_discovery_sessions_total{device="bw0"} 1)"));
  EXPECT_EQ(count_prefix(text, "buckwild_discovery_drops_total{"),
            docs_example()["discovery"].size() - 2);
  EXPECT_TRUE(
      has_line(text, R"(buckwild_discovery_drops_total{device="bw0",reason="bad_proof"} 0)"));
  EXPECT_EQ(text.find("reason=\"responses\""), std::string::npos);
  EXPECT_TRUE(has_line(text, R"(buckwild_stream_flows{device="bw0"} 0)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_stream_buffered_bytes{device="bw0"} 0)"));
  for (const char* family : {"opened", "accepted", "refused", "reset", "completed"}) {
    EXPECT_EQ(count_prefix(text, std::string("buckwild_stream_flows_") + family + "_total{"), 1u)
        << family;
  }
  EXPECT_TRUE(has_line(text, R"(buckwild_stream_flow_limit_refusals_total{device="bw0"} 0)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_stream_segments_rewritten_total{device="bw0"} 0)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_stream_bytes_total{device="bw0",direction="up"} 0)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_stream_bytes_total{device="bw0",direction="down"} 0)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_stream_spoofed_targets_total{device="bw0"} 0)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_stream_accept_pauses_total{device="bw0"} 0)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_stream_accept_errors_total{device="bw0"} 0)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_ebpf_valid_ports{device="bw0"} 6)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_ebpf_valid_port_updates_total{device="bw0"} 292)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_ebpf_valid_port_update_failures_total{device="bw0"} 0)"));
  EXPECT_TRUE(
      has_line(text, R"(buckwild_ebpf_packets_total{device="bw0",hook="xdp",verdict="pass"} 31)"));
  EXPECT_TRUE(has_line(
      text, R"(buckwild_ebpf_packets_total{device="bw0",hook="xdp",verdict="drop_bad_port"} 0)"));
  EXPECT_TRUE(has_line(
      text, R"(buckwild_ebpf_packets_total{device="bw0",hook="socket",verdict="pass"} 31)"));
  EXPECT_TRUE(has_line(
      text, R"(buckwild_ebpf_stream_nat_segments_total{device="bw0",outcome="rewritten"} 5120)"));
  EXPECT_TRUE(has_line(
      text, R"(buckwild_ebpf_stream_nat_segments_total{device="bw0",outcome="to_daemon"} 12)"));
  EXPECT_TRUE(has_line(
      text, R"(buckwild_ebpf_stream_nat_segments_total{device="bw0",outcome="failed"} 0)"));

  const std::string bob = R"({device="bw0",peer="bob"})";
  EXPECT_TRUE(has_line(
      text, R"(buckwild_peer_info{device="bw0",peer="bob",configured="true",psk="main"} 1)"));
  EXPECT_TRUE(has_line(text, "buckwild_peer_up" + bob + " 1"));
  EXPECT_TRUE(has_line(text, "buckwild_peer_session_age_seconds" + bob + " 70.11"));
  EXPECT_TRUE(has_line(text, "buckwild_peer_last_received_age_seconds" + bob + " 0.18"));
  EXPECT_TRUE(has_line(text, "buckwild_peer_delay_allowance_windows" + bob + " 1"));
  EXPECT_TRUE(has_line(text, "buckwild_peer_clock_offset_seconds" + bob + " 0"));
  EXPECT_TRUE(has_line(text, "buckwild_peer_one_way_delay_seconds" + bob + " 0.001"));
  EXPECT_TRUE(has_line(text, "buckwild_peer_rtt_seconds" + bob + " 0.0004"));
  EXPECT_TRUE(has_line(text, "buckwild_peer_receive_packets_total" + bob + " 31"));
  EXPECT_TRUE(has_line(text, "buckwild_peer_transmit_packets_total" + bob + " 30"));
  EXPECT_TRUE(has_line(text, "buckwild_peer_receive_bytes_total" + bob + " 4113"));
  EXPECT_TRUE(has_line(text, "buckwild_peer_transmit_bytes_total" + bob + " 3980"));
  EXPECT_TRUE(has_line(text, "buckwild_peer_rejected_packets_total" + bob + " 0"));
  EXPECT_TRUE(has_line(
      text, R"(buckwild_peer_heartbeats_total{device="bw0",peer="bob",direction="sent"} 2)"));
  EXPECT_TRUE(has_line(
      text, R"(buckwild_peer_heartbeats_total{device="bw0",peer="bob",direction="received"} 2)"));
  EXPECT_TRUE(has_line(text, "buckwild_peer_connections" + bob + " 0"));
  EXPECT_TRUE(has_line(text, "buckwild_peer_retransmissions_total" + bob + " 0"));
  EXPECT_TRUE(has_line(text, "buckwild_peer_rekeys_total" + bob + " 0"));
  EXPECT_TRUE(has_line(text, "buckwild_peer_key_age_seconds" + bob + " 70.11"));

  // 58 families, each once; nothing in milliseconds.
  EXPECT_EQ(count_prefix(text, "# TYPE "), 58u);
  EXPECT_EQ(text.find("_ms"), std::string::npos);
}

// docs/control.md "Metrics" shows part of the example's exposition: it must
// be what the renderer writes.
TEST(PrometheusTest, DocsSampleOutputIsTheRenderersOwn) {
  const std::string doc = read_file(source_root() / "docs" / "control.md");
  const std::size_t section = doc.find("## Metrics");
  ASSERT_NE(section, std::string::npos);
  const std::size_t start = doc.find("```\n", section);
  ASSERT_NE(start, std::string::npos);
  const std::size_t end = doc.find("```", start + 4);
  ASSERT_NE(end, std::string::npos);
  const std::string text = render_one(docs_example());
  const std::vector<std::string> shown = lines_of(doc.substr(start + 4, end - start - 4));
  ASSERT_FALSE(shown.empty());
  for (const std::string& line : shown) EXPECT_TRUE(has_line(text, line)) << line;
}

TEST(PrometheusTest, LabelValuesAreEscaped) {
  Json doc = docs_example();
  doc["device"] = "bw\\0";
  doc["peers"][0]["name"] = "a\"b\\c\nd";
  const std::string text = render_one(doc);
  expect_well_formed(text);
  EXPECT_TRUE(has_line(text, R"(buckwild_peer_up{device="bw\\0",peer="a\"b\\c\nd"} 1)")) << text;
  EXPECT_EQ(text.find("c\nd"), std::string::npos);
}

TEST(PrometheusTest, MissingNullAndWrongTypedFieldsLeaveOutTheirSamplesOnly) {
  Json doc = docs_example();
  doc["peers"][0]["session"]["rtt_ms"] = nullptr;
  doc["peers"][0]["session"].erase("one_way_delay_ms");
  doc["peers"][0]["session"]["rx_bytes"] = "4113";
  doc["uptime_ms"] = true;
  doc["drops"] = Json::array({1, 2});
  doc["discovery"]["stale"] = Json::object();
  doc["ebpf"] = nullptr;
  doc["window"] = nullptr;
  doc.erase("listening_ports");
  Json carol = {{"name", "carol"}, {"configured", true}, {"psk", "main"}, {"session", nullptr}};
  Json broken = {{"name", 7}, {"session", {{"rx_packets", 1}}}};
  doc["peers"].push_back(carol);
  doc["peers"].push_back(broken);
  doc["peers"].push_back("not a peer");
  doc["peers"].push_back(nullptr);
  const std::string text = render_one(doc);
  expect_well_formed(text);

  EXPECT_EQ(text.find("buckwild_peer_rtt_seconds"), std::string::npos);
  EXPECT_EQ(text.find("buckwild_peer_one_way_delay_seconds"), std::string::npos);
  EXPECT_EQ(text.find("buckwild_peer_receive_bytes_total"), std::string::npos);
  EXPECT_EQ(text.find("buckwild_uptime_seconds"), std::string::npos);
  EXPECT_EQ(text.find("buckwild_drops_total"), std::string::npos);
  EXPECT_EQ(text.find("reason=\"stale\""), std::string::npos);
  EXPECT_EQ(text.find("buckwild_ebpf_"), std::string::npos);
  EXPECT_EQ(text.find("buckwild_hop_"), std::string::npos);
  EXPECT_EQ(text.find("buckwild_listening_ports"), std::string::npos);
  // Everything else still there.
  EXPECT_TRUE(has_line(text, R"(buckwild_peer_up{device="bw0",peer="bob"} 1)"));
  EXPECT_TRUE(
      has_line(text, R"(buckwild_peer_transmit_bytes_total{device="bw0",peer="bob"} 3980)"));
  EXPECT_TRUE(
      has_line(text, R"(buckwild_discovery_drops_total{device="bw0",reason="bad_proof"} 0)"));
  // A peer without a session is down, with nothing from a session.
  EXPECT_TRUE(has_line(text, R"(buckwild_peer_up{device="bw0",peer="carol"} 0)"));
  EXPECT_EQ(count_prefix(text, "buckwild_peer_session_age_seconds{"), 1u);
  EXPECT_TRUE(has_line(
      text, R"(buckwild_peer_info{device="bw0",peer="carol",configured="true",psk="main"} 1)"));
  // A peer without a name cannot be told apart: left out.
  EXPECT_EQ(count_prefix(text, "buckwild_peer_up{"), 2u);
}

TEST(PrometheusTest, UnconfiguredPeerHasEmptyPskLabel) {
  Json doc = docs_example();
  doc["peers"][0]["configured"] = false;
  doc["peers"][0]["psk"] = nullptr;
  doc["peers"][0]["name"] = "10.99.0.9";
  const std::string text = render_one(doc);
  EXPECT_TRUE(has_line(
      text, R"(buckwild_peer_info{device="bw0",peer="10.99.0.9",configured="false",psk=""} 1)"));
}

TEST(PrometheusTest, NonObjectDocumentsGiveNothing) {
  // (An empty object is a document without a single field to make a sample of.)
  for (const Json& doc :
       {Json(nullptr), Json::array({1}), Json("status"), Json(4), Json::object()}) {
    EXPECT_EQ(render_one(doc), "") << doc.dump();
  }
  EXPECT_EQ(render_prometheus({}), "");
}

TEST(PrometheusTest, SeveralTunnelsShareEachFamily) {
  Json a = docs_example();
  Json b = docs_example();
  b["device"] = "bw1";
  b["uptime_ms"] = 5;
  b["ebpf"] = nullptr;  // user-space path on this one
  b["receive_path"]["kind"] = "userspace";
  const std::vector<Json> tunnels{a, b, Json("garbage"), a};  // bw0 twice: its samples once
  const std::string text = render_prometheus(tunnels);
  expect_well_formed(text);
  EXPECT_EQ(count_prefix(text, "# TYPE "), 58u);
  EXPECT_TRUE(has_line(text, R"(buckwild_uptime_seconds{device="bw0"} 73.021)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_uptime_seconds{device="bw1"} 0.005)"));
  EXPECT_TRUE(has_line(
      text, R"(buckwild_tunnel_info{device="bw1",receive_path="userspace",tcp_mode="stream"} 1)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_peer_up{device="bw1",peer="bob"} 1)"));
  EXPECT_EQ(count_prefix(text, "buckwild_peer_up{"), 2u);
  EXPECT_EQ(count_prefix(text, "buckwild_ebpf_valid_ports{"), 1u);
  // Samples of one family are contiguous (expect_well_formed), bw0 before bw1.
  EXPECT_LT(text.find(R"(buckwild_uptime_seconds{device="bw0"})"),
            text.find(R"(buckwild_uptime_seconds{device="bw1"})"));
}

TEST(PrometheusTest, LargeAndFractionalValues) {
  Json doc = {
      {"device", "bw0"},
      {"uptime_ms", 18446744073709551615ull},
      {"counters", {{"tun_packets_in", 18446744073709551615ull}}},
      {"window", {{"hop_interval_ms", 0.1}}},
      {"peers", Json::array({{{"name", "x"},
                              {"session", {{"clock_offset_ms", -12}, {"rtt_ms", 1e-300}}}}})}};
  const std::string text = render_one(doc);
  expect_well_formed(text);
  // Counters keep every digit; milliseconds become seconds.
  EXPECT_TRUE(has_line(
      text, R"(buckwild_tun_packets_total{device="bw0",direction="in"} 18446744073709551615)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_uptime_seconds{device="bw0"} 18446744073709552)"));
  EXPECT_TRUE(has_line(text, R"(buckwild_hop_interval_seconds{device="bw0"} 0.0001)"));
  EXPECT_TRUE(
      has_line(text, R"(buckwild_peer_clock_offset_seconds{device="bw0",peer="x"} -0.012)"));
  // Too small for fixed notation: scientific, and exact.
  const std::string rtt = R"(buckwild_peer_rtt_seconds{device="bw0",peer="x"} )";
  const std::size_t at = text.find(rtt);
  ASSERT_NE(at, std::string::npos);
  const std::string value = text.substr(at + rtt.size(), text.find('\n', at) - at - rtt.size());
  EXPECT_NE(value.find("e-303"), std::string::npos) << value;
  EXPECT_EQ(std::stod(value), 1e-300 / 1000.0);
}

// The Prometheus client's own parser (python3-prometheus-client), on the
// exposition of the docs example plus a second tunnel with a hostile name.
constexpr const char* kParserScript = R"(
import json, sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1], encoding="utf-8").read()
out = []
for f in text_string_to_metric_families(text):
    out.append({"name": f.name, "type": f.type, "help": f.documentation,
                "samples": [{"name": s.name, "labels": s.labels, "value": s.value}
                            for s in f.samples]})
print(json.dumps(out))
)";

// Debian's interpreter first: it is the one apt installs the module for.
std::optional<std::string> python_with_parser() {
  for (const char* python : {"/usr/bin/python3", "python3"}) {
    const std::string cmd =
        std::string(python) + " -c 'import prometheus_client.parser' >/dev/null 2>&1";
    const int status = std::system(cmd.c_str());
    if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0) return python;
  }
  return std::nullopt;
}

struct TempDir {
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "buckwild-prom-XXXXXX").string();
    if (::mkdtemp(templ.data()) != nullptr) path = templ;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
  std::filesystem::path path;
};

TEST(PrometheusTest, OfficialParserReadsIt) {
  const std::optional<std::string> python = python_with_parser();
  if (!python) GTEST_SKIP() << "python3-prometheus-client is not installed (scripts/setup.sh)";
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());

  Json a = docs_example();
  Json b = docs_example();
  b["device"] = "bw1";
  b["peers"][0]["name"] = "a\"b\\c\nd";
  const std::vector<Json> tunnels{a, b};
  const std::string text = render_prometheus(tunnels);
  std::ofstream(dir.path / "metrics.prom") << text;
  std::ofstream(dir.path / "parse.py") << kParserScript;

  const std::string cmd = *python + " " + (dir.path / "parse.py").string() + " " +
                          (dir.path / "metrics.prom").string() + " 2>" +
                          (dir.path / "stderr").string();
  FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  std::array<char, 4096> buf{};
  for (std::size_t n; (n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0;) {
    output.append(buf.data(), n);
  }
  const int status = ::pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "the parser refused the exposition:\n"
      << read_file(dir.path / "stderr") << "\n"
      << text;

  const Json families = Json::parse(output);
  ASSERT_TRUE(families.is_array());
  EXPECT_EQ(families.size(), 58u);
  std::set<std::string> names;
  std::map<std::string, const Json*> by_name;
  for (const Json& f : families) {
    EXPECT_TRUE(names.insert(f["name"].get<std::string>()).second) << f["name"];
    by_name[f["name"].get<std::string>()] = &f;
    EXPECT_FALSE(f["help"].get<std::string>().empty()) << f["name"];
    // The parser names a counter family without its _total; its samples keep it.
    if (f["type"] == "counter") {
      for (const Json& s : f["samples"]) {
        EXPECT_EQ(s["name"].get<std::string>(), f["name"].get<std::string>() + "_total");
      }
    }
  }
  ASSERT_TRUE(by_name.contains("buckwild_peer_rtt_seconds"));
  const Json& rtt = *by_name["buckwild_peer_rtt_seconds"];
  EXPECT_EQ(rtt["type"], "gauge");
  ASSERT_EQ(rtt["samples"].size(), 2u);
  EXPECT_DOUBLE_EQ(rtt["samples"][0]["value"].get<double>(), 0.0004);
  EXPECT_EQ(rtt["samples"][1]["labels"]["peer"], "a\"b\\c\nd");
  EXPECT_EQ(rtt["samples"][1]["labels"]["device"], "bw1");

  ASSERT_TRUE(by_name.contains("buckwild_peer_receive_bytes"));
  EXPECT_EQ((*by_name["buckwild_peer_receive_bytes"])["type"], "counter");
  ASSERT_TRUE(by_name.contains("buckwild_drops"));
  EXPECT_EQ((*by_name["buckwild_drops"])["samples"].size(), 2 * a["drops"].size());
}

}  // namespace
}  // namespace buckwild::daemon

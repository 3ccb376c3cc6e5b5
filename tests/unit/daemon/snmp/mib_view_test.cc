#include "daemon/snmp/mib_view.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "daemon/snmp/mib_oids.h"

namespace buckwild::daemon::snmp {
namespace {

using nlohmann::json;

// A status document in the shape of docs/control.md's example.
json sample_status() {
  return json::parse(R"json({
    "version": "0.1.0", "protocol_version": 1, "device": "bw0", "uptime_ms": 73021,
    "reloads": {"applied": 1, "refused": 2},
    "settings": {"log_level": "debug", "discovery_work_per_second": 250},
    "receive_path": {"kind": "ebpf", "detail": "xdp-generic on veth-a", "why": null},
    "counters": {"tun_packets_in": 10, "tun_packets_out": 12, "datagrams_sent": 30,
                 "datagrams_received": 31, "sessions_established": 1, "sessions_lost": 0,
                 "sessions": 1},
    "drops": {"no_route": 3, "hop_port_bind_failures": 7},
    "discovery": {"responses": 1, "replayed": 9},
    "tun_offload": {"gso_reads": 21, "passed_through_segments": 22},
    "udp_offload": {"gso": "on", "gro": "off (network.udp_offload = false)", "gso_sends": 23,
                    "gro_malformed": 24, "batched_datagrams": 25},
    "ebpf": {"valid_ports": 6, "hooks": {
      "xdp": {"pass": 31, "pass_discovery": 2, "drop_bad_port": 4, "drop_truncated": 1},
      "socket": {"pass": 31, "drop_bad_length": 2, "drop_discovery_rate": 5}}},
    "peers": [
      {"name": "bob", "configured": true, "session": {
        "id": "9f3c01a2", "endpoint": "192.0.2.2:1025", "established_ms_ago": 70110,
        "send_port": 51873, "listen_ports": [40211, 51873, 60222], "clock_offset_ms": -12,
        "one_way_delay_ms": 1, "rtt_ms": 0.4, "rx_packets": 31, "tx_packets": 30,
        "rx_bytes": 4113, "tx_bytes": 3980, "rejected": 0, "connections": 2,
        "retransmissions": 5}},
      {"name": "carol", "configured": true, "admin_state": "down", "session": null},
      {"name": "2001:db8::9", "configured": false, "session": {
        "id": "01020304", "endpoint": "[2001:db8::9]:1025", "rtt_ms": null}}
    ]})json");
}

template <typename T>
T value_at(const MibView& view, const Oid& oid) {
  const MibValue* v = view.get(oid);
  EXPECT_NE(v, nullptr);
  if (v == nullptr || !std::holds_alternative<T>(*v)) {
    ADD_FAILURE() << "wrong type or missing";
    return T{};
  }
  return std::get<T>(*v);
}

std::uint32_t col(PeerColumn c) { return static_cast<std::uint32_t>(c); }

TEST(MibViewTest, ScalarsComeFromTheirStatusFields) {
  const MibView view = MibView::from_status(sample_status());
  EXPECT_EQ(value_at<OctetString>(view, scalar_oid(kDaemon, 1)).value, "0.1.0");
  EXPECT_EQ(value_at<OctetString>(view, scalar_oid(kDaemon, 3)).value, "bw0");
  EXPECT_EQ(value_at<TimeTicks>(view, scalar_oid(kDaemon, 4)).value, 7302u);
  EXPECT_EQ(value_at<Integer32>(view, scalar_oid(kDaemon, 5)).value, 1);  // ebpf(1)
  EXPECT_EQ(value_at<OctetString>(view, scalar_oid(kDaemon, 6)).value, "xdp-generic on veth-a");
  EXPECT_EQ(value_at<Counter64>(view, scalar_oid(kDaemon, 8)).value, 2u);
  EXPECT_EQ(value_at<Gauge32>(view, scalar_oid(kTraffic, 1)).value, 1u);
  EXPECT_EQ(value_at<Counter64>(view, scalar_oid(kTraffic, 7)).value, 31u);
  EXPECT_EQ(value_at<Counter64>(view, scalar_oid(kDrops, 1)).value, 3u);
  EXPECT_EQ(value_at<Counter64>(view, scalar_oid(kDrops, 2)).value, 0u);  // missing: 0
  EXPECT_EQ(value_at<Counter64>(view, scalar_oid(kDrops, 13)).value, 7u);
  EXPECT_EQ(value_at<Counter64>(view, scalar_oid(kDiscovery, 11)).value, 9u);
  EXPECT_EQ(view.get(scalar_oid(kDrops, 14)), nullptr);
  // bwControl: debug(2), and the work budget.
  EXPECT_EQ(value_at<Integer32>(view, scalar_oid(kControl, kLogLevelItem)).value, 2);
  EXPECT_EQ(value_at<Gauge32>(view, scalar_oid(kControl, kDiscoveryRateLimitItem)).value, 250u);
  // The filter: passes are the entry program's, drops add up.
  EXPECT_EQ(value_at<Gauge32>(view, scalar_oid(kFilter, 1)).value, 6u);
  EXPECT_EQ(value_at<Counter64>(view, scalar_oid(kFilter, 2)).value, 33u);
  EXPECT_EQ(value_at<Counter64>(view, scalar_oid(kFilter, 3)).value, 4u);
  EXPECT_EQ(value_at<Counter64>(view, scalar_oid(kFilter, 4)).value, 3u);
  EXPECT_EQ(value_at<Counter64>(view, scalar_oid(kFilter, 6)).value, 5u);
  // The offloads: the TUN's counters, then the UDP sockets' state and counters.
  EXPECT_EQ(value_at<Counter64>(view, scalar_oid(kOffload, 1)).value, 21u);
  EXPECT_EQ(value_at<Counter64>(view, scalar_oid(kOffload, 2)).value, 0u);
  EXPECT_EQ(value_at<Counter64>(view, scalar_oid(kOffload, 8)).value, 22u);
  EXPECT_EQ(value_at<OctetString>(view, scalar_oid(kOffload, 9)).value, "on");
  EXPECT_EQ(value_at<OctetString>(view, scalar_oid(kOffload, 10)).value, "off (network.udp_offload = false)");
  EXPECT_EQ(value_at<Counter64>(view, scalar_oid(kOffload, 11)).value, 23u);
  EXPECT_EQ(value_at<Counter64>(view, scalar_oid(kOffload, 16)).value, 24u);
  EXPECT_EQ(value_at<Counter64>(view, scalar_oid(kOffload, 18)).value, 25u);
  EXPECT_EQ(view.get(scalar_oid(kOffload, 19)), nullptr);
}

TEST(MibViewTest, PeerRowsAreIndexedByName) {
  const MibView view = MibView::from_status(sample_status());
  EXPECT_EQ(value_at<Integer32>(view, peer_cell_oid(col(PeerColumn::kState), "bob")).value, 2);
  EXPECT_EQ(value_at<Integer32>(view, peer_cell_oid(col(PeerColumn::kState), "carol")).value, 1);
  EXPECT_EQ(value_at<Integer32>(view, peer_cell_oid(col(PeerColumn::kAdminState), "bob")).value, 1);
  EXPECT_EQ(value_at<Integer32>(view, peer_cell_oid(col(PeerColumn::kAdminState), "carol")).value, 2);
  EXPECT_EQ(value_at<OctetString>(view, peer_cell_oid(col(PeerColumn::kSessionId), "bob")).value,
            "9f3c01a2");
  EXPECT_EQ(value_at<Integer32>(view, peer_cell_oid(col(PeerColumn::kEndpointType), "bob")).value, 1);
  EXPECT_EQ(value_at<OctetString>(view, peer_cell_oid(col(PeerColumn::kEndpoint), "bob")).value,
            std::string("\xc0\x00\x02\x02", 4));
  EXPECT_EQ(value_at<Gauge32>(view, peer_cell_oid(col(PeerColumn::kEndpointPort), "bob")).value, 1025u);
  EXPECT_EQ(value_at<OctetString>(view, peer_cell_oid(col(PeerColumn::kListenPorts), "bob")).value,
            "40211,51873,60222");
  EXPECT_EQ(value_at<Integer32>(view, peer_cell_oid(col(PeerColumn::kClockOffset), "bob")).value, -12);
  EXPECT_EQ(value_at<Gauge32>(view, peer_cell_oid(col(PeerColumn::kRtt), "bob")).value, 400u);
  EXPECT_EQ(value_at<Counter64>(view, peer_cell_oid(col(PeerColumn::kRxOctets), "bob")).value, 4113u);
  EXPECT_EQ(value_at<Counter64>(view, peer_cell_oid(col(PeerColumn::kRetransmits), "bob")).value, 5u);
  EXPECT_EQ(value_at<Gauge32>(view, peer_cell_oid(col(PeerColumn::kConnections), "bob")).value, 2u);
  // Without a session: zeros and empty strings, the row still there.
  EXPECT_EQ(value_at<Counter64>(view, peer_cell_oid(col(PeerColumn::kRxOctets), "carol")).value, 0u);
  EXPECT_EQ(value_at<OctetString>(view, peer_cell_oid(col(PeerColumn::kEndpoint), "carol")).value, "");
  EXPECT_EQ(value_at<Integer32>(view, peer_cell_oid(col(PeerColumn::kEndpointType), "carol")).value, 0);
  // An IPv6 endpoint, an unconfigured peer, a null RTT.
  const std::string v6 = "2001:db8::9";
  EXPECT_EQ(value_at<Integer32>(view, peer_cell_oid(col(PeerColumn::kEndpointType), v6)).value, 2);
  EXPECT_EQ(value_at<OctetString>(view, peer_cell_oid(col(PeerColumn::kEndpoint), v6)).value.size(), 16u);
  EXPECT_EQ(value_at<Integer32>(view, peer_cell_oid(col(PeerColumn::kConfigured), v6)).value, 2);
  EXPECT_EQ(value_at<Gauge32>(view, peer_cell_oid(col(PeerColumn::kRtt), v6)).value, 0u);
  // The index: length, then the name's octets.
  const Oid cell = peer_cell_oid(col(PeerColumn::kState), "bob");
  EXPECT_EQ(Oid(cell.end() - 4, cell.end()), (Oid{3, 'b', 'o', 'b'}));
}

TEST(MibViewTest, GetNextWalksInOidOrderToTheEnd) {
  const MibView view = MibView::from_status(sample_status());
  Oid at(std::begin(kBuckwildEnterpriseOid), std::end(kBuckwildEnterpriseOid));
  std::size_t walked = 0;
  Oid previous;
  while (const auto* next = view.next(at)) {
    ASSERT_LT(previous, next->first);
    previous = at = next->first;
    ASSERT_LE(++walked, view.size());
  }
  EXPECT_EQ(walked, view.size());
  // The last object: bwOffload's, after the table and bwControl.
  EXPECT_EQ(at, scalar_oid(kOffload, 18));
  EXPECT_EQ(view.next(scalar_oid(kControl, kDiscoveryRateLimitItem))->first, scalar_oid(kOffload, 1));
  // The table's last cell: the longest name's ("2001:db8::9") in the last column.
  EXPECT_EQ(view.next(peer_cell_oid(col(PeerColumn::kConnections), "2001:db8::9"))->first,
            scalar_oid(kControl, kLogLevelItem));
  // From before the module and from a point between two objects.
  EXPECT_EQ(view.next(Oid{1, 3, 6})->first, scalar_oid(kDaemon, 1));
  Oid version_object = scalar_oid(kDaemon, 1);
  version_object.pop_back();  // bwVersion without its .0
  EXPECT_EQ(view.next(version_object)->first, scalar_oid(kDaemon, 1));
  // A column's rows in index order (length first: "bob" < "carol" < "2001:db8::9").
  const auto* row = view.next(peer_cell_oid(col(PeerColumn::kState), "bob"));
  EXPECT_EQ(row->first, peer_cell_oid(col(PeerColumn::kState), "carol"));
}

TEST(MibViewTest, ANonsenseDocumentGivesZerosNotACrash) {
  for (const json& doc : {json(nullptr), json::array({1, 2}), json("text"),
                          json::parse(R"({"counters": "x", "drops": [1], "peers": {"a": 1},
                                          "ebpf": {"hooks": [1]}, "uptime_ms": -5,
                                          "receive_path": 3})"),
                          json::parse(R"({"peers": [1, {"name": 5}, {"name": ""},
                                          {"name": "x", "session": {"endpoint": "nonsense",
                                           "rtt_ms": 1e300, "clock_offset_ms": -1e300,
                                           "listen_ports": "no"}}]})")}) {
    const MibView view = MibView::from_status(doc);
    EXPECT_EQ(std::get<Counter64>(*view.get(scalar_oid(kTraffic, 2))).value, 0u);
    EXPECT_EQ(std::get<TimeTicks>(*view.get(scalar_oid(kDaemon, 4))).value, 0u);
  }
  json long_name = sample_status();
  long_name["peers"] = json::array({{{"name", std::string(65, 'x')}, {"session", nullptr}},
                                    {{"name", std::string(64, 'y')}, {"session", nullptr}}});
  const MibView view = MibView::from_status(long_name);
  EXPECT_EQ(view.get(peer_cell_oid(col(PeerColumn::kState), std::string(65, 'x'))), nullptr);
  EXPECT_NE(view.get(peer_cell_oid(col(PeerColumn::kState), std::string(64, 'y'))), nullptr);
  const MibView odd = MibView::from_status(json::parse(
      R"({"peers": [{"name": "x", "session": {"endpoint": "nonsense", "rtt_ms": 1e300,
          "clock_offset_ms": -1e300}}]})"));
  EXPECT_EQ(std::get<Gauge32>(*odd.get(peer_cell_oid(col(PeerColumn::kRtt), "x"))).value, 4200000000u);
  EXPECT_EQ(std::get<Integer32>(*odd.get(peer_cell_oid(col(PeerColumn::kClockOffset), "x"))).value, 0);
  EXPECT_EQ(std::get<Integer32>(*odd.get(peer_cell_oid(col(PeerColumn::kEndpointType), "x"))).value, 0);
}

}  // namespace
}  // namespace buckwild::daemon::snmp

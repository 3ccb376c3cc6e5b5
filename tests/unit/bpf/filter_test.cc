// The frame filter (src/bpf/filter.bpf.c: bw_xdp and bw_tc_ingress) run in
// the kernel with BPF_PROG_TEST_RUN on built frames, for IPv4 and IPv6: every
// verdict, with the counter it must increment and no other.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <ostream>
#include <string>

#include "bpf_test_support.h"
#include "daemon/ebpf/kernel_ebpf_path.h"

namespace buckwild::daemon {
namespace {

using bpftest::buckwild_datagram;
using bpftest::build_frame;
using bpftest::Frame;
using bpftest::FrameSpec;
using wire::PacketType;

struct FilterCase {
  BpfHook hook;
  bool v6;
};

void PrintTo(const FilterCase& c, std::ostream* os) {
  *os << bpf_hook_name(c.hook) << (c.v6 ? "/ipv6" : "/ipv4");
}

class FrameFilterTest : public ::testing::TestWithParam<FilterCase> {
 protected:
  void SetUp() override {
    std::string skip;
    path_ = bpftest::load_filter(config_, skip);
    if (!path_ && !skip.empty()) GTEST_SKIP() << skip;
    ASSERT_TRUE(path_);
    if (hook() == BpfHook::kTc) {  // loaded only when asked for
      auto tc = path_->tc_program();
      ASSERT_TRUE(tc) << tc.error().message;
    }
  }

  BpfHook hook() const { return GetParam().hook; }
  bool v6() const { return GetParam().v6; }
  IpAddress peer() const { return ip(v6() ? "2001:db8::7" : "192.0.2.7"); }
  IpAddress other_peer() const { return ip(v6() ? "2001:db8::9" : "192.0.2.9"); }
  IpAddress local() const { return ip(v6() ? "2001:db8::1" : "192.0.2.1"); }
  static IpAddress ip(const char* text) { return *IpAddress::parse(text); }

  FrameSpec spec(Frame payload, std::uint16_t port = 5000) const {
    FrameSpec s;
    s.source = peer();
    s.destination = local();
    s.destination_port = port;
    s.payload = std::move(payload);
    return s;
  }
  Frame frame(Frame payload, std::uint16_t port = 5000) const {
    return build_frame(spec(std::move(payload), port));
  }

  void allow(const IpAddress& source, std::uint16_t port) {
    allowed_.push_back(ValidPort{source, port, 0x0123456789ABCDEFull, 1, 3});
    auto r = path_->update_valid_ports(allowed_);
    ASSERT_TRUE(r) << r.error().message;
  }

  void set_config(const BpfFilterConfig& c) {
    auto r = path_->set_config(c);
    ASSERT_TRUE(r) << r.error().message;
  }

  BpfCounters counters() const {
    auto c = path_->counters();
    EXPECT_TRUE(c) << c.error().message;
    return c ? *c : BpfCounters{};
  }

  // Runs the hook's program on `f`, expects pass or drop and exactly one
  // increment, of `counter`.
  void expect(const Frame& f, bool pass, BpfCounter counter, int ifindex = 0) {
    const BpfCounters before = counters();
    const std::uint32_t r = bpftest::run_frame(path_->program_fd(hook()), f, ifindex, hook());
    const BpfCounters delta = bpftest::counter_delta(before, counters());
    if (hook() == BpfHook::kXdp) {
      EXPECT_EQ(r, pass ? bpftest::kXdpPass : bpftest::kXdpDrop);
    } else {
      EXPECT_EQ(r, pass ? bpftest::kTcOk : bpftest::kTcShot);
    }
    bpftest::expect_single_verdict(delta, hook(), counter);
  }

  // An unconnected UDP socket of "another application", bound to the
  // wildcard address on a kernel-chosen (ephemeral, so hopping-range) port.
  UniqueFd app_socket(std::uint16_t& port) const {
    UniqueFd app(::socket(v6() ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP));
    if (!app.valid()) return app;
    sockaddr_storage at{};
    socklen_t len = 0;
    if (v6()) {
      auto* a6 = reinterpret_cast<sockaddr_in6*>(&at);
      a6->sin6_family = AF_INET6;
      a6->sin6_addr = in6addr_any;
      len = sizeof(sockaddr_in6);
    } else {
      auto* a4 = reinterpret_cast<sockaddr_in*>(&at);
      a4->sin_family = AF_INET;
      a4->sin_addr.s_addr = htonl(INADDR_ANY);
      len = sizeof(sockaddr_in);
    }
    if (::bind(app.get(), reinterpret_cast<sockaddr*>(&at), len) != 0 ||
        ::getsockname(app.get(), reinterpret_cast<sockaddr*>(&at), &len) != 0) {
      return UniqueFd();
    }
    port = ntohs(v6() ? reinterpret_cast<sockaddr_in6*>(&at)->sin6_port
                      : reinterpret_cast<sockaddr_in*>(&at)->sin_port);
    EXPECT_GE(port, config_.port_low);
    return app;
  }

  BpfFilterConfig config_;
  std::unique_ptr<EbpfPrograms> path_;
  std::vector<ValidPort> allowed_;
};

TEST_P(FrameFilterTest, ValidPortPasses) {
  allow(peer(), 5000);
  expect(frame(buckwild_datagram()), true, BpfCounter::kPass);
}

// At TC a packet may be a peer's UDP_SEGMENT send that crossed a veth whole
// (or a GRO packet): judged by its first datagram, counted as each of them.
// Without the skb's GSO fields the same frame is one datagram whose header
// does not match its length.
TEST_P(FrameFilterTest, AGsoPacketAtTcIsJudgedByItsFirstDatagramAndCountedForEach) {
  if (hook() != BpfHook::kTc) GTEST_SKIP() << "XDP frames are never GSO packets";
  allow(peer(), 5000);
  const Frame one = buckwild_datagram(PacketType::kData, 1000);
  Frame three = one;
  three.insert(three.end(), one.begin(), one.end());
  three.insert(three.end(), one.begin(), one.begin() + 300);  // the last is shorter
  const Frame f = frame(three);
  auto run = [&](std::uint32_t segs, std::uint32_t size, std::uint32_t want_ret,
                 BpfCounter counter, std::uint64_t want_count) {
    const BpfCounters before = counters();
    EXPECT_EQ(bpftest::run_frame(path_->program_fd(hook()), f, 0, hook(), segs, size), want_ret);
    const BpfCounters delta = bpftest::counter_delta(before, counters());
    EXPECT_EQ(delta.get(hook(), counter), want_count);
  };
  run(3, static_cast<std::uint32_t>(one.size()), bpftest::kTcOk, BpfCounter::kPass, 3);
  run(0, 0, bpftest::kTcShot, BpfCounter::kDropBadLength, 1);
  // A segment size that is not the first datagram's: its header says otherwise.
  run(3, static_cast<std::uint32_t>(one.size()) - 4, bpftest::kTcShot, BpfCounter::kDropBadLength,
      3);
}

TEST_P(FrameFilterTest, EveryKnownTypePassesOnAValidPort) {
  allow(peer(), 5000);
  for (int t = 0x01; t <= 0x1C; ++t) {
    SCOPED_TRACE("type " + std::to_string(t));
    expect(frame(buckwild_datagram(static_cast<PacketType>(t), 20)), true, BpfCounter::kPass);
  }
}

TEST_P(FrameFilterTest, PortValidForNoSourceDrops) {
  allow(peer(), 5000);
  expect(frame(buckwild_datagram(), 5001), false, BpfCounter::kDropBadPort);
  FrameSpec s = spec(buckwild_datagram(), 5001);
  s.source = other_peer();
  expect(build_frame(s), false, BpfCounter::kDropBadPort);
}

// A port valid for one source, from another: a roaming candidate (the peer's
// address changed, docs/protocol.md §11.6) passes for the daemon to
// authenticate, within its own per-source rate.
TEST_P(FrameFilterTest, PortValidForAnotherSourcePassesAsRoamingWithinItsRate) {
  BpfFilterConfig c = config_;
  c.roam_per_source = {1, 2};
  set_config(c);
  allow(peer(), 5000);
  Frame keepalive = buckwild_datagram();
  keepalive[16] = 0x00;  // connection 0
  keepalive[17] = 0x00;
  FrameSpec s = spec(keepalive);
  s.source = other_peer();
  expect(build_frame(s), true, BpfCounter::kPassRoam);
  expect(build_frame(s), true, BpfCounter::kPassRoam);
  expect(build_frame(s), false, BpfCounter::kDropRoamRate);
  // The peer itself is not charged for it.
  expect(frame(buckwild_datagram()), true, BpfCounter::kPass);
  // A connection's packets do not roam (nor spend the candidate's budget).
  FrameSpec cs = spec(buckwild_datagram());  // connection 3
  cs.source = other_peer();
  expect(build_frame(cs), false, BpfCounter::kDropBadPort);
  // Malformed is malformed, whoever sends it.
  Frame bad = keepalive;
  bad[0] = 0x02;
  FrameSpec b = spec(bad);
  b.source = other_peer();
  expect(build_frame(b), false, BpfCounter::kDropBadVersion);
}

TEST_P(FrameFilterTest, BadVersionDrops) {
  allow(peer(), 5000);
  Frame d = buckwild_datagram();
  d[0] = 0x02;
  expect(frame(d), false, BpfCounter::kDropBadVersion);
}

TEST_P(FrameFilterTest, UnknownTypeDrops) {
  allow(peer(), 5000);
  for (std::uint8_t type : {std::uint8_t{0x00}, std::uint8_t{0x1D}, std::uint8_t{0xFF}}) {
    SCOPED_TRACE("type " + std::to_string(type));
    Frame d = buckwild_datagram();
    d[1] = type;
    expect(frame(d), false, BpfCounter::kDropUnknownType);
  }
}

TEST_P(FrameFilterTest, HeaderRuleViolationsDrop) {
  allow(peer(), 5000);
  struct Mutation {
    const char* what;
    std::size_t offset;
    std::uint8_t value;
  };
  const Mutation mutations[] = {
      {"reserved byte", 3, 0x01},           {"reserved flag bit", 2, 0x80},
      {"connection id 4096", 16, 0x10},    // 0x1003
      {"timestamp >= one day", 28, 0xFF},  // 0xFFxxxxxx ms
      {"fragment total on DATA", 37, 0x02},
  };
  for (const Mutation& m : mutations) {
    SCOPED_TRACE(m.what);
    Frame d = buckwild_datagram();
    d[m.offset] = m.value;
    expect(frame(d), false, BpfCounter::kDropBadHeader);
  }
  SCOPED_TRACE("session id 0 on DATA");
  Frame d = buckwild_datagram();
  std::fill(d.begin() + 4, d.begin() + 12, 0);
  expect(frame(d), false, BpfCounter::kDropBadHeader);
}

TEST_P(FrameFilterTest, TruncatedDatagramsDrop) {
  allow(peer(), 5000);
  Frame d = buckwild_datagram(PacketType::kData, 1);
  Frame short_by_one(d.begin(), d.end() - 2);  // 59 bytes: header intact, tag cut
  expect(frame(short_by_one), false, BpfCounter::kDropTruncated);
  expect(frame(Frame(d.begin(), d.begin() + 20)), false, BpfCounter::kDropTruncated);
  expect(frame(Frame{}), false, BpfCounter::kDropTruncated);
  // The UDP header claims more than the frame holds.
  FrameSpec s = spec(buckwild_datagram());
  s.udp_length = static_cast<std::uint16_t>(8 + s.payload.size() + 10);
  expect(build_frame(s), false, BpfCounter::kDropTruncated);
}

TEST_P(FrameFilterTest, PayloadLengthMustMatchTheDatagram) {
  allow(peer(), 5000);
  Frame d = buckwild_datagram(PacketType::kData, 100);
  d[39] = 101;  // payload length 101, body 100
  expect(frame(d), false, BpfCounter::kDropBadLength);
  d[39] = 99;
  expect(frame(d), false, BpfCounter::kDropBadLength);
}

TEST_P(FrameFilterTest, SourceOverItsRateDrops) {
  BpfFilterConfig c = config_;
  c.data_per_source = {1, 2};  // one a second, bursts of two
  set_config(c);
  allow(peer(), 5000);
  allow(other_peer(), 5000);
  expect(frame(buckwild_datagram()), true, BpfCounter::kPass);
  expect(frame(buckwild_datagram()), true, BpfCounter::kPass);
  expect(frame(buckwild_datagram()), false, BpfCounter::kDropRateLimited);
  FrameSpec s = spec(buckwild_datagram());
  s.source = other_peer();  // its own bucket
  expect(build_frame(s), true, BpfCounter::kPass);
}

TEST_P(FrameFilterTest, DiscoveryPortIsOpenToAnyoneWithinTheirRate) {
  BpfFilterConfig c = config_;
  c.discovery_per_source = {1, 2};
  set_config(c);
  const Frame discovery = buckwild_datagram(PacketType::kDiscovery, wire::kDiscoveryBodySize);
  expect(frame(discovery, wire::kDiscoveryPort), true, BpfCounter::kPassDiscovery);
  expect(frame(discovery, wire::kDiscoveryPort), true, BpfCounter::kPassDiscovery);
  expect(frame(discovery, wire::kDiscoveryPort), false, BpfCounter::kDropDiscoveryRate);
  FrameSpec s = spec(discovery, wire::kDiscoveryPort);
  s.source = other_peer();
  expect(build_frame(s), true, BpfCounter::kPassDiscovery);
}

TEST_P(FrameFilterTest, DiscoveryPortHasATotalRateOverAllSources) {
  BpfFilterConfig c = config_;
  c.discovery_per_source = {0, 1};  // unlimited per source
  c.discovery_total = {1, 2};
  set_config(c);
  const Frame discovery = buckwild_datagram(PacketType::kDiscovery, wire::kDiscoveryBodySize);
  const char* sources_v4[] = {"192.0.2.11", "192.0.2.12", "192.0.2.13"};
  const char* sources_v6[] = {"2001:db8::11", "2001:db8::12", "2001:db8::13"};
  for (int i = 0; i < 3; ++i) {
    FrameSpec s = spec(discovery, wire::kDiscoveryPort);
    s.source = ip(v6() ? sources_v6[i] : sources_v4[i]);
    expect(build_frame(s), i < 2,
           i < 2 ? BpfCounter::kPassDiscovery : BpfCounter::kDropDiscoveryTotal);
  }
}

// A flood from spoofed sources empties the cap for all sources together; a
// configured peer's address is not held to it (its per-source bucket still
// is), so its discovery reaches the daemon's budget for its PSK.
TEST_P(FrameFilterTest, APeersDiscoverySkipsTheTotalRate) {
  BpfFilterConfig c = config_;
  c.discovery_per_source = {1, 2};
  c.discovery_total = {1, 1};
  set_config(c);
  const Frame discovery = buckwild_datagram(PacketType::kDiscovery, wire::kDiscoveryBodySize);
  FrameSpec stranger = spec(discovery, wire::kDiscoveryPort);
  stranger.source = other_peer();
  expect(build_frame(stranger), true, BpfCounter::kPassDiscovery);  // the total's one
  expect(frame(discovery, wire::kDiscoveryPort), false, BpfCounter::kDropDiscoveryTotal);
  ASSERT_TRUE(path_->set_peer_sources({peer()}));
  expect(frame(discovery, wire::kDiscoveryPort), true, BpfCounter::kPassDiscovery);
  expect(frame(discovery, wire::kDiscoveryPort), false, BpfCounter::kDropDiscoveryRate);
  expect(build_frame(stranger), false, BpfCounter::kDropDiscoveryTotal);
  ASSERT_TRUE(path_->set_peer_sources({}));
  FrameSpec third = spec(discovery, wire::kDiscoveryPort);
  third.source = ip(v6() ? "2001:db8::33" : "192.0.2.33");
  expect(build_frame(third), false, BpfCounter::kDropDiscoveryTotal);
}

TEST_P(FrameFilterTest, SessionTrafficOnTheDiscoveryPortTakesTheDataPath) {
  allow(peer(), wire::kDiscoveryPort);  // the schedule landed on 1025
  expect(frame(buckwild_datagram(), wire::kDiscoveryPort), true, BpfCounter::kPass);
  Frame bad = buckwild_datagram();
  bad[0] = 0x07;
  expect(frame(bad, wire::kDiscoveryPort), false, BpfCounter::kDropBadVersion);
}

TEST_P(FrameFilterTest, OtherTrafficPassesUntouched) {
  allow(peer(), 5000);
  FrameSpec tcp = spec(Frame(40, 0x00));
  tcp.ip_protocol = 6;
  expect(build_frame(tcp), true, BpfCounter::kNotOurs);
  expect(frame(Frame(30, 0xEE), 53), true, BpfCounter::kNotOurs);  // below the hopping range
  if (!v6()) expect(bpftest::arp_frame(), true, BpfCounter::kNotOurs);

  BpfFilterConfig narrow = config_;
  narrow.port_low = 20000;
  narrow.port_high = 30000;
  set_config(narrow);
  expect(frame(Frame(30, 0xEE), 5000), true, BpfCounter::kNotOurs);
  expect(frame(Frame(30, 0xEE), 25000), false, BpfCounter::kDropTruncated);
  expect(frame(Frame(70, 0xEE), 25000), false, BpfCounter::kDropBadVersion);
}

// The hopping range spans the ephemeral ports: a datagram that is not valid
// for its source but that another application's socket would receive (a DNS
// reply to a resolver's port) passes untouched, whatever it contains; the
// daemon's own sockets do not count.
TEST_P(FrameFilterTest, AnotherApplicationsSocketGetsItsDatagrams) {
  allow(peer(), 5000);
  std::uint16_t port = 0;
  UniqueFd app = app_socket(port);
  ASSERT_TRUE(app.valid());

  expect(frame(Frame(30, 0xEE), port), true, BpfCounter::kPassForeign);
  expect(frame(buckwild_datagram(), port), true, BpfCounter::kPassForeign);
  // The same socket as one of the daemon's own: its port is guarded as usual.
  ASSERT_TRUE(path_->set_own_ports({port}));
  expect(frame(Frame(30, 0xEE), port), false, BpfCounter::kDropTruncated);
  expect(frame(buckwild_datagram(), port), false, BpfCounter::kDropBadPort);
  ASSERT_TRUE(path_->set_own_ports({}));
  expect(frame(buckwild_datagram(), port), true, BpfCounter::kPassForeign);
  // Once the application closes it, the port is an invalid one again.
  app.reset();
  expect(frame(buckwild_datagram(), port), false, BpfCounter::kDropBadPort);
}

// Issue 20 defect 7: the same on a port that is valid for the datagram's
// source now (a reply from the peer's host to another program's ephemeral
// port that the schedule also gave the tunnel): what is not of the pair's
// session goes to that program; the session's own datagrams stay ours.
TEST_P(FrameFilterTest, AnotherApplicationsSocketOnAValidPortKeepsItsDatagrams) {
  std::uint16_t port = 0;
  UniqueFd app = app_socket(port);
  ASSERT_TRUE(app.valid());
  allow(peer(), port);  // session 0x0123456789ABCDEF, as buckwild_datagram()
  Frame other_session = buckwild_datagram();
  other_session[11] ^= 0x01;

  expect(frame(Frame(30, 0xEE), port), true, BpfCounter::kPassForeign);
  expect(frame(other_session, port), true, BpfCounter::kPassForeign);
  expect(frame(buckwild_datagram(), port), true, BpfCounter::kPass);
  // Without the program's socket: the pair's checks as before.
  app.reset();
  expect(frame(Frame(30, 0xEE), port), false, BpfCounter::kDropTruncated);
  expect(frame(other_session, port), true, BpfCounter::kPass);
}

// Issue 20 defect 10: IP fragments of datagrams to our ports.
TEST_P(FrameFilterTest, FragmentsToOurPortsDropWithTheRestOfTheirDatagram) {
  allow(peer(), 5000);
  FrameSpec first = spec(Frame(96, 0xAB));
  first.more_fragments = true;
  first.fragment_id = 0x1234;
  FrameSpec later = spec(Frame(64, 0xCD));
  later.fragment_offset = 13;  // 104 bytes: after the first fragment's UDP header and data
  later.fragment_id = 0x1234;

  expect(build_frame(first), false, BpfCounter::kDropFragment);
  expect(build_frame(later), false, BpfCounter::kDropFragmentTail);
  later.more_fragments = true;
  expect(build_frame(later), false, BpfCounter::kDropFragmentTail);
  // A later fragment of a datagram whose first fragment was not seen here:
  // it shows no port, and passes.
  later.fragment_id = 0x4321;
  expect(build_frame(later), true, BpfCounter::kPassFragment);
  // Valid or not, discovery port too.
  first.fragment_id = 0x1235;
  first.destination_port = 6000;
  expect(build_frame(first), false, BpfCounter::kDropFragment);
  first.destination_port = wire::kDiscoveryPort;
  expect(build_frame(first), false, BpfCounter::kDropFragment);
  // A first fragment too short to hold the UDP header.
  Frame tiny = build_frame(first);
  tiny.resize(tiny.size() - first.payload.size() - 4);
  expect(tiny, false, BpfCounter::kDropFragment);
}

TEST_P(FrameFilterTest, FragmentsOfOtherTrafficPass) {
  // Below the hopping range: not ours.
  FrameSpec first = spec(Frame(96, 0xAB), 53);
  first.more_fragments = true;
  first.fragment_id = 0x77;
  expect(build_frame(first), true, BpfCounter::kNotOurs);
  FrameSpec later = spec(Frame(64, 0xCD), 53);
  later.fragment_offset = 13;
  later.fragment_id = 0x77;
  expect(build_frame(later), true, BpfCounter::kPassFragment);
  // Not UDP.
  FrameSpec tcp = first;
  tcp.ip_protocol = 6;
  tcp.destination_port = 5000;
  expect(build_frame(tcp), true, BpfCounter::kNotOurs);
  // In the hopping range, to another program's socket (a large DNS reply
  // to a resolver's ephemeral port): that program keeps it.
  std::uint16_t port = 0;
  UniqueFd app = app_socket(port);
  ASSERT_TRUE(app.valid());
  first.destination_port = port;
  expect(build_frame(first), true, BpfCounter::kPassForeign);
  later.destination_port = port;
  expect(build_frame(later), true, BpfCounter::kPassFragment);
}

TEST_P(FrameFilterTest, FragmentsPassWhenTheConfigurationAllowsThem) {
  BpfFilterConfig allowing = config_;
  allowing.pass_fragments = true;
  set_config(allowing);
  FrameSpec first = spec(Frame(96, 0xAB));
  first.more_fragments = true;
  first.fragment_id = 0x99;
  expect(build_frame(first), true, BpfCounter::kPassFragment);
  FrameSpec later = spec(Frame(64, 0xCD));
  later.fragment_offset = 13;
  later.fragment_id = 0x99;
  expect(build_frame(later), true, BpfCounter::kPassFragment);
  // And the setting reaches the kernel from the daemon's configuration.
  SecurityConfig security;
  EXPECT_TRUE(filter_config(wire::kDiscoveryPort, true, security).pass_fragments);
  EXPECT_FALSE(filter_config(wire::kDiscoveryPort, false, security).pass_fragments);
}

TEST_P(FrameFilterTest, IpOptionsExtensionHeadersAndVlanTagsAreFollowed) {
  allow(peer(), 5000);
  Frame bad = buckwild_datagram();
  bad[0] = 0x09;
  for (bool valid : {true, false}) {
    SCOPED_TRACE(valid ? "valid" : "bad version");
    FrameSpec s = spec(valid ? buckwild_datagram() : bad);
    if (v6()) {
      s.ipv6_extension_headers = 2;
    } else {
      s.ipv4_option_words = 3;
    }
    const BpfCounter verdict = valid ? BpfCounter::kPass : BpfCounter::kDropBadVersion;
    expect(build_frame(s), valid, verdict);
    s.vlan = true;
    expect(build_frame(s), valid, verdict);
  }
}

INSTANTIATE_TEST_SUITE_P(Hooks, FrameFilterTest,
                         ::testing::Values(FilterCase{BpfHook::kXdp, false},
                                           FilterCase{BpfHook::kXdp, true},
                                           FilterCase{BpfHook::kTc, false},
                                           FilterCase{BpfHook::kTc, true}),
                         [](const ::testing::TestParamInfo<FilterCase>& p) {
                           return std::string(p.param.hook == BpfHook::kXdp ? "Xdp" : "Tc") +
                                  (p.param.v6 ? "Ipv6" : "Ipv4");
                         });

}  // namespace
}  // namespace buckwild::daemon

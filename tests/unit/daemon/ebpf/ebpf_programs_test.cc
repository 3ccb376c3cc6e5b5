// EbpfPrograms (src/daemon/ebpf/ebpf_programs.cc): why loading fails, where the
// frame filter attaches and that everything is detached again, live traffic
// through all hooks on loopback, the valid-port map (make-before-break, and
// the time a window change takes for 64 sessions), and security events.
#include "daemon/ebpf/ebpf_programs.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/if_link.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>

#include "bpf_test_support.h"
#include "core/inner/tcp_segment.h"
#include "support/inner_packets.h"
#include "daemon/net/netlink.h"
#include "daemon/net/tun_device.h"
#include "support/daemon_test_support.h"

namespace buckwild::daemon {
namespace {

using bpftest::buckwild_datagram;
using bpftest::Frame;
using bpftest::FrameSpec;
using testing::is_root;
using testing::run_isolated;

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

int ifindex_of(const char* name) {
  auto index = Netlink::ifindex(name);
  EXPECT_TRUE(index) << index.error().message;
  return index ? *index : 0;
}

std::uint32_t xdp_program_on(int ifindex) {
  bpf_xdp_query_opts q{};
  q.sz = sizeof q;
  EXPECT_EQ(bpf_xdp_query(ifindex, 0, &q), 0);
  return q.prog_id;
}

// 0 when a TC filter with our handle and priority is at ingress of ifindex.
int query_our_tc_filter(int ifindex) {
  bpf_tc_hook hook{};
  hook.sz = sizeof hook;
  hook.ifindex = ifindex;
  hook.attach_point = BPF_TC_INGRESS;
  bpf_tc_opts opts{};
  opts.sz = sizeof opts;
  opts.handle = 0xB3D;
  opts.priority = 1;
  return bpf_tc_query(&hook, &opts);
}

// ---- Loading ----------------------------------------------------------------

TEST(EbpfProgramsTest, InvalidConfigIsRefusedBeforeTheKernelIsAsked) {
  BpfFilterConfig c;
  c.port_low = 30000;
  c.port_high = 20000;
  auto r = EbpfPrograms::load(c);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().sys_errno, EINVAL);
  EXPECT_EQ(r.error().message, "invalid hopping range 30000-20000");
  c = {};
  c.discovery_port = 0;
  EXPECT_FALSE(EbpfPrograms::load(c));
  c = {};
  c.port_low = 0;
  EXPECT_FALSE(EbpfPrograms::load(c));
  auto zero = EbpfPrograms::load({}, BpfLoadOptions{0});
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().sys_errno, EINVAL);
}

TEST(EbpfProgramsTest, AKernelRefusalNamesWhatFailed) {
  if (!is_root()) GTEST_SKIP() << "needs root to load eBPF programs";
  // A valid-port map the kernel will not create.
  auto r = EbpfPrograms::load({}, BpfLoadOptions{0xFFFFFFFFu});
  ASSERT_FALSE(r);
  std::printf("[ load error ] %s\n", r.error().message.c_str());
  EXPECT_NE(r.error().sys_errno, 0);
  EXPECT_NE(r.error().message.find("rejected the eBPF filter"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("valid_ports"), std::string::npos) << r.error().message;
}

TEST(EbpfProgramsTest, RunStatsCountOnlyWhileTheKernelTimesPrograms) {
  std::string skip;
  auto path = bpftest::load_filter({}, skip);
  if (!path && !skip.empty()) GTEST_SKIP() << skip;
  ASSERT_TRUE(path);
  const Frame frame = buckwild_datagram();
  auto before = path->run_stats(BpfHook::kXdp);
  ASSERT_TRUE(before) << before.error().message;
  {
    // Timing is on while this descriptor is open (or the sysctl is set).
    UniqueFd timing(bpf_enable_stats(BPF_STATS_RUN_TIME));
    ASSERT_TRUE(timing) << std::strerror(errno);
    for (int i = 0; i < 10; ++i) bpftest::run_frame(path->program_fd(BpfHook::kXdp), frame);
  }
  auto after = path->run_stats(BpfHook::kXdp);
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(after->runs - before->runs, 10u);
  EXPECT_GT(after->run_time_ns, before->run_time_ns);
  auto tc = path->run_stats(BpfHook::kTc);
  ASSERT_TRUE(tc) << tc.error().message;
  EXPECT_EQ(tc->runs, 0u);  // never run
}

// The map ids a program uses.
std::set<__u32> map_ids_of(int prog_fd) {
  std::array<__u32, 64> ids{};
  bpf_prog_info info{};
  info.nr_map_ids = ids.size();
  info.map_ids = reinterpret_cast<__u64>(ids.data());
  __u32 length = sizeof info;
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &length) != 0) return {};
  return {ids.begin(), ids.begin() + std::min<std::size_t>(info.nr_map_ids, ids.size())};
}

TEST(EbpfProgramsTest, TheTcProgramLoadsOnlyWhenNeededOnTheFiltersMaps) {
  std::string skip;
  auto path = bpftest::load_filter({}, skip);
  if (!path && !skip.empty()) GTEST_SKIP() << skip;
  ASSERT_TRUE(path);
  // Not verified at start-up: most hosts filter with XDP.
  EXPECT_EQ(path->program_fd(BpfHook::kTc), -1);
  auto idle = path->run_stats(BpfHook::kTc);
  ASSERT_TRUE(idle) << idle.error().message;
  EXPECT_EQ(idle->runs, 0u);
  // Written before the TC program loads: loading it must not reset the
  // shared maps (valid_ports, and valid_port_bits in .bss).
  FrameSpec s;
  s.destination_port = 5000;
  s.payload = buckwild_datagram();
  auto written = path->update_valid_ports({ValidPort{s.source, 5000, 0x0123456789ABCDEFull, 1, 3}});
  ASSERT_TRUE(written) << written.error().message;

  auto tc = path->tc_program();
  ASSERT_TRUE(tc) << tc.error().message;
  EXPECT_GE(*tc, 0);
  EXPECT_EQ(path->program_fd(BpfHook::kTc), *tc);
  auto again = path->tc_program();  // loaded once
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, *tc);
  // The same maps as the XDP program, not copies of them.
  const std::set<__u32> xdp_maps = map_ids_of(path->program_fd(BpfHook::kXdp));
  const std::set<__u32> tc_maps = map_ids_of(*tc);
  ASSERT_FALSE(tc_maps.empty());
  for (__u32 id : tc_maps) EXPECT_TRUE(xdp_maps.contains(id)) << "map id " << id;
  EXPECT_EQ(bpftest::run_frame(*tc, bpftest::build_frame(s), 0, BpfHook::kTc), bpftest::kTcOk);
  s.destination_port = 5001;
  EXPECT_EQ(bpftest::run_frame(*tc, bpftest::build_frame(s), 0, BpfHook::kTc), bpftest::kTcShot);
}

TEST(EbpfProgramsTest, TheValidPortMapAllocatesAsItIsWritten) {
  std::string skip;
  auto path = bpftest::load_filter({}, skip);
  if (!path && !skip.empty()) GTEST_SKIP() << skip;
  ASSERT_TRUE(path);
  // Preallocating it cost ~23 ms of the daemon's start (issue 19).
  bpf_map_info info{};
  __u32 length = sizeof info;
  ASSERT_EQ(bpf_obj_get_info_by_fd(path->valid_ports_fd(), &info, &length), 0);
  EXPECT_NE(info.map_flags & BPF_F_NO_PREALLOC, 0u);
}

// ---- Attaching ----------------------------------------------------------------

TEST(BpfAttachTest, LoopbackTakesGenericXdpWhenAskedAndTcByDefault) {
  BUCKWILD_SKIP_UNLESS_BPF_AND_ROOT();
  run_isolated(CLONE_NEWNET, [] {
    const int lo = ifindex_of("lo");
    {
      std::string skip;
      auto path = bpftest::load_filter({}, skip);
      ASSERT_TRUE(path);
      const AttachMode xdp_only[] = {AttachMode::kXdpDriver, AttachMode::kXdpGeneric};
      auto a = path->attach_interface("lo", xdp_only);
      ASSERT_TRUE(a) << a.error().message;
      EXPECT_EQ(a->mode, AttachMode::kXdpGeneric);  // loopback has no driver XDP
      EXPECT_EQ(a->ifindex, lo);
      EXPECT_NE(a->fallback_reason.find("xdp-driver: "), std::string::npos) << a->fallback_reason;
      ASSERT_EQ(path->attachments().size(), 1u);
      EXPECT_EQ(path->attachments()[0].interface, "lo");
      EXPECT_NE(xdp_program_on(lo), 0u);

      auto again = path->attach_interface("lo");
      ASSERT_FALSE(again);
      EXPECT_EQ(again.error().sys_errno, EEXIST);
      auto missing = path->attach_interface("no-such-if9");
      ASSERT_FALSE(missing);
      EXPECT_EQ(missing.error().sys_errno, ENODEV);
    }
    EXPECT_EQ(xdp_program_on(lo), 0u) << "XDP still attached after destruction";
    // Without an explicit order it is TC ingress, not generic XDP: generic XDP
    // would see a same-host peer's GSO packet as one datagram and drop it
    // (docs/architecture.md, "UDP offloads").
    std::string skip;
    auto path = bpftest::load_filter({}, skip);
    ASSERT_TRUE(path);
    auto a = path->attach_interface("lo");
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(a->mode, AttachMode::kTcIngress);
    EXPECT_NE(a->fallback_reason.find("xdp-driver: "), std::string::npos) << a->fallback_reason;
    EXPECT_EQ(xdp_program_on(lo), 0u);
  });
}

TEST(BpfAttachTest, VethTakesDriverModeXdp) {
  BUCKWILD_SKIP_UNLESS_BPF_AND_ROOT();
  run_isolated(CLONE_NEWNET, [] {
    // iproute2 (scripts/setup.sh installs it) makes the pair.
    ASSERT_EQ(std::system("ip link add bwv0 type veth peer name bwv1"), 0);
    const int veth = ifindex_of("bwv0");
    {
      std::string skip;
      auto path = bpftest::load_filter({}, skip);
      ASSERT_TRUE(path);
      auto a = path->attach_interface("bwv0");
      ASSERT_TRUE(a) << a.error().message;
      EXPECT_EQ(a->mode, AttachMode::kXdpDriver);
      EXPECT_EQ(a->fallback_reason, "");
      bpf_xdp_query_opts q{};
      q.sz = sizeof q;
      ASSERT_EQ(bpf_xdp_query(veth, 0, &q), 0);
      EXPECT_NE(q.drv_prog_id, 0u);
      EXPECT_EQ(q.attach_mode, XDP_ATTACHED_DRV);
    }
    EXPECT_EQ(xdp_program_on(veth), 0u) << "XDP still attached after destruction";
  });
}

TEST(BpfAttachTest, FallsBackToTcWhenXdpIsTakenAndRemovesItsFilter) {
  BUCKWILD_SKIP_UNLESS_BPF_AND_ROOT();
  run_isolated(CLONE_NEWNET, [] {
    const int lo = ifindex_of("lo");
    std::string skip;
    // Someone else's XDP program, attached the old way (netlink).
    auto other = bpftest::load_filter({}, skip);
    ASSERT_TRUE(other);
    ASSERT_EQ(bpf_xdp_attach(lo, other->program_fd(BpfHook::kXdp), XDP_FLAGS_SKB_MODE, nullptr), 0);
    const std::uint32_t other_id = xdp_program_on(lo);
    {
      auto path = bpftest::load_filter({}, skip);
      ASSERT_TRUE(path);
      auto a = path->attach_interface("lo");
      ASSERT_TRUE(a) << a.error().message;
      EXPECT_EQ(a->mode, AttachMode::kTcIngress);
      EXPECT_NE(a->fallback_reason.find("xdp-driver: "), std::string::npos) << a->fallback_reason;
      // TC comes before generic XDP, which is not tried (kDefaultAttachOrder).
      EXPECT_EQ(a->fallback_reason.find("xdp-generic: "), std::string::npos) << a->fallback_reason;
      EXPECT_EQ(query_our_tc_filter(lo), 0);
    }
    EXPECT_NE(query_our_tc_filter(lo), 0) << "TC filter still attached after destruction";
    EXPECT_EQ(xdp_program_on(lo), other_id) << "someone else's XDP program was touched";
    EXPECT_EQ(bpf_xdp_detach(lo, XDP_FLAGS_SKB_MODE, nullptr), 0);
  });
}

TEST(BpfAttachTest, AnExplicitOrderIsFollowedAndItsFailuresReported) {
  BUCKWILD_SKIP_UNLESS_BPF_AND_ROOT();
  run_isolated(CLONE_NEWNET, [] {
    std::string skip;
    auto path = bpftest::load_filter({}, skip);
    ASSERT_TRUE(path);
    const AttachMode driver_only[] = {AttachMode::kXdpDriver};
    auto r = path->attach_interface("lo", driver_only);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("cannot attach the eBPF filter to lo (xdp-driver: "),
              std::string::npos)
        << r.error().message;
    EXPECT_TRUE(path->attachments().empty());
    const AttachMode tc_only[] = {AttachMode::kTcIngress};
    auto tc = path->attach_interface("lo", tc_only);
    ASSERT_TRUE(tc) << tc.error().message;
    EXPECT_EQ(tc->mode, AttachMode::kTcIngress);
    EXPECT_EQ(tc->fallback_reason, "");
  });
}

// A TUN device has no link-layer header: its frames start at the IP header.
// Packets written into it arrive as ingress traffic on it, through XDP (the
// TUN driver runs it) or TC, so both modes see real bare-IP frames.
void check_bare_ip_interface(std::span<const AttachMode> order, BpfHook frame_hook) {
  auto tun = LinuxTunDevice::open("bwbpf0");
  ASSERT_TRUE(tun) << tun.error().message;
  const int ifindex = (*tun)->ifindex();
  auto nl = Netlink::open();
  ASSERT_TRUE(nl);
  ASSERT_TRUE(nl->set_link(ifindex, std::nullopt, Netlink::LinkState::kUp));
  std::string skip;
  auto path = bpftest::load_filter({}, skip);
  ASSERT_TRUE(path);
  auto a = path->attach_interface("bwbpf0", order);
  ASSERT_TRUE(a) << a.error().message;
  std::printf("[ attach ] bwbpf0 (TUN): %s\n", std::string(attach_mode_name(a->mode)).c_str());
  const IpAddress peer = ip("192.0.2.7");
  ASSERT_TRUE(path->update_valid_ports({ValidPort{peer, 5000}}));

  FrameSpec s;
  s.source = peer;
  s.ethernet = false;
  Frame bad = buckwild_datagram();
  bad[0] = 0x02;
  struct Case {
    const char* what;
    Frame payload;
    std::uint16_t port;
    BpfCounter counter;
  };
  const Case cases[] = {
      {"valid", buckwild_datagram(), 5000, BpfCounter::kPass},
      {"bad version", bad, 5000, BpfCounter::kDropBadVersion},
      {"port not valid", buckwild_datagram(), 5001, BpfCounter::kDropBadPort},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    s.payload = c.payload;
    s.destination_port = c.port;
    const BpfCounters before = *path->counters();
    auto written = (*tun)->write_packet(bpftest::build_frame(s));
    ASSERT_TRUE(written) << written.error().message;
    const BpfCounters delta = bpftest::counter_delta(before, *path->counters());
    bpftest::expect_single_verdict(delta, frame_hook, c.counter);
  }

  if (frame_hook == BpfHook::kXdp) {
    // The same through BPF_PROG_TEST_RUN, presenting the frame as the TUN's.
    s.payload = buckwild_datagram();
    s.destination_port = 5000;
    const int xdp = path->program_fd(BpfHook::kXdp);
    EXPECT_EQ(bpftest::run_frame(xdp, bpftest::build_frame(s), ifindex), bpftest::kXdpPass);
    s.destination_port = 5001;
    EXPECT_EQ(bpftest::run_frame(xdp, bpftest::build_frame(s), ifindex), bpftest::kXdpDrop);
  }
}

TEST(BpfAttachTest, BareIpInterfacesAreParsedFromTheIpHeaderByXdp) {
  BUCKWILD_SKIP_UNLESS_BPF_AND_ROOT();
  run_isolated(CLONE_NEWNET, [] {
    const AttachMode order[] = {AttachMode::kXdpDriver, AttachMode::kXdpGeneric};
    check_bare_ip_interface(order, BpfHook::kXdp);
  });
}

TEST(BpfAttachTest, BareIpInterfacesAreParsedFromTheIpHeaderByTc) {
  BUCKWILD_SKIP_UNLESS_BPF_AND_ROOT();
  run_isolated(CLONE_NEWNET, [] {
    const AttachMode order[] = {AttachMode::kTcIngress};
    check_bare_ip_interface(order, BpfHook::kTc);
  });
}

// ---- Live traffic through every hook ---------------------------------------------

void check_live_traffic(std::span<const AttachMode> order, BpfHook frame_hook) {
  bpftest::loopback_up();
  std::string skip;
  auto path = bpftest::load_filter({}, skip);
  ASSERT_TRUE(path);
  auto attached = path->attach_interface("lo", order);
  ASSERT_TRUE(attached) << attached.error().message;
  auto daemon_socket = UdpSocket::bind({*SocketAddress::parse("127.0.0.1", 0), 0, 0});
  ASSERT_TRUE(daemon_socket);
  ASSERT_TRUE(path->steer_to_socket((*daemon_socket)->fd()));
  ASSERT_TRUE(path->attach_socket_filter((*daemon_socket)->fd()));
  const IpAddress local = ip("127.0.0.1");
  ASSERT_TRUE(path->update_valid_ports({ValidPort{local, 23456}}));
  UniqueFd sender = bpftest::plain_udp_socket(*SocketAddress::parse("127.0.0.1", 0));
  const SocketAddress valid{local, 23456};

  auto counters = [&] { return *path->counters(); };
  BpfCounters before = counters();
  const Frame d = bpftest::marker(7);
  bpftest::send_datagram(sender.get(), d, valid);
  auto got = bpftest::receive_one(**daemon_socket);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->payload, d);
  BpfCounters delta = bpftest::counter_delta(before, counters());
  EXPECT_EQ(delta.get(frame_hook, BpfCounter::kPass), 1u) << bpftest::describe(delta);
  EXPECT_EQ(delta.get(BpfHook::kSkLookup, BpfCounter::kPass), 1u) << bpftest::describe(delta);
  EXPECT_EQ(delta.get(BpfHook::kSocket, BpfCounter::kPass), 1u) << bpftest::describe(delta);

  Frame bad_version = buckwild_datagram();
  bad_version[0] = 0x05;
  struct Bad {
    const char* what;
    Frame datagram;
    std::uint16_t port;
    BpfCounter counter;
  };
  const Bad bad[] = {
      {"bad version", bad_version, 23456, BpfCounter::kDropBadVersion},
      {"port not valid now", buckwild_datagram(), 23999, BpfCounter::kDropBadPort},
      {"over 9000 bytes", buckwild_datagram(wire::PacketType::kData, wire::kMaxDatagramSize - 59),
       23456, BpfCounter::kDropBadLength},
  };
  std::uint8_t tag = 10;
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.what);
    before = counters();
    bpftest::send_datagram(sender.get(), b.datagram, SocketAddress{local, b.port});
    const Frame next = bpftest::marker(tag++);
    bpftest::send_datagram(sender.get(), next, valid);
    got = bpftest::receive_one(**daemon_socket);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->payload, next);
    delta = bpftest::counter_delta(before, counters());
    EXPECT_EQ(delta.get(frame_hook, b.counter), 1u) << bpftest::describe(delta);
    EXPECT_EQ(delta.get(frame_hook, BpfCounter::kPass), 1u) << bpftest::describe(delta);
    EXPECT_EQ(delta.get(BpfHook::kSocket, BpfCounter::kPass), 1u) << bpftest::describe(delta);
  }
}

TEST(BpfLiveTrafficTest, GenericXdpSkLookupAndSocketFilterOnLoopback) {
  BUCKWILD_SKIP_UNLESS_BPF_AND_ROOT();
  run_isolated(CLONE_NEWNET, [] {
    const AttachMode order[] = {AttachMode::kXdpGeneric};
    check_live_traffic(order, BpfHook::kXdp);
  });
}

TEST(BpfLiveTrafficTest, TcIngressSkLookupAndSocketFilterOnLoopback) {
  BUCKWILD_SKIP_UNLESS_BPF_AND_ROOT();
  run_isolated(CLONE_NEWNET, [] {
    const AttachMode order[] = {AttachMode::kTcIngress};
    check_live_traffic(order, BpfHook::kTc);
  });
}

// ---- Workers: each datagram to its worker's socket ---------------------------------

// bw_source_worker's hash, written again here.
std::uint32_t source_worker(const IpAddress& source, std::uint32_t workers) {
  const IpAddress mapped = source.mapped_v6();
  std::uint32_t w[4];
  std::memcpy(w, mapped.bytes().data(), sizeof w);
  std::uint32_t h = (w[0] ^ w[1] ^ w[2] ^ w[3]) * 0x9E3779B1u;
  h ^= h >> 16;
  return h % workers;
}

TEST(BpfWorkersTest, PairsGoToTheirWorkersSocketAndDiscoveryToTheServingOne) {
  BUCKWILD_SKIP_UNLESS_BPF_AND_ROOT();
  run_isolated(CLONE_NEWNET, [] {
    bpftest::loopback_up();
    constexpr std::uint16_t kDiscovery = 31025;
    BpfFilterConfig config;
    config.discovery_port = kDiscovery;
    std::string skip;
    BpfLoadOptions options;
    options.workers = 2;
    auto path = bpftest::load_filter(config, skip, options);
    ASSERT_TRUE(path);
    ASSERT_TRUE(path->attach_interface("lo"));
    // Both workers' sockets on the discovery port, as the daemon binds them.
    std::unique_ptr<UdpSocket> socket[2];
    for (std::uint32_t w = 0; w < 2; ++w) {
      UdpSocketOptions o{.bind_address = *SocketAddress::parse("127.0.0.1", kDiscovery),
                         .receive_buffer_bytes = 0, .send_buffer_bytes = 0, .reuse_port = true};
      auto s = UdpSocket::bind(o);
      ASSERT_TRUE(s) << s.error().message;
      socket[w] = std::move(*s);
      ASSERT_TRUE(path->steer_to_socket(socket[w]->fd(), w));
      ASSERT_TRUE(path->attach_socket_filter(socket[w]->fd()));
    }
    EXPECT_FALSE(path->steer_to_socket(socket[0]->fd(), 2)) << "a slot beyond the workers";
    const IpAddress local = ip("127.0.0.1");
    ValidPort first{local, 23456};
    ValidPort second{local, 23457};
    second.worker = 1;
    ASSERT_TRUE(path->update_valid_ports({first, second}));
    UniqueFd sender = bpftest::plain_udp_socket(*SocketAddress::parse("127.0.0.1", 0));
    std::uint8_t tag = 1;
    // Sends a marker to `port` and says which socket got it (-1: neither).
    auto arrives_at = [&](std::uint16_t port, wire::PacketType type = wire::PacketType::kData) {
      Frame d = type == wire::PacketType::kData ? bpftest::marker(tag++) : buckwild_datagram(type);
      bpftest::send_datagram(sender.get(), d, SocketAddress{local, port});
      for (int w = 0; w < 2; ++w) {
        if (auto got = bpftest::receive_one(*socket[w], 300); got && got->payload == d) return w;
      }
      return -1;
    };
    EXPECT_EQ(arrives_at(23456), 0);
    EXPECT_EQ(arrives_at(23457), 1);
    // The pair moves to the other worker with its session.
    first.worker = 1;
    second.worker = 0;
    ASSERT_TRUE(path->update_valid_ports({first, second}));
    EXPECT_EQ(arrives_at(23456), 1);
    EXPECT_EQ(arrives_at(23457), 0);
    // Discovery: the worker serving the source, else the one its address hashes to.
    const int hashed = static_cast<int>(source_worker(local, 2));
    EXPECT_EQ(arrives_at(kDiscovery, wire::PacketType::kDiscovery), hashed);
    ASSERT_TRUE(path->set_served_peer_sources({{local, static_cast<std::uint16_t>(1 - hashed)}}));
    EXPECT_EQ(arrives_at(kDiscovery, wire::PacketType::kDiscovery), 1 - hashed);
    ASSERT_TRUE(path->set_served_peer_sources({}));
    EXPECT_EQ(arrives_at(kDiscovery, wire::PacketType::kDiscovery), hashed);
  });
}

// The TUN queue steering program, run on packets as the virtual interface
// hands them over: the worker serving the destination's longest prefix.
TEST(BpfWorkersTest, TunSteeringPicksTheWorkerOfTheLongestPrefix) {
  BUCKWILD_SKIP_UNLESS_BPF_AND_ROOT();
  std::string skip;
  BpfLoadOptions options;
  options.workers = 3;
  auto path = bpftest::load_filter({}, skip, options);
  ASSERT_TRUE(path);
  ASSERT_TRUE(path->set_tun_routes({{*Cidr::parse("10.77.0.0/24"), 1},
                                    {*Cidr::parse("10.77.0.3/32"), 2},
                                    {*Cidr::parse("fd00:77::/64"), 2}}));
  auto queue_of = [&](const char* destination) {
    // BPF_PROG_TEST_RUN takes an Ethernet frame and hands a socket filter
    // the packet after its header, as the TUN device hands over the IP packet.
    const IpAddress d = ip(destination);
    constexpr std::size_t kEth = 14;
    std::vector<std::uint8_t> packet(kEth + (d.is_v6() ? 48 : 28), 0);
    packet[12] = d.is_v6() ? 0x86 : 0x08;
    packet[13] = d.is_v6() ? 0xDD : 0x00;
    if (d.is_v6()) {
      packet[kEth] = 0x60;
      packet[kEth + 6] = 17;
      std::memcpy(&packet[kEth + 24], d.bytes().data(), 16);
    } else {
      packet[kEth] = 0x45;
      packet[kEth + 9] = 17;
      std::memcpy(&packet[kEth + 16], d.bytes().data(), 4);
    }
    LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = packet.data(), .data_size_in = static_cast<__u32>(packet.size()));
    EXPECT_EQ(bpf_prog_test_run_opts(path->tun_steering_program(), &run), 0);
    return run.retval;
  };
  EXPECT_EQ(queue_of("10.77.0.1"), 1u);
  EXPECT_EQ(queue_of("10.77.0.3"), 2u);
  EXPECT_EQ(queue_of("10.78.0.1"), 0u) << "no worker serves it: worker 0";
  EXPECT_EQ(queue_of("fd00:77::5"), 2u);
  ASSERT_TRUE(path->set_tun_routes({{*Cidr::parse("10.77.0.0/24"), 1}}));
  EXPECT_EQ(queue_of("10.77.0.3"), 1u) << "the /32 went with its session";
}

// Stream mode's NAT in the kernel, run on segments as they leave the virtual
// interface, whose packets start at the IP header. BPF_PROG_TEST_RUN runs a
// TC program on an Ethernet frame: it pulls 14 bytes to read the EtherType
// and pushes them back, so a bare IP packet given as the frame is what the
// program sees from its first byte (the EtherType it reads, bytes 12-13 of
// the IP header, is never used). The test skb's checksums are complete
// (CHECKSUM_NONE), as a forwarded segment's are: the receiving TCP verifies
// them, so they must be right after the rewrite.
TEST(BpfStreamNatTest, RewritesAFlowsSegmentsWithTheirChecksumsAndHandsThemBackIn) {
  BUCKWILD_SKIP_UNLESS_BPF_AND_ROOT();
  std::string skip;
  auto path = bpftest::load_filter({}, skip);
  ASSERT_TRUE(path);
  const int prog = path->tun_nat_program();
  ASSERT_GE(prog, 0);
  struct Run {
    int verdict = -1;
    std::vector<std::uint8_t> packet;
  };
  auto run = [&](const std::vector<std::uint8_t>& ip_packet) {
    std::vector<std::uint8_t> in = ip_packet;
    std::vector<std::uint8_t> out(in.size() + 64);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = out.data(),
                .data_size_in = static_cast<__u32>(in.size()), .data_size_out = static_cast<__u32>(out.size()));
    EXPECT_EQ(bpf_prog_test_run_opts(prog, &opts), 0) << std::strerror(errno);
    out.resize(opts.data_size_out);
    return Run{static_cast<int>(opts.retval), out};
  };
  constexpr int kActOk = 0;        // TC_ACT_OK
  constexpr int kActRedirect = 7;  // TC_ACT_REDIRECT
  struct Case {
    const char* family;
    SocketAddress app, server, nat_source, listener;
  };
  const Case cases[] = {
      {"IPv4", {ip("10.77.0.1"), 40000}, {ip("10.77.0.2"), 80}, {ip("10.77.0.2"), 1029}, {ip("10.77.0.1"), 39397}},
      {"IPv6", {ip("fd77::1"), 40000}, {ip("fd77::2"), 80}, {ip("fd77::2"), 1029}, {ip("fd77::1"), 39397}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.family);
    ASSERT_TRUE(path->set_nat_rule(c.app, c.server, c.nat_source, c.listener));
    for (std::uint8_t flags : {inner::tcp_flag::kAck, std::uint8_t(inner::tcp_flag::kAck | inner::tcp_flag::kFin)}) {
      Run r = run(buckwild::testing::tcp_segment(c.app, c.server, flags));
      EXPECT_EQ(r.verdict, kActRedirect);
      auto s = inner::parse_tcp(r.packet);
      ASSERT_TRUE(s);
      EXPECT_EQ(s->source, c.nat_source);
      EXPECT_EQ(s->destination, c.listener);
      EXPECT_TRUE(inner::tcp_checksums_ok(r.packet)) << "checksums after the rewrite";
    }
    // A SYN or RST goes on to the daemon, which tracks the flow's state; so
    // does a segment of no flow.
    for (std::uint8_t flags : {inner::tcp_flag::kSyn, std::uint8_t(inner::tcp_flag::kRst | inner::tcp_flag::kAck)}) {
      const auto segment = buckwild::testing::tcp_segment(c.app, c.server, flags);
      Run r = run(segment);
      EXPECT_EQ(r.verdict, kActOk);
      EXPECT_EQ(r.packet, segment) << "unchanged";
    }
    EXPECT_EQ(run(buckwild::testing::tcp_segment(c.server, c.app, inner::tcp_flag::kAck)).verdict, kActOk);
    ASSERT_TRUE(path->erase_nat_rule(c.app, c.server));
    EXPECT_EQ(run(buckwild::testing::tcp_segment(c.app, c.server, inner::tcp_flag::kAck)).verdict, kActOk) << "rule gone";
    ASSERT_TRUE(path->erase_nat_rule(c.app, c.server)) << "removing no rule is not an error";
  }
  auto counters = path->nat_counters();
  ASSERT_TRUE(counters);
  EXPECT_EQ((*counters)[BW_NAT_REWRITTEN], 4u);
  EXPECT_EQ((*counters)[BW_NAT_TO_DAEMON], 8u);
  EXPECT_EQ((*counters)[BW_NAT_FAILED], 0u);
}

// ---- The valid-port map -------------------------------------------------------------

std::set<std::pair<std::string, std::uint16_t>> map_contents(int fd) {
  std::set<std::pair<std::string, std::uint16_t>> out;
  bw_port_key key{};
  bw_port_key next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    std::array<std::uint8_t, 16> bytes{};
    std::memcpy(bytes.data(), next.source.bytes, 16);
    out.insert({IpAddress::v6(bytes).unmapped().to_string(), next.port});
    key = next;
    prev = &key;
  }
  return out;
}

class ValidPortMapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string skip;
    path_ = bpftest::load_filter({}, skip, options_);
    if (!path_ && !skip.empty()) GTEST_SKIP() << skip;
    ASSERT_TRUE(path_);
  }
  BpfLoadOptions options_;
  std::unique_ptr<EbpfPrograms> path_;
};

TEST_F(ValidPortMapTest, TheMapHoldsExactlyTheLatestSet) {
  const IpAddress a = ip("192.0.2.7");
  const IpAddress b = ip("2001:db8::7");
  ASSERT_TRUE(path_->update_valid_ports({{a, 2000}, {a, 2001}, {b, 3000}}));
  using Set = std::set<std::pair<std::string, std::uint16_t>>;
  EXPECT_EQ(map_contents(path_->valid_ports_fd()),
            (Set{{"192.0.2.7", 2000}, {"192.0.2.7", 2001}, {"2001:db8::7", 3000}}));
  // v4 and v4-mapped are one key.
  ASSERT_TRUE(path_->update_valid_ports({{a, 2001}, {ip("::ffff:192.0.2.7"), 2001}, {b, 3001}}));
  EXPECT_EQ(map_contents(path_->valid_ports_fd()),
            (Set{{"192.0.2.7", 2001}, {"2001:db8::7", 3001}}));
  EXPECT_EQ(path_->valid_port_count(), 2u);
  ASSERT_TRUE(path_->update_valid_ports({}));
  EXPECT_TRUE(map_contents(path_->valid_ports_fd()).empty());
}

TEST_F(ValidPortMapTest, ChangedValuesAreRewritten) {
  const IpAddress a = ip("192.0.2.7");
  ASSERT_TRUE(path_->update_valid_ports({ValidPort{a, 2000, 11, 100, 1}}));
  ASSERT_TRUE(path_->update_valid_ports({ValidPort{a, 2000, 22, 101, 2}}));
  bw_port_key key{};
  key.source.bytes[10] = 0xff;
  key.source.bytes[11] = 0xff;
  std::memcpy(&key.source.bytes[12], a.bytes().data(), 4);
  key.port = 2000;
  bw_port_value value{};
  ASSERT_EQ(bpf_map_lookup_elem(path_->valid_ports_fd(), &key, &value), 0);
  EXPECT_EQ(value.session_id, 22u);
  EXPECT_EQ(value.window, 101u);
  EXPECT_EQ(value.connection_id, 2u);
}

class SmallValidPortMapTest : public ValidPortMapTest {
 protected:
  SmallValidPortMapTest() { options_.max_valid_ports = 4; }
};

// Issue #20, defect 5: an update whose old and new sets did not fit together
// was refused (E2BIG), leaving the old set in force while the sessions hopped
// on: the frame filter then dropped all their traffic.
TEST_F(SmallValidPortMapTest, OldAndNewNeedNotFitTogether) {
  const IpAddress a = ip("192.0.2.7");
  ASSERT_TRUE(path_->update_valid_ports({{a, 1}, {a, 2}, {a, 3}}));
  // Make-before-break would hold {1,2,3} and {3,4,5} (five entries): the
  // leaving ones go first instead.
  auto r = path_->update_valid_ports({{a, 3}, {a, 4}, {a, 5}});
  ASSERT_TRUE(r) << r.error().message;
  using Set = std::set<std::pair<std::string, std::uint16_t>>;
  EXPECT_EQ(map_contents(path_->valid_ports_fd()), (Set{{"192.0.2.7", 3}, {"192.0.2.7", 4}, {"192.0.2.7", 5}}));
  EXPECT_EQ(path_->valid_port_count(), 3u);
  EXPECT_EQ(path_->valid_ports_trimmed(), 0u);
}

// Issue #20, defect 5: a peer advertising a delay allowance of 16 makes 33
// ports per connection; a set larger than the map was refused whole. Now the
// windows farthest from the current one give way and the rest are written.
TEST_F(SmallValidPortMapTest, ASetLargerThanTheMapKeepsTheWindowsNearestTheCurrentOne) {
  const IpAddress a = ip("192.0.2.7");
  std::vector<ValidPort> next;
  for (std::uint32_t w = 100; w <= 108; ++w) {  // w = 104, d = 4
    next.push_back(ValidPort{a, static_cast<std::uint16_t>(2000 + w), 7, w, 0});
  }
  auto r = path_->update_valid_ports(next);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(path_->valid_port_count(), 4u);
  EXPECT_EQ(path_->valid_ports_trimmed(), 5u);
  auto held = map_contents(path_->valid_ports_fd());
  EXPECT_EQ(held.size(), 4u);
  for (int port : {2103, 2104, 2105}) {
    EXPECT_TRUE(held.contains({"192.0.2.7", static_cast<std::uint16_t>(port)})) << port;
  }
  // The next window: everything moves by one, still the nearest four.
  for (ValidPort& p : next) {
    ++p.window;
    ++p.port;
  }
  ASSERT_TRUE(path_->update_valid_ports(next));
  held = map_contents(path_->valid_ports_fd());
  for (int port : {2104, 2105, 2106}) {
    EXPECT_TRUE(held.contains({"192.0.2.7", static_cast<std::uint16_t>(port)})) << port;
  }
}

// A pair valid in both the old and the new set must never be missing while
// the map is rewritten: a reader looks it up continuously during updates.
TEST_F(ValidPortMapTest, APairInBothSetsIsNeverMissingDuringAnUpdate) {
  const IpAddress keep = ip("192.0.2.1");
  std::vector<ValidPort> even{{keep, 4000}};
  std::vector<ValidPort> odd{{keep, 4000}};
  for (std::uint16_t i = 0; i < 500; ++i) {
    even.push_back({ip("198.18.0.1"), static_cast<std::uint16_t>(10000 + i)});
    odd.push_back({ip("198.18.0.2"), static_cast<std::uint16_t>(20000 + i)});
  }
  ASSERT_TRUE(path_->update_valid_ports(even));
  bw_port_key key{};
  key.source.bytes[10] = 0xff;
  key.source.bytes[11] = 0xff;
  std::memcpy(&key.source.bytes[12], keep.bytes().data(), 4);
  key.port = 4000;
  const int fd = path_->valid_ports_fd();
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> lookups{0};
  std::atomic<std::uint64_t> misses{0};
  std::atomic<std::uint64_t> drops{0};
  // The program's view too: the port's bit in valid_port_bits and the entry.
  FrameSpec spec;
  spec.source = keep;
  spec.destination_port = 4000;
  spec.payload = buckwild_datagram();
  const Frame frame = bpftest::build_frame(spec);
  const int xdp = path_->program_fd(BpfHook::kXdp);
  std::thread reader([&] {
    bw_port_value value{};
    while (!stop.load(std::memory_order_relaxed)) {
      if (bpf_map_lookup_elem(fd, &key, &value) != 0) misses.fetch_add(1);
      if (bpftest::run_frame(xdp, frame) != bpftest::kXdpPass) drops.fetch_add(1);
      lookups.fetch_add(1);
    }
  });
  for (int round = 0; round < 200; ++round) {
    ASSERT_TRUE(path_->update_valid_ports(round % 2 == 0 ? odd : even));
  }
  stop = true;
  reader.join();
  EXPECT_EQ(misses.load(), 0u) << "in " << lookups.load() << " lookups";
  EXPECT_EQ(drops.load(), 0u) << "in " << lookups.load() << " runs of the XDP program";
  EXPECT_GT(lookups.load(), 0u);
}

// valid_port_bits summarises the map by port: a port's bit stays while any
// source still has it, and goes with its last entry.
TEST_F(ValidPortMapTest, APortStaysValidForTheSourcesThatStillHaveIt) {
  const IpAddress a = ip("192.0.2.7");
  const IpAddress b = ip("192.0.2.8");
  auto verdict = [&](const IpAddress& source, std::uint16_t port) {
    FrameSpec spec;
    spec.source = source;
    spec.destination_port = port;
    spec.payload = buckwild_datagram();
    spec.payload[16] = 0;  // connection 0: what may roam
    spec.payload[17] = 0;
    return bpftest::run_frame(path_->program_fd(BpfHook::kXdp), bpftest::build_frame(spec));
  };
  ASSERT_TRUE(path_->update_valid_ports({{a, 5000}, {b, 5000}, {a, 5001}}));
  EXPECT_EQ(verdict(a, 5000), bpftest::kXdpPass);
  EXPECT_EQ(verdict(b, 5000), bpftest::kXdpPass);
  EXPECT_EQ(verdict(a, 5001), bpftest::kXdpPass);
  ASSERT_TRUE(path_->update_valid_ports({{b, 5000}, {b, 5010}}));
  // a to 5000: valid for b only, so a roaming candidate (docs/protocol.md
  // §11.6), not a valid pair.
  const std::uint64_t roaming = path_->counters()->total(BpfCounter::kPassRoam);
  const std::uint64_t passed = path_->counters()->total(BpfCounter::kPass);
  EXPECT_EQ(verdict(a, 5000), bpftest::kXdpPass);
  EXPECT_EQ(path_->counters()->total(BpfCounter::kPassRoam), roaming + 1);
  EXPECT_EQ(path_->counters()->total(BpfCounter::kPass), passed);
  EXPECT_EQ(verdict(b, 5000), bpftest::kXdpPass);
  EXPECT_EQ(verdict(a, 5001), bpftest::kXdpDrop);
  EXPECT_EQ(verdict(b, 5010), bpftest::kXdpPass);  // 5000, 5001 and 5010 share a word
  ASSERT_TRUE(path_->update_valid_ports({}));
  EXPECT_EQ(verdict(b, 5000), bpftest::kXdpDrop);
  EXPECT_EQ(verdict(b, 5010), bpftest::kXdpDrop);
}

// Not a test of speed (nothing is asserted about time): it prints what a
// window change costs with 64 sessions for the "< 1 ms" figure.
TEST_F(ValidPortMapTest, WindowChangeTimeFor64Sessions) {
  constexpr int kSessions = 64;
  // A stand-in for the port schedule: any well-mixed function of (session,
  // window) into the hopping range.
  auto port = [](int session, std::uint32_t window) {
    std::uint64_t x = (static_cast<std::uint64_t>(session) << 32) ^ window;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return static_cast<std::uint16_t>(wire::kMinPort + x % wire::kPortRange);
  };
  auto ports_for = [&](std::uint32_t w, std::uint32_t d) {
    std::vector<ValidPort> out;
    for (int s = 0; s < kSessions; ++s) {
      std::array<std::uint8_t, 4> peer{198, 18, static_cast<std::uint8_t>(s / 256),
                                       static_cast<std::uint8_t>(s % 256 + 1)};
      for (std::uint32_t k = w - d; k <= w + d; ++k) {
        out.push_back({IpAddress::v4(peer), port(s, k), 1000u + static_cast<std::uint64_t>(s), k});
      }
    }
    return out;
  };
  for (std::uint32_t d : {1u, 4u, 16u}) {
    ASSERT_TRUE(path_->update_valid_ports({}));
    auto fill = path_->update_valid_ports(ports_for(1000, d));
    ASSERT_TRUE(fill) << fill.error().message;
    constexpr int kChanges = 200;
    std::chrono::nanoseconds total{0};
    std::chrono::nanoseconds worst{0};
    std::chrono::nanoseconds total_call{0};
    for (std::uint32_t w = 1001; w < 1001 + kChanges; ++w) {
      const std::vector<ValidPort> next = ports_for(w, d);
      const auto start = std::chrono::steady_clock::now();
      auto t = path_->update_valid_ports(next);
      total_call += std::chrono::steady_clock::now() - start;
      ASSERT_TRUE(t) << t.error().message;
      total += *t;
      worst = std::max(worst, *t);
    }
    const std::size_t entries = path_->valid_port_count();
    EXPECT_GT(entries, static_cast<std::size_t>(kSessions * (2 * d + 1) * 9 / 10));
    EXPECT_LE(entries, static_cast<std::size_t>(kSessions * (2 * d + 1)));
    std::printf(
        "[ map update ] 64 sessions, d=%u (%zu entries): fill %.1f us; window change (64 added + "
        "64 removed) map time avg %.1f us, worst %.1f us; whole call avg %.1f us\n",
        d, entries, static_cast<double>(fill->count()) / 1e3,
        static_cast<double>(total.count()) / kChanges / 1e3,
        static_cast<double>(worst.count()) / 1e3,
        static_cast<double>(total_call.count()) / kChanges / 1e3);
  }
}

// ---- Security events ------------------------------------------------------------------

class SecurityEventTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string skip;
    path_ = bpftest::load_filter({}, skip);
    if (!path_ && !skip.empty()) GTEST_SKIP() << skip;
    ASSERT_TRUE(path_);
  }

  void configure(RateLimit events, std::chrono::milliseconds gap, RateLimit data = {0, 1}) {
    BpfFilterConfig c;
    c.events = events;
    c.event_source_gap = gap;
    c.data_per_source = data;
    ASSERT_TRUE(path_->set_config(c));
  }

  // One frame from `source` through XDP.
  void send(const IpAddress& source, Frame payload, std::uint16_t port = 5000) {
    FrameSpec s;
    s.source = source;
    s.destination = ip("192.0.2.1");
    s.source_port = 41000;
    s.destination_port = port;
    s.payload = std::move(payload);
    bpftest::run_frame(path_->program_fd(BpfHook::kXdp), bpftest::build_frame(s));
  }

  std::vector<SecurityEvent> drain() {
    std::vector<SecurityEvent> out;
    auto n = path_->drain_events([&](const SecurityEvent& e) { out.push_back(e); });
    EXPECT_TRUE(n) << n.error().message;
    if (n) {
      EXPECT_EQ(*n, out.size());
    }
    return out;
  }

  Frame bad_version() const {
    Frame d = buckwild_datagram();
    d[0] = 0x04;
    return d;
  }

  std::unique_ptr<EbpfPrograms> path_;
};

TEST_F(SecurityEventTest, AtMostOneEventPerSourcePerGapAndTheRestAreCounted) {
  configure({0, 1}, std::chrono::seconds(60));
  const IpAddress a = ip("192.0.2.7");
  const IpAddress b = ip("2001:db8::7");
  for (int i = 0; i < 5; ++i) send(a, bad_version());
  send(b, buckwild_datagram(), 6000);  // valid, but no port is valid for b

  pollfd p{path_->events_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 1000), 1) << "the events descriptor did not become readable";
  std::vector<SecurityEvent> events = drain();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].hook, BpfHook::kXdp);
  EXPECT_EQ(events[0].reason, BpfCounter::kDropBadVersion);
  EXPECT_EQ(events[0].source, a);
  EXPECT_EQ(events[0].source_port, 41000);
  EXPECT_EQ(events[0].destination_port, 5000);
  EXPECT_EQ(events[0].packet_type, static_cast<std::uint8_t>(wire::PacketType::kData));
  EXPECT_EQ(events[0].suppressed, 0u);
  EXPECT_GT(events[0].monotonic_ns, 0u);
  EXPECT_EQ(events[1].reason, BpfCounter::kDropBadPort);
  EXPECT_EQ(events[1].source, b);
  EXPECT_EQ(events[1].destination_port, 6000);

  auto c = path_->counters();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->get(BpfHook::kXdp, BpfCounter::kEventsSent), 2u);
  EXPECT_EQ(c->get(BpfHook::kXdp, BpfCounter::kEventsSuppressed), 4u);
  EXPECT_TRUE(drain().empty());

  // With no gap, a's next event carries the four it could not send.
  configure({0, 1}, std::chrono::milliseconds(0));
  send(a, bad_version());
  events = drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].source, a);
  EXPECT_EQ(events[0].suppressed, 4u);
}

TEST_F(SecurityEventTest, DropsNotYetReportedAreTakenWithTheLatestReason) {
  configure({0, 1}, std::chrono::seconds(60));
  const IpAddress a = ip("192.0.2.7");
  const IpAddress b = ip("2001:db8::7");
  for (int i = 0; i < 3; ++i) send(a, bad_version());
  send(a, buckwild_datagram(), 6000);  // no port is valid for a: the latest reason changes
  send(b, bad_version());              // reported, nothing left over
  ASSERT_EQ(drain().size(), 2u);

  struct Left {
    IpAddress source;
    BpfCounter reason;
    std::uint64_t count;
  };
  std::vector<Left> left;
  auto take = [&] {
    left.clear();
    auto n = path_->take_unreported(
        [&](const IpAddress& s, BpfCounter r, std::uint64_t c) { left.push_back({s, r, c}); });
    EXPECT_TRUE(n) << n.error().message;
    if (n) {
      EXPECT_EQ(*n, left.size());
    }
  };
  take();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].source, a);
  EXPECT_EQ(left[0].reason, BpfCounter::kDropBadPort);
  EXPECT_EQ(left[0].count, 3u);
  take();  // taken once: not counted again
  EXPECT_TRUE(left.empty());

  // Nor does a's next event carry them.
  configure({0, 1}, std::chrono::milliseconds(0));
  send(a, bad_version());
  std::vector<SecurityEvent> events = drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].suppressed, 0u);
}

TEST_F(SecurityEventTest, AGlobalRateBoundsEventsFromManySources) {
  configure({1, 2}, std::chrono::milliseconds(0));  // two at once, then one a second
  for (int i = 1; i <= 5; ++i) {
    std::array<std::uint8_t, 4> source{203, 0, 113, static_cast<std::uint8_t>(i)};
    send(IpAddress::v4(source), bad_version());
  }
  EXPECT_EQ(drain().size(), 2u);
  auto c = path_->counters();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->get(BpfHook::kXdp, BpfCounter::kEventsSent), 2u);
  EXPECT_EQ(c->get(BpfHook::kXdp, BpfCounter::kEventsSuppressed), 3u);
}

TEST_F(SecurityEventTest, RateLimitTripsAreReported) {
  configure({0, 1}, std::chrono::milliseconds(0), RateLimit{1, 1});
  const IpAddress a = ip("192.0.2.7");
  ASSERT_TRUE(path_->update_valid_ports({ValidPort{a, 5000}}));
  send(a, buckwild_datagram());
  send(a, buckwild_datagram());
  std::vector<SecurityEvent> events = drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].reason, BpfCounter::kDropRateLimited);
  EXPECT_EQ(bpf_counter_name(events[0].reason), "drop_rate_limited");
}

}  // namespace
}  // namespace buckwild::daemon

// sk_lookup (bw_sk_lookup): datagrams for a valid (source, port) are steered
// to the daemon's one socket; everything else goes to the normal lookup.
// First with BPF_PROG_TEST_RUN on lookup contexts, then with real datagrams on
// loopback, each in a private network namespace (steering attaches to it).
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "bpf_test_support.h"
#include "support/daemon_test_support.h"

namespace buckwild::daemon {
namespace {

using bpftest::Frame;
using testing::run_isolated;

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

std::uint64_t cookie_of(int fd) {
  std::uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  EXPECT_EQ(::getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len), 0);
  return cookie;
}

// Runs the sk_lookup program on one lookup and returns the cookie of the
// socket it selected (0: none) and its return value.
struct Lookup {
  std::uint64_t cookie = 0;
  std::uint32_t retval = 0;
};
Lookup run_lookup(int prog_fd, const IpAddress& remote, std::uint16_t local_port,
                  std::uint32_t protocol = IPPROTO_UDP) {
  bpf_sk_lookup ctx{};
  ctx.protocol = protocol;
  ctx.remote_port = htons(40000);
  ctx.local_port = local_port;
  if (remote.is_v4()) {
    ctx.family = AF_INET;
    std::memcpy(&ctx.remote_ip4, remote.bytes().data(), 4);
    const std::uint8_t local[4] = {127, 0, 0, 1};
    std::memcpy(&ctx.local_ip4, local, 4);
  } else {
    ctx.family = AF_INET6;
    std::memcpy(ctx.remote_ip6, remote.bytes().data(), 16);
    ctx.local_ip6[3] = htonl(1);
  }
  bpf_test_run_opts opts{};
  opts.sz = sizeof opts;
  opts.ctx_in = &ctx;
  opts.ctx_size_in = sizeof ctx;
  opts.ctx_out = &ctx;
  opts.ctx_size_out = sizeof ctx;
  opts.repeat = 1;
  int err = bpf_prog_test_run_opts(prog_fd, &opts);
  EXPECT_EQ(err, 0) << "BPF_PROG_TEST_RUN: " << std::strerror(-err);
  return {ctx.cookie, opts.retval};
}

constexpr std::uint32_t kSkPass = 1;

TEST(SkLookupTest, TestRunSelectsTheDaemonSocketForValidPairsOnly) {
  BUCKWILD_SKIP_UNLESS_BPF_AND_ROOT();
  run_isolated(CLONE_NEWNET, [] {
    bpftest::loopback_up();
    std::string skip;
    auto path = bpftest::load_filter({}, skip);
    ASSERT_TRUE(path);
    UniqueFd daemon_socket = bpftest::plain_udp_socket(*SocketAddress::parse("[::]", 0));
    ASSERT_TRUE(path->steer_to_socket(daemon_socket.get()));
    const std::uint64_t cookie = cookie_of(daemon_socket.get());
    ASSERT_TRUE(path->update_valid_ports({
        ValidPort{ip("192.0.2.7"), 23456},
        ValidPort{ip("2001:db8::7"), 34567},
    }));
    const int prog = path->program_fd(BpfHook::kSkLookup);
    auto before = *path->counters();

    Lookup v4 = run_lookup(prog, ip("192.0.2.7"), 23456);
    EXPECT_EQ(v4.retval, kSkPass);
    EXPECT_EQ(v4.cookie, cookie);
    Lookup v6 = run_lookup(prog, ip("2001:db8::7"), 34567);
    EXPECT_EQ(v6.retval, kSkPass);
    EXPECT_EQ(v6.cookie, cookie);
    auto after = *path->counters();
    EXPECT_EQ(bpftest::counter_delta(before, after).get(BpfHook::kSkLookup, BpfCounter::kPass), 2u);

    // Wrong port, wrong source, TCP: no selection, normal lookup continues.
    before = after;
    for (Lookup l :
         {run_lookup(prog, ip("192.0.2.7"), 23457), run_lookup(prog, ip("192.0.2.8"), 23456),
          run_lookup(prog, ip("2001:db8::7"), 23456),
          run_lookup(prog, ip("192.0.2.7"), 23456, IPPROTO_TCP)}) {
      EXPECT_EQ(l.retval, kSkPass);
      EXPECT_EQ(l.cookie, 0u);
    }
    after = *path->counters();
    auto delta = bpftest::counter_delta(before, after);
    EXPECT_EQ(delta.get(BpfHook::kSkLookup, BpfCounter::kNotOurs), 4u) << bpftest::describe(delta);
    EXPECT_EQ(delta.get(BpfHook::kSkLookup, BpfCounter::kPass), 0u);
  });
}

TEST(SkLookupTest, TestRunCountsAValidPairWithoutASocketAsSteerFailed) {
  std::string skip;
  auto path = bpftest::load_filter({}, skip);
  if (!path && !skip.empty()) GTEST_SKIP() << skip;
  ASSERT_TRUE(path);
  ASSERT_TRUE(path->update_valid_ports({ValidPort{ip("192.0.2.7"), 23456}}));
  auto before = *path->counters();
  Lookup l = run_lookup(path->program_fd(BpfHook::kSkLookup), ip("192.0.2.7"), 23456);
  EXPECT_EQ(l.retval, kSkPass);
  EXPECT_EQ(l.cookie, 0u);
  auto delta = bpftest::counter_delta(before, *path->counters());
  EXPECT_EQ(delta.get(BpfHook::kSkLookup, BpfCounter::kSteerFailed), 1u)
      << bpftest::describe(delta);
}

// Real datagrams to ports nobody has bound arrive on the daemon's socket,
// which sees the port they were sent to (IP_ORIGDSTADDR).
// `sender_bind` is where the peer's socket binds, `address` the loopback
// address both ends use.
void check_real_steering(const char* daemon_bind, const char* sender_bind, const char* address) {
  bpftest::loopback_up();
  std::string skip;
  auto path = bpftest::load_filter({}, skip);
  ASSERT_TRUE(path);
  auto daemon_socket = UdpSocket::bind({*SocketAddress::parse(daemon_bind, 0), 0, 0});
  ASSERT_TRUE(daemon_socket) << daemon_socket.error().message;
  auto steered = path->steer_to_socket((*daemon_socket)->fd());
  ASSERT_TRUE(steered) << steered.error().message;
  UniqueFd sender = bpftest::plain_udp_socket(*SocketAddress::parse(sender_bind, 0));
  const IpAddress peer_ip = ip(address);
  const IpAddress local_ip = ip(address);
  ASSERT_TRUE(path->update_valid_ports({ValidPort{peer_ip, 23456}, ValidPort{peer_ip, 45678}}));

  for (int p : {23456, 45678}) {
    const auto port = static_cast<std::uint16_t>(p);
    SCOPED_TRACE("port " + std::to_string(port));
    const Frame d = bpftest::marker(static_cast<std::uint8_t>(port));
    bpftest::send_datagram(sender.get(), d, SocketAddress{local_ip, port});
    auto got = bpftest::receive_one(**daemon_socket);
    ASSERT_TRUE(got) << "not steered";
    EXPECT_EQ(got->payload, d);
    EXPECT_EQ(got->destination.port, port);
    EXPECT_EQ(got->source.ip, peer_ip);
  }

  // A port not valid now is not steered: the marker sent after it is the
  // next thing the daemon's socket sees.
  bpftest::send_datagram(sender.get(), bpftest::marker(1), SocketAddress{local_ip, 23457});
  const Frame next = bpftest::marker(2);
  bpftest::send_datagram(sender.get(), next, SocketAddress{local_ip, 23456});
  auto got = bpftest::receive_one(**daemon_socket);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->payload, next);

  // After the window moves on, the old port is no longer steered.
  ASSERT_TRUE(path->update_valid_ports({ValidPort{peer_ip, 45678}}));
  bpftest::send_datagram(sender.get(), bpftest::marker(3), SocketAddress{local_ip, 23456});
  const Frame last = bpftest::marker(4);
  bpftest::send_datagram(sender.get(), last, SocketAddress{local_ip, 45678});
  got = bpftest::receive_one(**daemon_socket);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->payload, last);
}

TEST(SkLookupTest, SteersRealIpv4DatagramsToTheDaemonSocket) {
  BUCKWILD_SKIP_UNLESS_BPF_AND_ROOT();
  run_isolated(CLONE_NEWNET, [] { check_real_steering("127.0.0.1", "127.0.0.1", "127.0.0.1"); });
}

TEST(SkLookupTest, SteersRealIpv6DatagramsToTheDaemonSocket) {
  BUCKWILD_SKIP_UNLESS_BPF_AND_ROOT();
  run_isolated(CLONE_NEWNET, [] { check_real_steering("[::1]", "[::1]", "::1"); });
}

TEST(SkLookupTest, SteersIpv4DatagramsToADualStackSocket) {
  BUCKWILD_SKIP_UNLESS_BPF_AND_ROOT();
  run_isolated(CLONE_NEWNET, [] { check_real_steering("[::]", "127.0.0.1", "127.0.0.1"); });
}

// Issue 20 defect 7: a datagram to a valid pair that the frame filter finds
// to be another application's (not of the pair's session, and that
// application's unconnected socket has the port) is not steered; the
// session's next datagram on the same tuple is again.
TEST(SkLookupTest, LeavesATupleTheFrameFilterFoundForeignToTheKernel) {
  BUCKWILD_SKIP_UNLESS_BPF_AND_ROOT();
  run_isolated(CLONE_NEWNET, [] {
    bpftest::loopback_up();
    std::string skip;
    auto path = bpftest::load_filter({}, skip);
    ASSERT_TRUE(path);
    UniqueFd daemon_socket = bpftest::plain_udp_socket(*SocketAddress::parse("[::]", 0));
    ASSERT_TRUE(path->steer_to_socket(daemon_socket.get()));
    const std::uint64_t cookie = cookie_of(daemon_socket.get());
    ASSERT_TRUE(path->update_valid_ports({ValidPort{ip("192.0.2.7"), 23456, 0x0123456789ABCDEFull, 1, 0}}));
    UniqueFd app = bpftest::plain_udp_socket(*SocketAddress::parse("0.0.0.0", 23456));
    const int xdp = path->program_fd(BpfHook::kXdp);
    const int prog = path->program_fd(BpfHook::kSkLookup);

    bpftest::FrameSpec reply;
    reply.source = ip("192.0.2.7");
    reply.destination = ip("192.0.2.1");
    reply.source_port = 40000;  // run_lookup's remote port
    reply.destination_port = 23456;
    reply.payload = Frame(30, 0xEE);  // a DNS reply, say
    EXPECT_EQ(bpftest::run_frame(xdp, bpftest::build_frame(reply)), bpftest::kXdpPass);
    auto before = *path->counters();
    Lookup l = run_lookup(prog, ip("192.0.2.7"), 23456);
    EXPECT_EQ(l.retval, kSkPass);
    EXPECT_EQ(l.cookie, 0u) << "steered to the daemon";
    auto delta = bpftest::counter_delta(before, *path->counters());
    EXPECT_EQ(delta.get(BpfHook::kSkLookup, BpfCounter::kPassForeign), 1u) << bpftest::describe(delta);

    // The session's own datagram on the tuple: steered again.
    reply.payload = bpftest::buckwild_datagram();
    EXPECT_EQ(bpftest::run_frame(xdp, bpftest::build_frame(reply)), bpftest::kXdpPass);
    l = run_lookup(prog, ip("192.0.2.7"), 23456);
    EXPECT_EQ(l.cookie, cookie);
  });
}

TEST(SkLookupTest, RefusesSocketsThatAreNotUdp) {
  std::string skip;
  auto path = bpftest::load_filter({}, skip);
  if (!path && !skip.empty()) GTEST_SKIP() << skip;
  ASSERT_TRUE(path);
  UniqueFd tcp(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto r = path->steer_to_socket(tcp.get());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().sys_errno, EPROTOTYPE);
  auto bad = path->steer_to_socket(-1);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().sys_errno, EBADF);
}

}  // namespace
}  // namespace buckwild::daemon

// The socket filter (bw_socket_filter) on a real UDP socket over loopback, in
// a private network namespace. Real sockets rather than BPF_PROG_TEST_RUN:
// the test run hands socket filters the packet from its IP header, while on a
// UDP socket the filter sees it from the UDP header, which is what the program
// is written for and what must be tested.
#include <gtest/gtest.h>

#include <string>

#include "bpf_test_support.h"
#include "support/daemon_test_support.h"

namespace buckwild::daemon {
namespace {

using bpftest::buckwild_datagram;
using bpftest::Frame;
using testing::run_isolated;

void check_socket_filter(const char* receiver_address, const char* sender_address) {
  bpftest::loopback_up();
  std::string skip;
  auto path = bpftest::load_filter(BpfFilterConfig{}, skip);
  ASSERT_TRUE(path);
  auto receiver = UdpSocket::bind({*SocketAddress::parse(receiver_address, 0), 0, 0});
  ASSERT_TRUE(receiver) << receiver.error().message;
  ASSERT_TRUE(path->attach_socket_filter((*receiver)->fd()));
  UniqueFd sender = bpftest::plain_udp_socket(*SocketAddress::parse(sender_address, 0));
  SocketAddress to = (*receiver)->local_address();
  if (to.ip.is_unspecified()) to.ip = *IpAddress::parse("127.0.0.1");

  auto counters = [&] {
    auto c = path->counters();
    EXPECT_TRUE(c);
    return c ? *c : BpfCounters{};
  };

  // A well-formed datagram arrives intact.
  {
    const Frame valid = buckwild_datagram(wire::PacketType::kData, 500);
    const BpfCounters before = counters();
    bpftest::send_datagram(sender.get(), valid, to);
    auto got = bpftest::receive_one(**receiver);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->payload, valid);
    bpftest::expect_single_verdict(bpftest::counter_delta(before, counters()), BpfHook::kSocket,
                                   BpfCounter::kPass);
  }

  struct Bad {
    const char* what;
    Frame datagram;
    BpfCounter counter;
  };
  std::vector<Bad> bad;
  {
    Frame d = buckwild_datagram();
    d[0] = 0x03;
    bad.push_back({"bad version", d, BpfCounter::kDropBadVersion});
  }
  {
    Frame d = buckwild_datagram();
    d[1] = 0x42;
    bad.push_back({"unknown type", d, BpfCounter::kDropUnknownType});
  }
  {
    Frame d = buckwild_datagram();
    d[3] = 0x01;
    bad.push_back({"reserved byte", d, BpfCounter::kDropBadHeader});
  }
  {
    Frame d = buckwild_datagram(wire::PacketType::kData, 1);
    d.resize(59);
    bad.push_back({"truncated", d, BpfCounter::kDropTruncated});
  }
  bad.push_back({"empty", Frame{}, BpfCounter::kDropTruncated});
  {
    Frame d = buckwild_datagram(wire::PacketType::kData, 100);
    d[39] = 0x70;
    bad.push_back({"payload length", d, BpfCounter::kDropBadLength});
  }
  // Larger than any Buckwild datagram (loopback's MTU lets it through whole).
  bad.push_back({"over 9000 bytes",
                 buckwild_datagram(wire::PacketType::kData, wire::kMaxDatagramSize - 59),
                 BpfCounter::kDropBadLength});

  std::uint8_t tag = 1;
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.what);
    const BpfCounters before = counters();
    bpftest::send_datagram(sender.get(), b.datagram, to);
    const Frame next = bpftest::marker(tag);
    bpftest::send_datagram(sender.get(), next, to);
    auto got = bpftest::receive_one(**receiver);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->payload, next) << "the bad datagram was delivered";
    BpfCounters delta = bpftest::counter_delta(before, counters());
    EXPECT_EQ(delta.get(BpfHook::kSocket, b.counter), 1u) << bpftest::describe(delta);
    EXPECT_EQ(delta.get(BpfHook::kSocket, BpfCounter::kPass), 1u) << bpftest::describe(delta);
    ++tag;
  }

  // The first drop (bad version) was reported; the others from the same
  // source fell inside the one-second gap and were counted instead.
  std::vector<SecurityEvent> events;
  auto drained = path->drain_events([&](const SecurityEvent& e) { events.push_back(e); });
  ASSERT_TRUE(drained) << drained.error().message;
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].hook, BpfHook::kSocket);
  EXPECT_EQ(events[0].reason, BpfCounter::kDropBadVersion);
  EXPECT_EQ(events[0].source,
            to.ip.is_v4() ? *IpAddress::parse("127.0.0.1") : *IpAddress::parse("::1"));
  EXPECT_EQ(events[0].destination_port, to.port);
  EXPECT_EQ(counters().get(BpfHook::kSocket, BpfCounter::kEventsSuppressed), bad.size() - 1);
}

TEST(SocketFilterTest, OnlyWellFormedDatagramsReachAnIpv4Socket) {
  BUCKWILD_SKIP_UNLESS_BPF_AND_ROOT();
  run_isolated(CLONE_NEWNET, [] { check_socket_filter("127.0.0.1", "127.0.0.1"); });
}

TEST(SocketFilterTest, OnlyWellFormedDatagramsReachAnIpv6Socket) {
  BUCKWILD_SKIP_UNLESS_BPF_AND_ROOT();
  run_isolated(CLONE_NEWNET, [] { check_socket_filter("[::1]", "[::1]"); });
}

TEST(SocketFilterTest, DualStackSocketFiltersIpv4Too) {
  BUCKWILD_SKIP_UNLESS_BPF_AND_ROOT();
  run_isolated(CLONE_NEWNET, [] { check_socket_filter("[::]", "127.0.0.1"); });
}

}  // namespace
}  // namespace buckwild::daemon

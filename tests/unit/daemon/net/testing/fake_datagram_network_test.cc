#include "daemon/net/testing/fake_datagram_network.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <array>
#include <vector>

namespace buckwild::daemon {
namespace {

SocketAddress addr(const char* text) {
  return *SocketAddress::parse(text, 1);
}

Bytes bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

struct Receiver {
  std::array<std::array<std::uint8_t, 256>, 8> storage;
  std::array<ReceivedDatagram, 8> slots;
  Receiver() {
    for (std::size_t i = 0; i < slots.size(); ++i) slots[i].buffer = storage[i];
  }
  std::size_t receive(DatagramSocket& s) {
    auto n = s.receive_batch(slots);
    EXPECT_TRUE(n);
    return n.value_or(0);
  }
  std::string text(std::size_t i) const {
    return std::string(reinterpret_cast<const char*>(storage[i].data()), slots[i].length);
  }
};

TEST(FakeDatagramNetworkTest, TwoSocketsExchangeDatagrams) {
  FakeDatagramNetwork net;
  auto a = net.bind(addr("10.200.0.1:1025"));
  auto b = net.bind(addr("10.200.0.2:1025"));
  ASSERT_TRUE(a && b);
  std::string hello = "hello";
  std::string world = "world";
  std::array<OutgoingDatagram, 2> out = {
      OutgoingDatagram{bytes_of(hello), addr("10.200.0.2:1025"), {}},
      OutgoingDatagram{bytes_of(world), addr("10.200.0.2:1025"), {}}};
  EXPECT_FALSE(readable((*b)->fd()));
  auto sent = (*a)->send_batch(out);
  ASSERT_TRUE(sent);
  EXPECT_EQ(*sent, 2u);
  EXPECT_TRUE(readable((*b)->fd()));
  Receiver r;
  ASSERT_EQ(r.receive(**b), 2u);
  EXPECT_EQ(r.text(0), "hello");
  EXPECT_EQ(r.text(1), "world");
  EXPECT_EQ(r.slots[0].source, addr("10.200.0.1:1025"));
  EXPECT_EQ(r.slots[0].destination, addr("10.200.0.2:1025"));
  EXPECT_FALSE(readable((*b)->fd()));
  EXPECT_EQ(net.delivered(), 2u);
}

TEST(FakeDatagramNetworkTest, AddressInUseAndRebindAfterClose) {
  FakeDatagramNetwork net;
  auto a = net.bind(addr("10.200.0.1:4000"));
  ASSERT_TRUE(a);
  auto again = net.bind(addr("10.200.0.1:4000"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().sys_errno, EADDRINUSE);
  EXPECT_NE(again.error().message.find("port 4000 is already in use"), std::string::npos);
  a->reset();
  EXPECT_TRUE(net.bind(addr("10.200.0.1:4000")));
}

TEST(FakeDatagramNetworkTest, EphemeralPortsAndWildcardBinding) {
  FakeDatagramNetwork net;
  auto eph = net.bind(addr("10.200.0.1:0"));
  ASSERT_TRUE(eph);
  EXPECT_GE((*eph)->local_address().port, 49152);
  auto wild =
      net.bind(SocketAddress{IpAddress::any(IpFamily::kV4), 1025}, *IpAddress::parse("10.200.0.2"));
  ASSERT_TRUE(wild);
  std::string m = "x";
  std::array<OutgoingDatagram, 1> out = {
      OutgoingDatagram{bytes_of(m), addr("10.200.0.2:1025"), {}}};
  ASSERT_TRUE((*eph)->send_batch(out));
  Receiver r;
  ASSERT_EQ(r.receive(**wild), 1u);
  EXPECT_EQ(r.slots[0].destination, addr("10.200.0.2:1025"));
  // Replies from the wildcard socket come from its host address.
  out[0].destination = (*eph)->local_address();
  ASSERT_TRUE((*wild)->send_batch(out));
  ASSERT_EQ(r.receive(**eph), 1u);
  EXPECT_EQ(r.slots[0].source, addr("10.200.0.2:1025"));
}

TEST(FakeDatagramNetworkTest, FilterCapacityAndNobodyHomeDrop) {
  FakeDatagramNetwork net;
  auto a = net.bind(addr("10.200.0.1:1"));
  auto b = net.bind(addr("10.200.0.2:1"), std::nullopt, 2);
  ASSERT_TRUE(a && b);
  std::string m = "m";
  std::vector<OutgoingDatagram> out(3, OutgoingDatagram{bytes_of(m), addr("10.200.0.2:1"), {}});
  out.push_back(OutgoingDatagram{bytes_of(m), addr("10.200.0.9:1"), {}});  // nobody there
  EXPECT_EQ(*(*a)->send_batch(out), 4u);
  EXPECT_EQ(net.delivered(), 2u);
  EXPECT_EQ(net.dropped(), 2u);
  Receiver r;
  EXPECT_EQ(r.receive(**b), 2u);

  int seen = 0;
  net.set_filter([&](const SocketAddress& from, const SocketAddress& to, Bytes payload) {
    ++seen;
    EXPECT_EQ(from, addr("10.200.0.1:1"));
    EXPECT_EQ(to, addr("10.200.0.2:1"));
    EXPECT_EQ(payload.size(), 1u);
    return seen % 2 == 0;  // drop every other one
  });
  (*a)->send_batch(std::span(out).first(2));
  EXPECT_EQ(seen, 2);
  EXPECT_EQ(r.receive(**b), 1u);
}

TEST(FakeDatagramNetworkTest, TruncatesIntoShortBuffers) {
  FakeDatagramNetwork net;
  auto a = net.bind(addr("10.200.0.1:1"));
  auto b = net.bind(addr("10.200.0.2:1"));
  std::string big(100, 'z');
  std::array<OutgoingDatagram, 1> out = {OutgoingDatagram{bytes_of(big), addr("10.200.0.2:1"), {}}};
  (*a)->send_batch(out);
  std::array<std::uint8_t, 10> small;
  std::array<ReceivedDatagram, 1> slot;
  slot[0].buffer = small;
  ASSERT_EQ(*(*b)->receive_batch(slot), 1u);
  EXPECT_EQ(slot[0].length, 10u);
  EXPECT_TRUE(slot[0].truncated);
}

}  // namespace
}  // namespace buckwild::daemon

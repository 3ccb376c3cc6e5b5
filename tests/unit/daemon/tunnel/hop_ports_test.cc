// HopPorts over an in-memory network: which sockets exist after each update,
// that a closing socket is drained first, and that a drain asking for another
// update (as a connection opened by a queued SYN does) is folded into the
// update under way instead of changing the socket table while it is walked.
#include "daemon/tunnel/hop_ports.h"

#include <gtest/gtest.h>

#include <array>

#include "daemon/ebpf/testing/fake_ebpf_path.h"
#include "daemon/net/testing/fake_datagram_network.h"
#include "daemon/os/testing/manual_event_loop.h"

namespace buckwild::daemon {
namespace {

const IpAddress kHost = *IpAddress::parse("10.200.0.2");
const IpAddress kPeer = *IpAddress::parse("10.200.0.1");
constexpr std::uint16_t kDiscoveryPort = 1025;

class HopPortsTest : public ::testing::Test {
 protected:
  std::unique_ptr<HopPorts> make(EbpfPath* ebpf = nullptr) {
    HopPorts::Deps deps{
        .loop = loop,
        .bind_socket =
            [this](const SocketAddress& at) -> SysResult<std::unique_ptr<DatagramSocket>> {
          auto s = net.bind(at);
          if (!s) return std::unexpected(s.error());
          return std::unique_ptr<DatagramSocket>(std::move(*s));
        },
        .ebpf = ebpf,
        .listen_address = kHost,
        .discovery_port = kDiscoveryPort,
        .needs =
            [this](std::vector<PortNeed>& out) {
              if (draining) ++reentered;  // an update started inside a drain
              out.insert(out.end(), needs.begin(), needs.end());
            },
        .on_readable = [this](DatagramSocket& s) { on_readable(s); },
        .on_updated = [this] { ++updated; },
    };
    return std::make_unique<HopPorts>(std::move(deps), log);
  }

  void need(std::initializer_list<std::uint16_t> ports, std::uint16_t send_from = 0) {
    needs.clear();
    for (std::uint16_t p : ports)
      needs.push_back(PortNeed{ValidPort{kPeer, p, 7, 0, 0}, p == send_from});
  }

  void send_to(std::uint16_t port) {
    std::array<std::uint8_t, 8> payload{};
    OutgoingDatagram d{payload, SocketAddress{kHost, port}, std::nullopt};
    ASSERT_TRUE(peer->send_batch({&d, 1}).has_value());
  }

  ManualEventLoop loop{seconds(1)};
  FakeDatagramNetwork net;
  RateLimitedLog log{5, seconds(10)};
  std::vector<PortNeed> needs;
  std::function<void(DatagramSocket&)> on_readable = [this](DatagramSocket& s) { drain(s); };
  int updated = 0;
  bool draining = false;
  int reentered = 0;
  std::size_t drained = 0;
  std::unique_ptr<FakeDatagramSocket> peer = *net.bind(SocketAddress{kPeer, 40000});

  void drain(DatagramSocket& s) {
    std::array<std::uint8_t, 64> buf;
    for (;;) {
      ReceivedDatagram r{buf};
      auto got = s.receive_batch({&r, 1});
      if (!got || *got == 0) return;
      ++drained;
    }
  }
};

TEST_F(HopPortsTest, OpensEveryNeededPortButTheDiscoveryPort) {
  auto hop = make();
  need({2000, 2001, kDiscoveryPort});
  hop->update(HopPorts::Closing::kCloseUnneeded);
  EXPECT_NE(hop->socket_for(2000), nullptr);
  EXPECT_NE(hop->socket_for(2001), nullptr);
  EXPECT_EQ(hop->socket_for(kDiscoveryPort), nullptr);
  EXPECT_EQ(hop->stats().open, 2u);
  EXPECT_EQ(updated, 1);
}

TEST_F(HopPortsTest, DrainsAClosingPortBeforeItGoes) {
  auto hop = make();
  need({2000, 2001, 2002});
  hop->update(HopPorts::Closing::kCloseUnneeded);
  send_to(2000);
  need({2001, 2002, 2003});  // the window moved on
  hop->update(HopPorts::Closing::kKeepAll);
  EXPECT_NE(hop->socket_for(2000), nullptr);  // kept: the caller may be inside its callback
  EXPECT_NE(hop->socket_for(2003), nullptr);  // made before break
  hop->update(HopPorts::Closing::kCloseUnneeded);
  EXPECT_EQ(hop->socket_for(2000), nullptr);
  EXPECT_EQ(drained, 1u);  // what had arrived was read first
  EXPECT_FALSE(net.bound(SocketAddress{kHost, 2000}));
}

TEST_F(HopPortsTest, AnUpdateAskedForWhileDrainingIsFoldedIntoTheOneUnderWay) {
  auto hop = make();
  need({2000, 2001});
  hop->update(HopPorts::Closing::kCloseUnneeded);
  send_to(2000);
  // Draining port 2000 opens a connection that needs many new ports at once:
  // enough to make the socket table grow (rehash) while it is being walked.
  on_readable = [&](DatagramSocket& s) {
    draining = true;
    drain(s);
    for (std::uint16_t p = 3000; p < 3200; ++p)
      needs.push_back(PortNeed{ValidPort{kPeer, p, 7, 0, 9}, false});
    hop->connections_changed();
    draining = false;
  };
  need({2001});
  hop->update(HopPorts::Closing::kCloseUnneeded);
  EXPECT_EQ(drained, 1u);
  EXPECT_EQ(hop->socket_for(2000), nullptr);
  EXPECT_EQ(reentered, 0);  // the socket table was never changed while it was walked
  EXPECT_GE(hop->stats().deferred_updates, 1u);
  for (std::uint16_t p = 3000; p < 3200; ++p) ASSERT_NE(hop->socket_for(p), nullptr) << p;
  EXPECT_EQ(hop->stats().open, 201u);
  on_readable = [this](DatagramSocket& s) { drain(s); };
  loop.run_for(milliseconds(1));  // the deferred close finds nothing more to do
  EXPECT_EQ(hop->stats().open, 201u);
}

TEST_F(HopPortsTest, TheEbpfPathSteersEveryPortAndBindsOnlyTheOneItSendsFrom) {
  auto listener = net.bind(SocketAddress{kHost, kDiscoveryPort});
  ASSERT_TRUE(listener.has_value());
  FakeEbpfPath ebpf(net, kHost, kDiscoveryPort);
  ASSERT_TRUE(ebpf.steer_to(**listener).has_value());
  auto hop = make(&ebpf);
  need({2000, 2001, 2002}, /*send_from=*/2001);
  hop->update(HopPorts::Closing::kCloseUnneeded);
  EXPECT_EQ(hop->stats().open, 1u);
  EXPECT_NE(hop->socket_for(2001), nullptr);
  EXPECT_EQ(ebpf.valid_ports().size(), 3u);
  EXPECT_EQ(hop->stats().valid_ports, 3u);
  EXPECT_TRUE(ebpf.own_ports().contains(2001));
  EXPECT_TRUE(ebpf.own_ports().contains(kDiscoveryPort));
  send_to(2000);  // steered to the one socket
  EXPECT_EQ((*listener)->pending(), 1u);
}

TEST_F(HopPortsTest, APortThatCannotBeOpenedIsCountedAndTheRestOpen) {
  auto taken = net.bind(SocketAddress{kHost, 2001});
  ASSERT_TRUE(taken.has_value());
  auto hop = make();
  need({2000, 2001, 2002});
  hop->update(HopPorts::Closing::kCloseUnneeded);
  EXPECT_EQ(hop->stats().bind_failures, 1u);
  EXPECT_EQ(hop->stats().open, 2u);
}

}  // namespace
}  // namespace buckwild::daemon

// SockDiag against the kernel's loopback: the owner of a real socket.
#include "daemon/net/sock_diag.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include "daemon/net/tcp_endpoints.h"

namespace buckwild::daemon {
namespace {

const IpAddress kLoopback = *IpAddress::parse("127.0.0.1");

TEST(SockDiagTest, TellsTheOwnerOfAConnectedSocketAndNothingOfAnUnknownOne) {
  KernelTcpEndpoints tcp;
  auto listener = tcp.listen(kLoopback);
  ASSERT_TRUE(listener) << listener.error().message;
  const SocketAddress server{kLoopback, (*listener)->port()};
  auto connecting = tcp.connect(kLoopback, server);
  ASSERT_TRUE(connecting) << connecting.error().message;
  pollfd p{connecting->stream->fd(), POLLOUT, 0};
  ASSERT_EQ(::poll(&p, 1, 2000), 1);

  SockDiag diag;
  const auto owner = diag.tcp_owner(connecting->local, server);
  ASSERT_TRUE(owner.has_value());
  EXPECT_EQ(*owner, ::geteuid());
  // Through the endpoints' own interface, as the bridge asks.
  EXPECT_EQ(tcp.owner_uid(connecting->local, server), owner);

  // No socket has this 4-tuple.
  const SocketAddress nobody{kLoopback, static_cast<std::uint16_t>(connecting->local.port ^ 1)};
  EXPECT_FALSE(diag.tcp_owner(nobody, server).has_value());
  EXPECT_FALSE(diag.tcp_owner(connecting->local, SocketAddress{*IpAddress::parse("::1"), 1}).has_value())
      << "families differ";
  // The same lookup again still works (one socket, answers in order).
  EXPECT_EQ(diag.tcp_owner(connecting->local, server), owner);
}

}  // namespace
}  // namespace buckwild::daemon

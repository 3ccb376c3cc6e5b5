// KernelTcpEndpoints against the kernel's loopback: no root needed.
#include "daemon/net/tcp_endpoints.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <cerrno>
#include <string>

namespace buckwild::daemon {
namespace {

const IpAddress kLoopback = *IpAddress::parse("127.0.0.1");

bool wait_for(int fd, short events) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, 2000) == 1 && (p.revents & events) != 0;
}

TEST(KernelTcpEndpointsTest, ListensConnectsAcceptsAndCarriesBytesAndFins) {
  KernelTcpEndpoints tcp;
  auto listener = tcp.listen(kLoopback);
  ASSERT_TRUE(listener) << listener.error().message;
  ASSERT_NE((*listener)->port(), 0);
  auto none = (*listener)->accept();
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().sys_errno, EAGAIN);

  auto connecting = tcp.connect(kLoopback, SocketAddress{kLoopback, (*listener)->port()});
  ASSERT_TRUE(connecting) << connecting.error().message;
  EXPECT_EQ(connecting->local.ip, kLoopback);
  ASSERT_TRUE(wait_for(connecting->stream->fd(), POLLOUT));
  EXPECT_EQ(connecting->stream->connect_result(), 0);

  ASSERT_TRUE(wait_for((*listener)->fd(), POLLIN));
  auto accepted = (*listener)->accept();
  ASSERT_TRUE(accepted) << accepted.error().message;
  EXPECT_EQ(accepted->peer, connecting->local) << "the listener sees the connecting socket's address";

  TcpStream& client = *connecting->stream;
  TcpStream& server = *accepted->stream;
  const std::string hello = "hello";
  EXPECT_EQ(client.write(Bytes(reinterpret_cast<const std::uint8_t*>(hello.data()), hello.size())).bytes, 5u);
  ASSERT_TRUE(wait_for(server.fd(), POLLIN));
  std::uint8_t buf[16];
  StreamIo r = server.read(buf);
  EXPECT_EQ(r.bytes, 5u);
  EXPECT_EQ(std::string(buf, buf + r.bytes), hello);
  r = server.read(buf);
  EXPECT_TRUE(r.would_block);

  client.shutdown_write();
  ASSERT_TRUE(wait_for(server.fd(), POLLIN));
  r = server.read(buf);
  EXPECT_TRUE(r.eof);
  EXPECT_EQ(server.write(Bytes(buf, 1)).bytes, 1u) << "half-closed: the other way still works";
}

TEST(KernelTcpEndpointsTest, ConnectingToAClosedPortReportsConnectionRefused) {
  KernelTcpEndpoints tcp;
  std::uint16_t port = 0;
  {
    auto l = tcp.listen(kLoopback);  // a port that was free, and is closed again
    ASSERT_TRUE(l);
    port = (*l)->port();
  }
  auto connecting = tcp.connect(kLoopback, SocketAddress{kLoopback, port});
  ASSERT_TRUE(connecting) << connecting.error().message;
  ASSERT_TRUE(wait_for(connecting->stream->fd(), POLLOUT));
  EXPECT_EQ(connecting->stream->connect_result(), ECONNREFUSED);
}

TEST(KernelTcpEndpointsTest, AbortOnCloseResetsThePeer) {
  KernelTcpEndpoints tcp;
  auto listener = tcp.listen(kLoopback);
  ASSERT_TRUE(listener);
  auto connecting = tcp.connect(kLoopback, SocketAddress{kLoopback, (*listener)->port()});
  ASSERT_TRUE(connecting);
  ASSERT_TRUE(wait_for((*listener)->fd(), POLLIN));
  auto accepted = (*listener)->accept();
  ASSERT_TRUE(accepted);
  accepted->stream->abort_on_close();
  accepted->stream.reset();
  ASSERT_TRUE(wait_for(connecting->stream->fd(), POLLIN));
  std::uint8_t buf[4];
  const StreamIo r = connecting->stream->read(buf);
  EXPECT_EQ(r.error, ECONNRESET) << "an RST, not a FIN";
}

}  // namespace
}  // namespace buckwild::daemon

#include "daemon/net/testing/fake_tcp_endpoints.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

namespace buckwild::daemon {
namespace {

const IpAddress kV = *IpAddress::parse("10.77.0.1");
const SocketAddress kPeer{*IpAddress::parse("10.77.0.2"), 1024};

bool ready(int fd, short events) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & events) != 0;
}

TEST(FakeTcpEndpointsTest, ListenerIsReadableExactlyWhileConnectionsAreQueued) {
  FakeTcpEndpoints tcp;
  auto l = tcp.listen(kV);
  ASSERT_TRUE(l);
  EXPECT_FALSE(tcp.listen(kV)) << "one listener per address";
  EXPECT_FALSE(ready((*l)->fd(), POLLIN));
  auto app = tcp.push_connection(kV, kPeer);
  ASSERT_TRUE(app);
  EXPECT_TRUE(ready((*l)->fd(), POLLIN));
  auto a = (*l)->accept();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->peer, kPeer);
  EXPECT_FALSE(ready((*l)->fd(), POLLIN));
  EXPECT_EQ((*l)->accept().error().sys_errno, EAGAIN);
  ASSERT_EQ(::send(app->get(), "x", 1, 0), 1);
  std::uint8_t b[1];
  EXPECT_EQ(a->stream->read(b).bytes, 1u);
}

TEST(FakeTcpEndpointsTest, FailingAcceptsLeaveTheConnectionQueued) {
  FakeTcpEndpoints tcp;
  auto l = tcp.listen(kV);
  ASSERT_TRUE(l);
  ASSERT_TRUE(tcp.push_connection(kV, kPeer));
  tcp.fail_accepts_with(kV, EMFILE);
  EXPECT_EQ((*l)->accept().error().sys_errno, EMFILE);
  EXPECT_EQ(tcp.pending_connections(kV), 1u);
  EXPECT_TRUE(ready((*l)->fd(), POLLIN));
  tcp.fail_accepts_with(kV, 0);
  EXPECT_TRUE((*l)->accept());
  EXPECT_EQ(tcp.accept_calls(kV), 2u);
}

TEST(FakeTcpEndpointsTest, ConnectOutcomesPerTarget) {
  FakeTcpEndpoints tcp;
  const SocketAddress ok{kV, 1}, refused{kV, 2}, pending{kV, 3}, unreachable{kV, 4};
  tcp.set_connect_outcome(refused, FakeTcpEndpoints::ConnectOutcome::kRefuse);
  tcp.set_connect_outcome(pending, FakeTcpEndpoints::ConnectOutcome::kPending);
  tcp.set_connect_outcome(unreachable, FakeTcpEndpoints::ConnectOutcome::kFailNow);

  auto c = tcp.connect(kV, ok);
  ASSERT_TRUE(c);
  EXPECT_TRUE(ready(c->stream->fd(), POLLOUT));
  EXPECT_EQ(c->stream->connect_result(), 0);
  auto server = tcp.take_server(ok);
  ASSERT_TRUE(server);
  c->stream->shutdown_write();
  std::uint8_t b[1];
  EXPECT_EQ(::recv(server->get(), b, 1, MSG_DONTWAIT), 0) << "the FIN arrives";

  auto r = tcp.connect(kV, refused);
  ASSERT_TRUE(r);
  EXPECT_TRUE(ready(r->stream->fd(), POLLOUT));
  EXPECT_EQ(r->stream->connect_result(), ECONNREFUSED);

  auto p = tcp.connect(kV, pending);
  ASSERT_TRUE(p);
  EXPECT_FALSE(ready(p->stream->fd(), POLLOUT | POLLIN | POLLHUP));
  EXPECT_EQ(p->stream->connect_result(), EINPROGRESS);

  EXPECT_FALSE(tcp.connect(kV, unreachable));
  EXPECT_EQ(tcp.connect_calls().size(), 3u);
}

TEST(FakeTcpEndpointsTest, CountsAbortiveCloses) {
  FakeTcpEndpoints tcp;
  auto c = tcp.connect(kV, SocketAddress{kV, 1});
  ASSERT_TRUE(c);
  c->stream->abort_on_close();
  c->stream.reset();
  EXPECT_EQ(tcp.abortive_closes(), 1u);
}

}  // namespace
}  // namespace buckwild::daemon

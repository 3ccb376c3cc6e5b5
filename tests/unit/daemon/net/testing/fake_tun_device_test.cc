#include "daemon/net/testing/fake_tun_device.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <array>

namespace buckwild::daemon {
namespace {

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

TEST(FakeTunDeviceTest, InjectedPacketsAreReadInOrder) {
  FakeTunDevice tun("fake0");
  EXPECT_EQ(tun.name(), "fake0");
  std::array<std::uint8_t, 2000> buf;
  auto none = tun.read_packet(buf);
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, 0u);
  EXPECT_FALSE(readable(tun.fd()));

  const std::uint8_t a[] = {0x45, 1, 2};
  const std::uint8_t b[] = {0x60, 9};
  ASSERT_TRUE(tun.inject(a));
  ASSERT_TRUE(tun.inject(b));
  EXPECT_TRUE(readable(tun.fd()));
  EXPECT_EQ(tun.pending_count(), 2u);
  auto n = tun.read_packet(buf);
  ASSERT_TRUE(n);
  ASSERT_EQ(*n, 3u);
  EXPECT_EQ(buf[0], 0x45);
  EXPECT_TRUE(readable(tun.fd()));
  n = tun.read_packet(buf);
  ASSERT_EQ(*n, 2u);
  EXPECT_EQ(buf[0], 0x60);
  EXPECT_FALSE(readable(tun.fd()));
}

TEST(FakeTunDeviceTest, ShortBufferTruncatesLikeTheKernel) {
  FakeTunDevice tun("fake0");
  std::array<std::uint8_t, 100> packet{};
  packet[0] = 0x45;
  tun.inject(packet);
  std::array<std::uint8_t, 10> small;
  auto n = tun.read_packet(small);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 10u);
  EXPECT_EQ(tun.pending_count(), 0u);
}

TEST(FakeTunDeviceTest, FullQueueDrops) {
  FakeTunDevice tun("fake0", 2);
  const std::uint8_t p[] = {0x45};
  EXPECT_TRUE(tun.inject(p));
  EXPECT_TRUE(tun.inject(p));
  EXPECT_FALSE(tun.inject(p));
  EXPECT_EQ(tun.dropped(), 1u);
}

TEST(FakeTunDeviceTest, WrittenPacketsCanBeTakenAndWritesCanFail) {
  FakeTunDevice tun("fake0");
  const std::uint8_t p[] = {0x45, 0, 0, 20};
  ASSERT_TRUE(tun.write_packet(p));
  EXPECT_EQ(tun.written_count(), 1u);
  auto w = tun.take_written();
  ASSERT_TRUE(w);
  EXPECT_EQ(*w, (std::vector<std::uint8_t>{0x45, 0, 0, 20}));
  EXPECT_FALSE(tun.take_written());
  tun.fail_writes_with(EINVAL);
  auto err = tun.write_packet(p);
  ASSERT_FALSE(err);
  EXPECT_EQ(err.error().sys_errno, EINVAL);
  tun.fail_writes_with(0);
  EXPECT_TRUE(tun.write_packet(p));
}

}  // namespace
}  // namespace buckwild::daemon

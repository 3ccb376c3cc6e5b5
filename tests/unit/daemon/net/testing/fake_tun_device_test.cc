#include "daemon/net/testing/fake_tun_device.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <array>
#include <vector>

#include "unit/core/offload/offload_packets.h"

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

// A TSO read: whole from read_whole(), split by read_packet() or after
// split_gso(), as LinuxTunDevice with offloads does.
TEST(FakeTunDeviceTest, GsoReadsComeWholeOrSplit) {
  FakeTunDevice tun("fake0");
  const offload::Shape shape{.payload = 5000};
  const std::vector<std::uint8_t> tso = offload::super_packet(shape);
  const offload::VnetHeader h = offload::gso_header(shape, 1000);
  const std::uint8_t after[] = {0x45, 7};
  std::array<std::uint8_t, 2000> buf;

  // Whole, then the plain packet behind it.
  ASSERT_TRUE(tun.inject_gso(h, tso));
  ASSERT_TRUE(tun.inject(after));
  auto w = tun.read_whole(buf);
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->gso.has_value());
  EXPECT_EQ(w->size, 0u);
  EXPECT_EQ(w->gso->segments, 5u);
  EXPECT_EQ(w->gso->header.gso_size, 1000u);
  EXPECT_EQ(std::vector<std::uint8_t>(w->gso->packet.begin(), w->gso->packet.end()), tso);
  EXPECT_EQ(tun.taken_whole(), 1u);
  auto next = tun.read_whole(buf);
  ASSERT_TRUE(next);
  EXPECT_FALSE(next->gso.has_value());
  EXPECT_EQ(next->size, 2u);
  tun.split_gso();  // too late: the next read took its place
  EXPECT_EQ(tun.pending_count(), 0u);
  EXPECT_FALSE(readable(tun.fd()));

  // Declined: split_gso() puts its five segments first in line.
  ASSERT_TRUE(tun.inject_gso(h, tso));
  ASSERT_TRUE(tun.inject(after));
  w = tun.read_whole(buf);
  ASSERT_TRUE(w && w->gso);
  tun.split_gso();
  EXPECT_EQ(tun.taken_whole(), 1u);
  EXPECT_TRUE(readable(tun.fd()));
  for (std::size_t i = 0; i < 5; ++i) {
    auto r = tun.read_whole(buf);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->gso.has_value());
    EXPECT_EQ(r->size, 20u + 20 + 1000) << i;
    EXPECT_TRUE(offload::checksums_verify(std::vector<std::uint8_t>(buf.begin(), buf.begin() + 1040), 20, 6))
        << i;
  }
  auto last = tun.read_packet(buf);
  ASSERT_TRUE(last);
  EXPECT_EQ(*last, 2u);

  // read_packet() always splits.
  ASSERT_TRUE(tun.inject_gso(h, tso));
  for (std::size_t i = 0; i < 5; ++i) {
    auto r = tun.read_packet(buf);
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, 1040u) << i;
  }
  EXPECT_EQ(tun.pending_count(), 0u);
  EXPECT_FALSE(readable(tun.fd()));
  EXPECT_EQ(tun.refused(), 0u);
}

}  // namespace
}  // namespace buckwild::daemon

#include "core/offload/gro_coalesce.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "unit/core/offload/offload_packets.h"

namespace buckwild::offload {
namespace {

using Packet = std::vector<std::uint8_t>;

// The MSS-sized segments of a super-packet (gso_split is tested on its own).
std::vector<Packet> segments(const Shape& s, std::uint16_t mss, Packet* whole = nullptr) {
  Packet p = super_packet(s);
  if (whole != nullptr) *whole = p;
  SplitResult r = plan_split(gso_header(s, mss), p);
  EXPECT_TRUE(r.plan);
  std::vector<Packet> out;
  for (std::size_t i = 0; r.plan && i < r.plan->count; ++i) {
    Packet g(r.plan->max_size);
    g.resize(write_segment(*r.plan, p, i, g));
    out.push_back(g);
  }
  return out;
}

// Completes a NEEDS_CSUM super-packet's TCP checksum as the kernel would,
// computed here: the seed in the field plus every byte from csum_start.
Packet completed(Bytes b, const VnetHeader& h) {
  Packet p(b.begin(), b.end());
  const std::size_t at = h.csum_start + h.csum_offset;
  const std::uint16_t sum = static_cast<std::uint16_t>(~fold(sum_bytes(p, h.csum_start, p.size())));
  put16(p, at, sum);
  return p;
}

TEST(GroCoalesceTest, SplitSegmentsCoalesceBackIntoTheSuperPacket) {
  for (bool v6 : {false, true}) {
    Shape s{.v6 = v6, .ip_options = v6 ? 0u : 8u, .tcp_options = 12, .payload = 5 * 1300 + 11};
    Packet whole;
    auto segs = segments(s, 1300, &whole);
    ASSERT_EQ(segs.size(), 6u);
    GroCoalescer c;
    ASSERT_TRUE(c.start(segs[0]));
    for (std::size_t i = 1; i < segs.size(); ++i) EXPECT_TRUE(c.append(segs[i])) << i;
    EXPECT_EQ(c.count(), 6u);
    VnetHeader h;
    Bytes out = c.take(h);
    EXPECT_TRUE(c.empty());
    EXPECT_EQ(Packet(out.begin(), out.end()), whole) << "v6 " << v6;
    EXPECT_EQ(h.flags, vnet_flag::kNeedsCsum);
    EXPECT_EQ(h.gso_type, v6 ? gso_type::kTcpV6 : gso_type::kTcpV4);
    EXPECT_EQ(h.gso_size, 1300);
    const std::size_t t = v6 ? 40 : 28;
    EXPECT_EQ(h.csum_start, t);
    EXPECT_EQ(h.csum_offset, 16);
    EXPECT_EQ(h.hdr_len, t + 32);
    EXPECT_TRUE(checksums_verify(completed(out, h), t, 6));
  }
}

TEST(GroCoalesceTest, ASinglePacketGoesOutAsItCameWithAZeroHeader) {
  auto segs = segments(Shape{.payload = 1000}, 1000);
  ASSERT_EQ(segs.size(), 1u);
  GroCoalescer c;
  ASSERT_TRUE(c.start(segs[0]));
  VnetHeader h{1, 1, 1, 1, 1, 1};
  Bytes out = c.take(h);
  EXPECT_EQ(Packet(out.begin(), out.end()), segs[0]);
  EXPECT_EQ(h.flags, 0);
  EXPECT_EQ(h.gso_type, gso_type::kNone);
  EXPECT_EQ(h.gso_size, 0);
}

TEST(GroCoalesceTest, NonConsecutiveSequenceIsNotAppended) {
  auto segs = segments(Shape{.payload = 3000}, 1000);
  GroCoalescer c;
  c.start(segs[0]);
  EXPECT_FALSE(c.append(segs[2]));  // a hole
  EXPECT_FALSE(c.append(segs[0]));  // a duplicate
  EXPECT_TRUE(c.append(segs[1]));
  EXPECT_EQ(c.count(), 2u);
}

TEST(GroCoalesceTest, AnotherFlowIsNotAppended) {
  auto a = segments(Shape{.payload = 2000}, 1000);
  auto b = segments(Shape{.payload = 2000}, 1000);
  b[1][20 + 1] ^= 1;  // another source port
  GroCoalescer c;
  c.start(a[0]);
  EXPECT_FALSE(c.append(b[1])) << "bad checksum after the port change";
  // With the checksum right again it is still another flow.
  b[1][36] = 0, b[1][37] = 0;
  const std::uint16_t sum = static_cast<std::uint16_t>(
      ~fold(pseudo(b[1], 20, 6) + sum_bytes(b[1], 20, b[1].size())));
  put16(b[1], 36, sum);
  ASSERT_TRUE(checksums_verify(b[1], 20, 6));
  EXPECT_FALSE(c.append(b[1]));
  EXPECT_TRUE(c.append(a[1]));
}

TEST(GroCoalesceTest, ATinyLastSegmentEndsTheRun) {
  // The same bytes cut at 1000 and at 100: [1000, 1000, 100-byte pieces].
  auto big = segments(Shape{.payload = 2300, .tcp_flags = 0x10}, 1000);
  auto small = segments(Shape{.payload = 2300, .tcp_flags = 0x10}, 100);
  GroCoalescer c;
  c.start(big[0]);
  EXPECT_TRUE(c.append(big[1]));
  EXPECT_TRUE(c.append(small[20]));   // 2000..2100: smaller, accepted as the last
  EXPECT_FALSE(c.append(small[21]));  // 2100..2200: in order, but the run has ended
  EXPECT_EQ(c.count(), 3u);
}

TEST(GroCoalesceTest, PshEndsTheRunAndIsKept) {
  auto segs = segments(Shape{.payload = 3000, .tcp_flags = 0x18}, 1000);  // last has PSH
  GroCoalescer c;
  c.start(segs[0]);
  EXPECT_TRUE(c.append(segs[1]));
  EXPECT_TRUE(c.append(segs[2]));
  VnetHeader h;
  Bytes out = c.take(h);
  EXPECT_EQ(out[33] & 0x08, 0x08);
  // A run that starts with PSH takes nothing more.
  c.start(segs[2]);
  EXPECT_FALSE(c.append(segs[2]));
}

TEST(GroCoalesceTest, FinSynAndBareAcksAreWrittenSingly) {
  for (std::uint8_t flags : {std::uint8_t{0x11}, std::uint8_t{0x12}, std::uint8_t{0x02}}) {
    auto segs = segments(Shape{.payload = 2000, .tcp_flags = flags}, 1000);
    GroCoalescer c;
    c.start(segs[0]);
    EXPECT_FALSE(c.append(segs[1])) << int{flags};
  }
  auto acks = segments(Shape{.payload = 0, .tcp_flags = 0x10}, 1000);
  GroCoalescer c;
  c.start(acks[0]);
  EXPECT_FALSE(c.append(acks[0]));
}

TEST(GroCoalesceTest, DifferentOptionsOrTosAreNotAppended) {
  auto segs = segments(Shape{.tcp_options = 12, .payload = 2000}, 1000);
  auto other = segs[1];
  other[40 + 8] ^= 0xFF;  // another timestamp option byte
  put16(other, 36, 0);
  put16(other, 36, static_cast<std::uint16_t>(~fold(pseudo(other, 20, 6) + sum_bytes(other, 20, other.size()))));
  ASSERT_TRUE(checksums_verify(other, 20, 6));
  GroCoalescer c;
  c.start(segs[0]);
  EXPECT_FALSE(c.append(other));
  auto tos = segs[1];
  tos[1] = 0x03;  // CE
  put16(tos, 10, 0);
  put16(tos, 10, static_cast<std::uint16_t>(~fold(sum_bytes(tos, 0, 20))));
  EXPECT_FALSE(c.append(tos));
  EXPECT_TRUE(c.append(segs[1]));
}

TEST(GroCoalesceTest, StopsBelowSixtyFourKilobytes) {
  auto segs = segments(Shape{.payload = 46 * 1400, .tcp_flags = 0x10}, 1400);
  ASSERT_EQ(segs.size(), 46u);  // 40 + 46 * 1400 = 64440 bytes
  // One more in order: its sequence number advanced, its checksum redone.
  Packet next = segs[45];
  const std::uint32_t seq = be32(next, 24) + 1400;
  put16(next, 24, seq >> 16);
  put16(next, 26, seq & 0xFFFF);
  put16(next, 36, 0);
  put16(next, 36, static_cast<std::uint16_t>(~fold(pseudo(next, 20, 6) + sum_bytes(next, 20, next.size()))));
  ASSERT_TRUE(checksums_verify(next, 20, 6));
  GroCoalescer c;
  c.start(segs[0]);
  for (std::size_t i = 1; i < segs.size(); ++i) ASSERT_TRUE(c.append(segs[i])) << i;
  EXPECT_FALSE(c.append(next));  // 65840 bytes: past an IPv4 total length
  EXPECT_EQ(c.count(), 46u);
  VnetHeader h;
  EXPECT_EQ(c.take(h).size(), 64440u);
  // The same segment after a fresh start is fine.
  c.start(segs[45]);
  EXPECT_TRUE(c.append(next));
}

TEST(GroCoalesceTest, MalformedPacketsAreSinglesNeverAppended) {
  GroCoalescer c;
  EXPECT_TRUE(c.start(Packet{}));
  EXPECT_FALSE(c.append(Packet{0x45}));
  EXPECT_TRUE(c.start(Packet{0x45, 0, 0}));
  EXPECT_FALSE(c.append(Packet{0x45, 0, 0}));
  EXPECT_FALSE(c.start(Packet(kMaxSuperPacket + 1, 0)));
  VnetHeader h;
  EXPECT_EQ(c.take(h).size(), 3u);
}

// UDP (where the device takes USO): equal-size datagrams of one flow become
// one UDP_L4 super-packet the kernel splits back into the same datagrams.
TEST(GroCoalesceTest, UdpDatagramsCoalesceBackIntoTheUsoPacket) {
  for (bool v6 : {false, true}) {
    Shape s{.v6 = v6, .proto = 17, .ip_options = v6 ? 0u : 8u, .payload = 5 * 1200 + 7};
    Packet whole;
    auto dgrams = segments(s, 1200, &whole);
    ASSERT_EQ(dgrams.size(), 6u);
    const std::size_t t = v6 ? 40 : 28;
    for (const Packet& d : dgrams) ASSERT_TRUE(checksums_verify(d, t, 17));
    GroCoalescer c(true);
    ASSERT_TRUE(c.start(dgrams[0]));
    for (std::size_t i = 1; i < dgrams.size(); ++i) EXPECT_TRUE(c.append(dgrams[i])) << i;
    EXPECT_TRUE(c.udp_run());
    VnetHeader h;
    Bytes out = c.take(h);
    EXPECT_EQ(Packet(out.begin(), out.end()), whole) << "v6 " << v6;
    EXPECT_EQ(h.flags, vnet_flag::kNeedsCsum);
    EXPECT_EQ(h.gso_type, gso_type::kUdpL4);
    EXPECT_EQ(h.gso_size, 1200);
    EXPECT_EQ(h.csum_start, t);
    EXPECT_EQ(h.csum_offset, 6);
    EXPECT_EQ(h.hdr_len, t + 8);
    EXPECT_TRUE(checksums_verify(completed(out, h), t, 17));
    // Split as the kernel would: the datagrams that went in.
    SplitResult r = plan_split(h, out);
    ASSERT_TRUE(r.plan);
    ASSERT_EQ(r.plan->count, dgrams.size());
    for (std::size_t i = 0; i < dgrams.size(); ++i) {
      Packet g(r.plan->max_size);
      g.resize(write_segment(*r.plan, out, i, g));
      // The IPv4 id is the first's plus the index, as the datagrams had.
      EXPECT_EQ(g, dgrams[i]) << i;
    }
  }
}

TEST(GroCoalesceTest, WithoutUsoUdpDatagramsAreWrittenSingly) {
  auto dgrams = segments(Shape{.proto = 17, .payload = 3000}, 1000);
  GroCoalescer c;
  c.start(dgrams[0]);
  EXPECT_FALSE(c.append(dgrams[1]));
  c.set_udp(true);
  c.start(dgrams[0]);
  EXPECT_TRUE(c.append(dgrams[1]));
}

TEST(GroCoalesceTest, AUdpRunKeepsItsFlowAndItsSize) {
  auto dgrams = segments(Shape{.proto = 17, .payload = 2300}, 1000);  // 1000, 1000, 300
  auto bigger = segments(Shape{.proto = 17, .payload = 1200}, 1200);
  auto tcp = segments(Shape{.payload = 2000, .tcp_flags = 0x10}, 1000);
  GroCoalescer c(true);
  c.start(dgrams[0]);
  EXPECT_FALSE(c.append(bigger[0])) << "larger than the first";
  EXPECT_FALSE(c.append(tcp[1])) << "TCP joins no UDP run";
  Packet port = dgrams[1];
  port[20 + 1] ^= 1;  // another source port, checksum made right again
  put16(port, 26, 0);
  put16(port, 26, static_cast<std::uint16_t>(~fold(pseudo(port, 20, 17) + sum_bytes(port, 20, port.size()))));
  ASSERT_TRUE(checksums_verify(port, 20, 17));
  EXPECT_FALSE(c.append(port));
  Packet corrupt = dgrams[1];
  corrupt.back() ^= 0x40;
  EXPECT_FALSE(c.append(corrupt)) << "a checksum that does not verify";
  EXPECT_TRUE(c.append(dgrams[1]));
  EXPECT_TRUE(c.append(dgrams[2]));   // 300: smaller, the last
  EXPECT_FALSE(c.append(dgrams[1]));  // the run has ended
  EXPECT_EQ(c.count(), 3u);
  // An IPv4 datagram sent without a checksum is written as it came.
  Packet none = dgrams[0];
  put16(none, 26, 0);
  c.start(none);
  EXPECT_FALSE(c.append(dgrams[1]));
  EXPECT_FALSE(c.udp_run());
}

TEST(GroCoalesceTest, AUdpRunStopsAtItsDatagramBound) {
  auto dgrams = segments(Shape{.proto = 17, .payload = (kMaxUdpRun + 6) * 100}, 100);
  ASSERT_EQ(dgrams.size(), kMaxUdpRun + 6);
  GroCoalescer c(true);
  c.start(dgrams[0]);
  for (std::size_t i = 1; i < kMaxUdpRun; ++i) ASSERT_TRUE(c.append(dgrams[i])) << i;
  EXPECT_FALSE(c.append(dgrams[kMaxUdpRun]));
  EXPECT_EQ(c.count(), kMaxUdpRun);
}

}  // namespace
}  // namespace buckwild::offload

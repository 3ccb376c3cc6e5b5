#include "core/offload/gso_split.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "unit/core/offload/offload_packets.h"

namespace buckwild::offload {
namespace {

std::vector<std::vector<std::uint8_t>> split(const VnetHeader& h,
                                             const std::vector<std::uint8_t>& p) {
  SplitResult r = plan_split(h, p);
  EXPECT_TRUE(r.plan);
  std::vector<std::vector<std::uint8_t>> out;
  if (!r.plan) return out;
  for (std::size_t i = 0; i < r.plan->count; ++i) {
    std::vector<std::uint8_t> seg(r.plan->max_size + 7, 0xAA);
    seg.resize(write_segment(*r.plan, p, i, seg));
    EXPECT_LE(seg.size(), r.plan->max_size);
    out.push_back(std::move(seg));
  }
  return out;
}

void expect_payload_reassembles(const std::vector<std::vector<std::uint8_t>>& segs,
                                const std::vector<std::uint8_t>& p, std::size_t header_len) {
  std::vector<std::uint8_t> joined;
  for (const auto& s : segs) joined.insert(joined.end(), s.begin() + header_len, s.end());
  EXPECT_EQ(joined, std::vector<std::uint8_t>(p.begin() + header_len, p.end()));
}

// RFC 1071 as written: big-endian 16-bit words, a lone last byte as the high
// byte of its word, carries folded in.
std::uint32_t reference_sum(std::uint32_t acc, const std::uint8_t* p, std::size_t n) {
  std::uint64_t sum = acc;
  std::size_t i = 0;
  for (; i + 1 < n; i += 2) sum += static_cast<std::uint32_t>((p[i] << 8) | p[i + 1]);
  if (i < n) sum += static_cast<std::uint32_t>(p[i] << 8);
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<std::uint32_t>(sum);
}

TEST(GsoSplitTest, ChecksumMatchesTheRfcSumAtEveryLengthAndAlignment) {
  std::mt19937 rng(1071);
  std::vector<std::uint8_t> buf(1600 + 8);
  for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
  // Every length 0..200 and some long ones, at every alignment of 8, with
  // accumulators from zero to near the top of 32 bits.
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 200; ++n) lengths.push_back(n);
  for (std::size_t n : {1279u, 1280u, 1399u, 1400u, 1433u, 1600u}) lengths.push_back(n);
  for (std::size_t n : lengths) {
    for (std::size_t offset = 0; offset < 8; ++offset) {
      for (std::uint32_t acc : {0u, 6u, 0xFFFFu, 0x12345u, 0xFFFF0000u, 0xFFFFFFFFu}) {
        const std::uint8_t* p = buf.data() + offset;
        EXPECT_EQ(checksum_fold(checksum_add(acc, Bytes(p, n))), reference_sum(acc, p, n))
            << "length " << n << ", offset " << offset << ", acc " << acc;
      }
    }
  }
  // Carries out of every word: all ones, and all zeros stay zero.
  std::vector<std::uint8_t> ones(1500, 0xFF);
  EXPECT_EQ(checksum_fold(checksum_add(0, ones)), reference_sum(0, ones.data(), ones.size()));
  std::vector<std::uint8_t> zeros(1500, 0);
  EXPECT_EQ(checksum_fold(checksum_add(0, zeros)), 0);
}

TEST(GsoSplitTest, VnetHeaderIsLittleEndianAndRoundTrips) {
  VnetHeader h{vnet_flag::kNeedsCsum, gso_type::kTcpV4, 0x0134, 0x05A8, 0x0014, 0x0010};
  std::vector<std::uint8_t> b(kVnetHeaderSize);
  write_vnet_header(h, b);
  EXPECT_EQ(b, (std::vector<std::uint8_t>{1, 1, 0x34, 0x01, 0xA8, 0x05, 0x14, 0, 0x10, 0}));
  auto back = read_vnet_header(b);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->gso_size, 0x05A8);
  EXPECT_EQ(back->hdr_len, 0x0134);
  EXPECT_EQ(back->csum_start, 0x14);
  EXPECT_EQ(back->csum_offset, 0x10);
  EXPECT_FALSE(read_vnet_header(std::span(b).first(9)));
}

TEST(GsoSplitTest, Ipv4TcpWithOptionsSplitsIntoMssSegmentsAndATinyLast) {
  Shape s{.ip_options = 4, .tcp_options = 12, .payload = 3 * 1000 + 7, .tcp_flags = 0x80 | 0x19};
  auto p = super_packet(s);  // CWR|ACK|PSH|FIN
  auto segs = split(gso_header(s, 1000), p);
  ASSERT_EQ(segs.size(), 4u);
  const std::size_t t = 24, hl = 24 + 32;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const auto& g = segs[i];
    const std::size_t len = i < 3 ? 1000 : 7;
    ASSERT_EQ(g.size(), hl + len);
    EXPECT_EQ(be16(g, 2), g.size());                                     // total length
    EXPECT_EQ(be16(g, 4), static_cast<std::uint16_t>(0xFFFE + i));       // id, wrapping
    EXPECT_EQ(be32(g, t + 4), static_cast<std::uint32_t>(0xFFFFF000u + i * 1000));  // seq
    const std::uint8_t flags = g[t + 13];
    EXPECT_EQ((flags & 0x09) != 0, i == 3) << "FIN/PSH only on the last, segment " << i;
    EXPECT_EQ((flags & 0x80) != 0, i == 0) << "CWR only on the first, segment " << i;
    EXPECT_TRUE(flags & 0x10);  // ACK on all
    EXPECT_TRUE(checksums_verify(g, t, 6)) << "segment " << i;
    EXPECT_TRUE(std::equal(g.begin() + 20, g.begin() + 24, p.begin() + 20));  // IP options
    EXPECT_TRUE(std::equal(g.begin() + t + 20, g.begin() + hl, p.begin() + t + 20));  // TCP options
  }
  expect_payload_reassembles(segs, p, hl);
}

TEST(GsoSplitTest, Ipv6TcpExactMultiple) {
  Shape s{.v6 = true, .payload = 4 * 1200};
  auto p = super_packet(s);
  auto segs = split(gso_header(s, 1200), p);
  ASSERT_EQ(segs.size(), 4u);
  for (std::size_t i = 0; i < segs.size(); ++i) {
    EXPECT_EQ(segs[i].size(), 60u + 1200);
    EXPECT_EQ(be16(segs[i], 4), 20u + 1200);  // payload length
    EXPECT_EQ(be32(segs[i], 44), static_cast<std::uint32_t>(0xFFFFF000u + i * 1200));
    EXPECT_EQ((segs[i][53] & 0x08) != 0, i == 3);
    EXPECT_TRUE(checksums_verify(segs[i], 40, 6)) << "segment " << i;
  }
  expect_payload_reassembles(segs, p, 60);
}

TEST(GsoSplitTest, UdpL4BothFamilies) {
  for (bool v6 : {false, true}) {
    Shape s{.v6 = v6, .proto = 17, .payload = 2500};
    auto p = super_packet(s);
    auto segs = split(gso_header(s, 1000), p);
    ASSERT_EQ(segs.size(), 3u);
    const std::size_t t = v6 ? 40 : 20;
    for (std::size_t i = 0; i < segs.size(); ++i) {
      EXPECT_EQ(be16(segs[i], t + 4), segs[i].size() - t);  // UDP length
      EXPECT_TRUE(checksums_verify(segs[i], t, 17)) << "v6 " << v6 << " segment " << i;
    }
    EXPECT_EQ(segs[2].size(), t + 8 + 500);
    expect_payload_reassembles(segs, p, t + 8);
  }
}

TEST(GsoSplitTest, GsoPacketWithoutPayloadIsOneSegment) {
  Shape s{.payload = 0, .tcp_flags = 0x11};
  auto p = super_packet(s);
  auto segs = split(gso_header(s, 1000), p);
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].size(), 40u);
  EXPECT_EQ(segs[0][33], 0x11);  // the FIN stays: it is the last
  EXPECT_TRUE(checksums_verify(segs[0], 20, 6));
}

TEST(GsoSplitTest, EcnBitIsAccepted) {
  Shape s{.payload = 1500};
  auto p = super_packet(s);
  VnetHeader h = gso_header(s, 1000);
  h.gso_type |= gso_type::kEcn;
  EXPECT_EQ(split(h, p).size(), 2u);
}

TEST(GsoSplitTest, NeedsCsumOnASinglePacketIsCompleted) {
  for (std::uint8_t proto : {std::uint8_t{6}, std::uint8_t{17}}) {
    for (bool v6 : {false, true}) {
      Shape s{.v6 = v6, .proto = proto, .payload = 333};
      auto p = super_packet(s);
      VnetHeader h = gso_header(s, 0);
      h.gso_type = gso_type::kNone;
      h.gso_size = 0;
      auto segs = split(h, p);
      ASSERT_EQ(segs.size(), 1u);
      ASSERT_EQ(segs[0].size(), p.size());
      EXPECT_TRUE(checksums_verify(segs[0], v6 ? 40 : 20, proto)) << int{proto} << " " << v6;
    }
  }
}

TEST(GsoSplitTest, PlainPacketIsCopiedUnchanged) {
  std::vector<std::uint8_t> p = {0x45, 1, 2, 3, 4, 5, 6, 7, 8};
  auto segs = split(VnetHeader{}, p);
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0], p);
}

TEST(GsoSplitTest, MalformedHeadersAreRefusedWithAReason) {
  Shape s{.payload = 3000};
  const auto good = super_packet(s);
  const VnetHeader gh = gso_header(s, 1000);
  auto refused = [](const VnetHeader& h, const std::vector<std::uint8_t>& p) {
    SplitResult r = plan_split(h, p);
    EXPECT_FALSE(r.plan);
    return r.refusal;
  };
  VnetHeader h = gh;
  h.gso_type = 3;  // UFO: never enabled
  EXPECT_EQ(refused(h, good), SplitRefusal::kUnknownGsoType);
  h = gh;
  h.gso_size = 0;
  EXPECT_EQ(refused(h, good), SplitRefusal::kZeroGsoSize);
  h = gh;
  h.gso_type = gso_type::kTcpV6;  // on an IPv4 packet
  EXPECT_EQ(refused(h, good), SplitRefusal::kBadIpHeader);
  h = gh;
  h.csum_start = 21;
  EXPECT_EQ(refused(h, good), SplitRefusal::kBadTransport);
  h = gh;
  h.csum_offset = 6;
  EXPECT_EQ(refused(h, good), SplitRefusal::kBadTransport);
  EXPECT_EQ(refused(gh, {}), SplitRefusal::kBadIpHeader);

  auto p = good;
  put16(p, 2, static_cast<std::uint32_t>(p.size() - 1));  // total length lies
  EXPECT_EQ(refused(gh, p), SplitRefusal::kBadIpHeader);
  p = good;
  p[6] |= 0x20;  // more fragments
  EXPECT_EQ(refused(gh, p), SplitRefusal::kBadIpHeader);
  p = good;
  p[0] = 0x44;  // IHL below 5
  EXPECT_EQ(refused(gh, p), SplitRefusal::kBadIpHeader);
  p = good;
  p[9] = 17;  // UDP under a TCP gso_type
  EXPECT_EQ(refused(gh, p), SplitRefusal::kWrongProtocol);
  p = good;
  p[33] = 0x40;  // TCP data offset 4
  p[32] = 0x40;
  EXPECT_EQ(refused(gh, p), SplitRefusal::kBadTransport);
  p = good;
  p[32] = 0xF0;  // data offset 60 bytes, past a packet of 40 + 0 payload
  EXPECT_EQ(refused(gh, std::vector<std::uint8_t>(p.begin(), p.begin() + 40)),
            SplitRefusal::kBadIpHeader);  // (the total length no longer matches either)
  p = std::vector<std::uint8_t>(good.begin(), good.begin() + 30);
  put16(p, 2, 30);
  EXPECT_EQ(refused(gh, p), SplitRefusal::kBadTransport);  // TCP header truncated

  Shape s6{.v6 = true, .payload = 100};
  auto p6 = super_packet(s6);
  p6[6] = 0;  // a hop-by-hop extension header first
  EXPECT_EQ(refused(gso_header(s6, 50), p6), SplitRefusal::kWrongProtocol);
  p6 = super_packet(s6);
  p6[0] = 0x50;  // neither version
  EXPECT_EQ(refused(gso_header(s6, 50), p6), SplitRefusal::kBadIpHeader);

  VnetHeader c;
  c.flags = vnet_flag::kNeedsCsum;
  c.csum_start = static_cast<std::uint16_t>(good.size());
  EXPECT_EQ(refused(c, good), SplitRefusal::kBadChecksumSpan);
  c.csum_start = static_cast<std::uint16_t>(good.size() - 2);
  c.csum_offset = 1;
  EXPECT_EQ(refused(c, good), SplitRefusal::kBadChecksumSpan);
}

TEST(GsoSplitTest, TinyGsoSizeStaysBounded) {
  Shape s{.payload = 300};
  auto p = super_packet(s);
  auto segs = split(gso_header(s, 1), p);
  ASSERT_EQ(segs.size(), 300u);
  EXPECT_TRUE(checksums_verify(segs[299], 20, 6));
  expect_payload_reassembles(segs, p, 40);
}

}  // namespace
}  // namespace buckwild::offload

#include "core/inner/tcp_segment.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/crypto/random.h"
#include "unit/core/offload/offload_packets.h"

namespace buckwild::inner {
namespace {

SocketAddress at(const char* ip, std::uint16_t port) {
  return SocketAddress{*IpAddress::parse(ip), port};
}

// A TCP segment with correct checksums, built through make_rst's checksum code
// path being independent: we compute the checksum here from scratch.
std::uint16_t fold_sum(const std::uint8_t* p, std::size_t n, std::uint32_t acc) {
  for (; n >= 2; p += 2, n -= 2) acc += static_cast<std::uint32_t>((p[0] << 8) | p[1]);
  if (n == 1) acc += static_cast<std::uint32_t>(p[0] << 8);
  while (acc >> 16) acc = (acc & 0xFFFF) + (acc >> 16);
  return static_cast<std::uint16_t>(acc);
}

std::vector<std::uint8_t> build(const SocketAddress& src, const SocketAddress& dst,
                                std::uint8_t flags, std::size_t payload, std::uint8_t fill) {
  const bool v4 = src.ip.is_v4();
  const std::size_t ip_len = v4 ? 20 : 40;
  const std::size_t tcp_len = 20 + 4 + payload;  // one 4-byte option (MSS)
  std::vector<std::uint8_t> p(ip_len + tcp_len, 0);
  if (v4) {
    p[0] = 0x45;
    p[2] = static_cast<std::uint8_t>(p.size() >> 8);
    p[3] = static_cast<std::uint8_t>(p.size());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 6;
    std::memcpy(&p[12], src.ip.bytes().data(), 4);
    std::memcpy(&p[16], dst.ip.bytes().data(), 4);
    const std::uint16_t c = static_cast<std::uint16_t>(~fold_sum(p.data(), 20, 0));
    p[10] = static_cast<std::uint8_t>(c >> 8);
    p[11] = static_cast<std::uint8_t>(c);
  } else {
    p[0] = 0x60;
    p[4] = static_cast<std::uint8_t>(tcp_len >> 8);
    p[5] = static_cast<std::uint8_t>(tcp_len);
    p[6] = 6;
    p[7] = 64;
    std::memcpy(&p[8], src.ip.bytes().data(), 16);
    std::memcpy(&p[24], dst.ip.bytes().data(), 16);
  }
  std::uint8_t* t = &p[ip_len];
  t[0] = static_cast<std::uint8_t>(src.port >> 8);
  t[1] = static_cast<std::uint8_t>(src.port);
  t[2] = static_cast<std::uint8_t>(dst.port >> 8);
  t[3] = static_cast<std::uint8_t>(dst.port);
  t[4] = 0x12;
  t[7] = 0x34;  // sequence 0x12000034
  t[12] = 6 << 4;
  t[13] = flags;
  t[20] = 2;
  t[21] = 4;
  t[22] = 0x05;
  t[23] = 0xB4;  // MSS 1460
  for (std::size_t i = 0; i < payload; ++i) t[24 + i] = static_cast<std::uint8_t>(fill + i);
  std::uint32_t acc = 0;
  acc += fold_sum(src.ip.bytes().data(), src.ip.size(), 0);
  acc += fold_sum(dst.ip.bytes().data(), dst.ip.size(), 0);
  acc += 6 + static_cast<std::uint32_t>(tcp_len);
  const std::uint16_t c = static_cast<std::uint16_t>(~fold_sum(t, tcp_len, acc));
  t[16] = static_cast<std::uint8_t>(c >> 8);
  t[17] = static_cast<std::uint8_t>(c);
  return p;
}

TEST(TcpSegmentTest, ParsesV4AndV6Segments) {
  auto p = build(at("10.77.0.1", 40000), at("10.77.0.2", 80), tcp_flag::kSyn, 0, 0);
  ASSERT_TRUE(tcp_checksums_ok(p));
  auto s = parse_tcp(p);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->source, at("10.77.0.1", 40000));
  EXPECT_EQ(s->destination, at("10.77.0.2", 80));
  EXPECT_TRUE(s->opening());
  EXPECT_EQ(s->sequence, 0x12000034u);
  EXPECT_EQ(s->payload_size, 0u);

  auto q = build(at("fd00::1", 1), at("fd00::2", 22), tcp_flag::kAck | tcp_flag::kPsh, 77, 3);
  ASSERT_TRUE(tcp_checksums_ok(q));
  auto t = parse_tcp(q);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->destination, at("fd00::2", 22));
  EXPECT_FALSE(t->opening());
  EXPECT_EQ(t->payload_size, 77u);
}

TEST(TcpSegmentTest, RefusesWhatIsNotOneWholeSegment) {
  auto p = build(at("10.77.0.1", 40000), at("10.77.0.2", 80), tcp_flag::kSyn, 10, 0);
  for (std::size_t n = 0; n < p.size(); ++n) {
    EXPECT_FALSE(parse_tcp(Bytes(p.data(), n))) << "truncated to " << n;
  }
  auto frag = p;
  frag[6] = 0x20;  // more fragments
  EXPECT_FALSE(parse_tcp(frag));
  auto udp = p;
  udp[9] = 17;
  EXPECT_FALSE(parse_tcp(udp));
  auto bad_offset = p;
  bad_offset[20 + 12] = 15 << 4;  // data offset past the end
  EXPECT_FALSE(parse_tcp(bad_offset));
  auto v6 = build(at("fd00::1", 1), at("fd00::2", 22), tcp_flag::kAck, 0, 0);
  v6[6] = 0;  // hop-by-hop header first: not handled, so not ours
  EXPECT_FALSE(parse_tcp(v6));
}

TEST(TcpSegmentTest, RewriteKeepsChecksumsCorrect) {
  crypto::DeterministicRandom rng(7);
  const char* v4[] = {"10.77.0.1", "10.77.0.2", "192.168.255.254", "0.0.0.1", "255.255.255.255"};
  const char* v6[] = {"fd00::1", "fd00::ffff:2", "2001:db8::dead:beef", "::1", "ffff::ffff"};
  for (int round = 0; round < 400; ++round) {
    const bool use_v6 = round % 2 == 1;
    auto pick = [&](int k) { return use_v6 ? v6[(round + k) % 5] : v4[(round * 3 + k) % 5]; };
    std::array<std::uint8_t, 8> r{};
    rng.fill(r);
    auto ports = [&](int i) { return static_cast<std::uint16_t>((r[2 * i] << 8) | r[2 * i + 1]); };
    auto p = build(at(pick(0), ports(0)), at(pick(1), ports(1)), tcp_flag::kAck,
                   static_cast<std::size_t>(round % 37), r[7]);
    auto s = parse_tcp(p);
    ASSERT_TRUE(s);
    const SocketAddress new_src = at(pick(2), ports(2));
    const SocketAddress new_dst = at(pick(3), ports(3));
    rewrite_tcp(p, *s, new_src, new_dst);
    ASSERT_TRUE(tcp_checksums_ok(p)) << "round " << round;
    auto back = parse_tcp(p);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->source, new_src);
    EXPECT_EQ(back->destination, new_dst);
    EXPECT_EQ(s->source, new_src);
  }
}

// ---- whole GSO super-packets (the near leg's TSO pass-through) ----
// Packets from unit/core/offload/offload_packets.h: built byte by byte, the
// pseudo-header seed and full checksums computed there, not by the code under
// test.

// Writes new addresses into a copy of `p` (IPv4 at 12/16, IPv6 at 8/24) and
// new ports at `t`, touching no checksum: the independent reference.
std::vector<std::uint8_t> with_endpoints(std::vector<std::uint8_t> p, std::size_t t,
                                         const SocketAddress& src, const SocketAddress& dst) {
  const bool v4 = src.ip.is_v4();
  std::memcpy(&p[v4 ? 12 : 8], src.ip.bytes().data(), src.ip.size());
  std::memcpy(&p[v4 ? 16 : 24], dst.ip.bytes().data(), dst.ip.size());
  offload::put16(p, t, src.port);
  offload::put16(p, t + 2, dst.port);
  return p;
}

// Sets the full TCP checksum of `p` from scratch (the field zeroed first).
void set_full_checksum(std::vector<std::uint8_t>& p, std::size_t t) {
  offload::put16(p, t + 16, 0);
  const std::uint32_t acc = offload::pseudo(p, t, 6) + offload::sum_bytes(p, t, p.size());
  offload::put16(p, t + 16, static_cast<std::uint16_t>(~offload::fold(acc)));
}

struct Endpoints {
  SocketAddress source, destination;
};

// New endpoints for round `round`, of the family `v6`.
Endpoints endpoints(bool v6, int round) {
  const char* v4s[] = {"10.77.0.1", "10.77.0.2", "192.168.255.254", "0.0.0.1", "255.255.255.255"};
  const char* v6s[] = {"fd00::1", "fd00::ffff:2", "2001:db8::dead:beef", "::1", "ffff::ffff"};
  const char** a = v6 ? v6s : v4s;
  return Endpoints{at(a[round % 5], static_cast<std::uint16_t>(40000 + round * 977)),
                   at(a[(round + 2) % 5], static_cast<std::uint16_t>(65535 - round * 1231))};
}

TEST(TcpSegmentTest, RewriteOfASuperPacketKeepsThePseudoHeaderSeedItsDeviceCompletes) {
  for (const bool v6 : {false, true}) {
    for (int round = 0; round < 10; ++round) {
      const offload::Shape shape{.v6 = v6, .tcp_options = 12, .payload = 60'000, .net = 77};
      std::vector<std::uint8_t> p = offload::super_packet(shape);  // the field holds the seed
      const std::size_t t = v6 ? 40 : 20;
      const Endpoints e = endpoints(v6, round);
      const std::vector<std::uint8_t> want_bytes = with_endpoints(p, t, e.source, e.destination);
      auto s = parse_tcp(p);
      ASSERT_TRUE(s);
      rewrite_tcp(p, *s, e.source, e.destination, TcpChecksumField::kPseudoHeaderSum);
      // The seed is the new pseudo-header's folded sum, not complemented.
      EXPECT_EQ(offload::be16(p, t + 16), offload::fold(offload::pseudo(p, t, 6)))
          << (v6 ? "v6" : "v4") << " round " << round;
      // Everything else is the reference's, the IPv4 header checksum right.
      std::vector<std::uint8_t> rest = p;
      offload::put16(rest, t + 16, offload::be16(want_bytes, t + 16));
      if (!v6) offload::put16(rest, 10, offload::be16(want_bytes, 10));
      EXPECT_EQ(rest, want_bytes);
      if (!v6) {
        EXPECT_EQ(offload::fold(offload::sum_bytes(p, 0, 20)), 0xFFFF);
      }
      EXPECT_EQ(s->source, e.source);
      // Still a GSO packet the splitter (and so the kernel) takes.
      auto plan = offload::plan_split(offload::gso_header(shape, 1400), p).plan;
      ASSERT_TRUE(plan);
      EXPECT_EQ(plan->count, (60'000u + 1399) / 1400);
    }
  }
}

TEST(TcpSegmentTest, RewriteOfAPartialChecksumPacketCompletesToAValidChecksum) {
  // A single packet with NEEDS_CSUM: the splitter completes the seed as the
  // kernel would (sum from csum_start on, complemented), so a wrong seed
  // shows as a wrong checksum.
  for (const bool v6 : {false, true}) {
    for (int round = 0; round < 10; ++round) {
      const offload::Shape shape{.v6 = v6, .payload = static_cast<std::size_t>(1000 + round)};
      std::vector<std::uint8_t> p = offload::super_packet(shape);
      const Endpoints e = endpoints(v6, round);
      auto s = parse_tcp(p);
      ASSERT_TRUE(s);
      rewrite_tcp(p, *s, e.source, e.destination, TcpChecksumField::kPseudoHeaderSum);
      offload::VnetHeader h = offload::gso_header(shape, 0);
      h.gso_type = offload::gso_type::kNone;
      auto plan = offload::plan_split(h, p).plan;
      ASSERT_TRUE(plan);
      std::vector<std::uint8_t> done(plan->max_size);
      done.resize(offload::write_segment(*plan, p, 0, done));
      EXPECT_TRUE(offload::checksums_verify(done, v6 ? 40 : 20, 6)) << (v6 ? "v6" : "v4") << " round " << round;
      EXPECT_TRUE(tcp_checksums_ok(done));
    }
  }
}

TEST(TcpSegmentTest, RewriteOfASuperPacketWithAFullChecksumKeepsItFull) {
  for (const bool v6 : {false, true}) {
    for (int round = 0; round < 10; ++round) {
      const offload::Shape shape{.v6 = v6, .tcp_options = 8, .payload = 50'001};
      std::vector<std::uint8_t> p = offload::super_packet(shape);
      const std::size_t t = v6 ? 40 : 20;
      set_full_checksum(p, t);
      ASSERT_TRUE(offload::checksums_verify(p, t, 6));
      const Endpoints e = endpoints(v6, round);
      std::vector<std::uint8_t> want = with_endpoints(p, t, e.source, e.destination);
      set_full_checksum(want, t);
      auto s = parse_tcp(p);
      ASSERT_TRUE(s);
      rewrite_tcp(p, *s, e.source, e.destination, TcpChecksumField::kComplete);
      EXPECT_TRUE(offload::checksums_verify(p, t, 6)) << (v6 ? "v6" : "v4") << " round " << round;
      EXPECT_EQ(offload::be16(p, t + 16), offload::be16(want, t + 16));
    }
  }
}

TEST(TcpSegmentTest, RstRefusesASynAndNeverAnswersAnRst) {
  for (const char* pair : {"4", "6"}) {
    const bool v6 = pair[0] == '6';
    const SocketAddress app = v6 ? at("fd00::1", 40000) : at("10.77.0.1", 40000);
    const SocketAddress srv = v6 ? at("fd00::2", 81) : at("10.77.0.2", 81);
    auto syn = build(app, srv, tcp_flag::kSyn, 0, 0);
    auto s = parse_tcp(syn);
    ASSERT_TRUE(s);
    std::array<std::uint8_t, 64> out{};
    const std::size_t n = make_rst(*s, out);
    ASSERT_GT(n, 0u);
    Bytes rst(out.data(), n);
    ASSERT_TRUE(tcp_checksums_ok(rst));
    auto r = parse_tcp(rst);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->source, srv);
    EXPECT_EQ(r->destination, app);
    EXPECT_EQ(r->flags, tcp_flag::kRst | tcp_flag::kAck);
    EXPECT_EQ(r->acknowledgment, s->sequence + 1);
    EXPECT_EQ(make_rst(*r, out), 0u);
  }
  // A segment with ACK is answered from its acknowledgment number.
  auto data = build(at("10.77.0.1", 1), at("10.77.0.2", 2), tcp_flag::kAck, 5, 0);
  auto d = parse_tcp(data);
  ASSERT_TRUE(d);
  std::array<std::uint8_t, 64> out{};
  auto r = parse_tcp(Bytes(out.data(), make_rst(*d, out)));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->flags, tcp_flag::kRst);
  EXPECT_EQ(r->sequence, d->acknowledgment);
}

}  // namespace
}  // namespace buckwild::inner

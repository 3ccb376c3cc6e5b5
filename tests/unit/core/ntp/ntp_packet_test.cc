#include "core/ntp/ntp_packet.h"

#include <gtest/gtest.h>

#include <vector>

namespace buckwild::ntp {
namespace {

constexpr std::int64_t kT1 = 1'796'515'200'000'000;  // 2026-12-06T00:00:00Z, µs
constexpr std::uint64_t kNonce = 0x0123'4567'89ab'cdefull;

// A server response as a server would write it.
std::vector<std::uint8_t> response(std::int64_t t2, std::int64_t t3, std::uint64_t origin,
                                   std::uint8_t stratum = 2, std::uint8_t leap = 0,
                                   std::uint32_t refid = 0x7f000001, std::uint8_t mode = kModeServer) {
  std::vector<std::uint8_t> out(kPacketSize);
  ByteWriter w(out);
  w.u8(static_cast<std::uint8_t>((leap << 6) | (4 << 3) | mode));
  w.u8(stratum);
  w.u8(6);
  w.u8(0xe9);
  w.u32(0x0000'0100);  // root delay ~3.9 ms
  w.u32(0x0000'0200);  // root dispersion ~7.8 ms
  w.u32(refid);
  w.u64(to_ntp(t2 - 1'000'000));
  w.u64(origin);
  w.u64(to_ntp(t2));
  w.u64(to_ntp(t3));
  return out;
}

Verdict check(const std::vector<std::uint8_t>& bytes, std::int64_t t1, std::int64_t t4) {
  auto p = decode(bytes);
  EXPECT_TRUE(p.has_value());
  return check_response(*p, kNonce, t1, t4);
}

TEST(NtpPacketTest, ARecordedChronyAnswer) {
  // chronyd 4.3 (Debian 12, `local stratum 8`, -x) answering a request whose
  // transmit timestamp was 8f3a1c5e7b2d4e61, sent at t1 and answered at t4
  // (µs on the same machine's clock), recorded for this test.
  const std::vector<std::uint8_t> answer = {
      0x24, 0x08, 0x00, 0xe6, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7f, 0x7f, 0x01, 0x01,
      0xee, 0xbf, 0x3d, 0xb0, 0x2d, 0xf2, 0x34, 0x3e, 0x8f, 0x3a, 0x1c, 0x5e, 0x7b, 0x2d, 0x4e, 0x61,
      0xee, 0xbf, 0x3d, 0xb1, 0xb5, 0x8b, 0x4e, 0x7b, 0xee, 0xbf, 0x3d, 0xb1, 0xb6, 0x16, 0xdf, 0x3a};
  const std::int64_t t1 = 1'796'521'777'709'057;
  const std::int64_t t4 = 1'796'521'777'711'600;
  auto p = decode(answer);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->stratum, 8);
  EXPECT_EQ(p->mode, kModeServer);
  EXPECT_EQ(p->reference_id, 0x7f7f0101u);  // its local clock
  auto v = check_response(*p, 0x8f3a'1c5e'7b2d'4e61ull, t1, t4);
  ASSERT_TRUE(std::holds_alternative<Sample>(v));
  EXPECT_EQ(std::get<Sample>(v).offset_us, -107);
  EXPECT_EQ(std::get<Sample>(v).delay_us, 414);
  EXPECT_EQ(std::get<Sample>(v).root_distance_us, 0);
  // The same answer again, to our next request: a replay.
  EXPECT_EQ(std::get<Refusal>(check_response(*p, 0x1234, t1 + 16'000'000, t4 + 16'000'000)),
            Refusal::kBadOrigin);
}

TEST(NtpPacketTest, TimestampsRoundTripAndResolveTheEra) {
  EXPECT_EQ(to_ntp(0) >> 32, static_cast<std::uint64_t>(kNtpToUnixSeconds));
  for (std::int64_t us : {kT1, kT1 + 1, kT1 + 999'999, std::int64_t{0}}) {
    EXPECT_EQ(from_ntp(to_ntp(us), us), us);
  }
  // 2040 is in NTP era 1: the seconds field wrapped in 2036.
  const std::int64_t y2040 = 2'208'988'800'000'000;
  const std::uint64_t wire = to_ntp(y2040);
  EXPECT_LT(wire >> 32, static_cast<std::uint64_t>(kNtpToUnixSeconds));
  EXPECT_EQ(from_ntp(wire, y2040 - 5'000'000), y2040);
}

TEST(NtpPacketTest, RequestIsClientModeVersionFourCarryingTheNonce) {
  const auto req = encode_request(kNonce);
  EXPECT_EQ(req[0], (4 << 3) | kModeClient);
  auto p = decode(req);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->transmit_ts, kNonce);
  EXPECT_EQ(p->origin_ts, 0u);
  EXPECT_EQ(p->mode, kModeClient);
}

TEST(NtpPacketTest, ShortDatagramDoesNotDecode) {
  std::vector<std::uint8_t> b(kPacketSize - 1);
  EXPECT_FALSE(decode(b));
}

TEST(NtpPacketTest, OffsetAndDelayFromTheFourTimestamps) {
  // Server 3 s ahead, 10 ms each way, 1 ms processing.
  const std::int64_t t2 = kT1 + 3'000'000 + 10'000;
  const std::int64_t t3 = t2 + 1'000;
  const std::int64_t t4 = kT1 + 21'000;
  auto v = check(response(t2, t3, kNonce), kT1, t4);
  ASSERT_TRUE(std::holds_alternative<Sample>(v));
  const Sample s = std::get<Sample>(v);
  EXPECT_EQ(s.offset_us, 3'000'000);
  EXPECT_EQ(s.delay_us, 20'000);
  EXPECT_EQ(s.stratum, 2);
  EXPECT_EQ(s.root_distance_us, 3906 / 2 + 7812);
}

TEST(NtpPacketTest, ResponseToAnotherRequestIsRefused) {
  // A replay of an earlier response, or a spoof guessing the nonce.
  auto v = check(response(kT1 + 5, kT1 + 6, kNonce ^ 1), kT1, kT1 + 10);
  ASSERT_TRUE(std::holds_alternative<Refusal>(v));
  EXPECT_EQ(std::get<Refusal>(v), Refusal::kBadOrigin);
}

TEST(NtpPacketTest, UnsynchronizedServersAreRefused) {
  auto leap = check(response(kT1 + 5, kT1 + 6, kNonce, 2, kLeapUnsynchronized), kT1, kT1 + 10);
  EXPECT_EQ(std::get<Refusal>(leap), Refusal::kUnsynchronized);
  auto stratum16 = check(response(kT1 + 5, kT1 + 6, kNonce, 16), kT1, kT1 + 10);
  EXPECT_EQ(std::get<Refusal>(stratum16), Refusal::kUnsynchronized);
}

TEST(NtpPacketTest, NonServerModeIsRefused) {
  auto v = check(response(kT1 + 5, kT1 + 6, kNonce, 2, 0, 0, 1), kT1, kT1 + 10);
  EXPECT_EQ(std::get<Refusal>(v), Refusal::kNotServer);
  // Without our nonce, whatever its mode: not the answer (the poll goes on),
  // so a forged datagram cannot cancel the genuine answer's poll.
  auto forged = check(response(kT1 + 5, kT1 + 6, kNonce + 1, 2, 0, 0, 1), kT1, kT1 + 10);
  EXPECT_EQ(std::get<Refusal>(forged), Refusal::kBadOrigin);
}

TEST(NtpPacketTest, ImpossibleRoundTripsAreRefused) {
  // The server says it took longer to answer than our whole round trip.
  auto negative = check(response(kT1 + 5, kT1 + 50'000, kNonce), kT1, kT1 + 10'000);
  EXPECT_EQ(std::get<Refusal>(negative), Refusal::kBadDelay);
  auto slow = check(response(kT1 + 5, kT1 + 6, kNonce), kT1, kT1 + kMaxRoundTripUs + 100);
  EXPECT_EQ(std::get<Refusal>(slow), Refusal::kBadDelay);
}

TEST(NtpPacketTest, KissOfDeathCodes) {
  auto code = [](const char* s) {
    return (std::uint32_t(s[0]) << 24) | (std::uint32_t(s[1]) << 16) | (std::uint32_t(s[2]) << 8) |
           std::uint32_t(s[3]);
  };
  EXPECT_EQ(std::get<Kiss>(check(response(0, 0, kNonce, 0, 3, code("RATE")), kT1, kT1 + 10)), Kiss::kRate);
  EXPECT_EQ(std::get<Kiss>(check(response(0, 0, kNonce, 0, 3, code("DENY")), kT1, kT1 + 10)), Kiss::kDeny);
  EXPECT_EQ(std::get<Kiss>(check(response(0, 0, kNonce, 0, 3, code("RSTR")), kT1, kT1 + 10)), Kiss::kDeny);
  EXPECT_EQ(std::get<Kiss>(check(response(0, 0, kNonce, 0, 3, code("ACST")), kT1, kT1 + 10)), Kiss::kOther);
  // A KoD that does not answer our request is a spoof and says nothing.
  EXPECT_EQ(std::get<Refusal>(check(response(0, 0, kNonce + 1, 0, 3, code("DENY")), kT1, kT1 + 10)),
            Refusal::kBadOrigin);
}

}  // namespace
}  // namespace buckwild::ntp

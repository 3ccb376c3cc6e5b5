#include "core/ntp/ntp_packet.h"

#include <cstdlib>

namespace buckwild::ntp {

namespace {

constexpr std::int64_t kEraUs = (std::int64_t{1} << 32) * 1'000'000;

std::uint32_t kiss_code(const char (&s)[5]) {
  return (static_cast<std::uint32_t>(static_cast<unsigned char>(s[0])) << 24) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(s[1])) << 16) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(s[2])) << 8) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(s[3]));
}

// NTP short format (16.16 seconds) in microseconds.
std::int64_t short_us(std::uint32_t v) {
  return (static_cast<std::int64_t>(v) * 1'000'000) >> 16;
}

}  // namespace

std::uint64_t to_ntp(std::int64_t unix_us) {
  const std::int64_t us = unix_us + kNtpToUnixSeconds * 1'000'000;
  // Floor division, so times before 1900 (never seen) still round-trip.
  std::int64_t sec = us / 1'000'000;
  std::int64_t frac_us = us % 1'000'000;
  if (frac_us < 0) {
    frac_us += 1'000'000;
    --sec;
  }
  const std::uint64_t frac = (static_cast<std::uint64_t>(frac_us) << 32) / 1'000'000;
  return (static_cast<std::uint64_t>(sec) << 32) | (frac & 0xFFFF'FFFFu);
}

std::int64_t from_ntp(std::uint64_t ntp, std::int64_t near_unix_us) {
  const auto sec = static_cast<std::int64_t>(ntp >> 32);
  // Rounded to the nearest microsecond, so to_ntp and from_ntp round-trip.
  const auto frac_us = static_cast<std::int64_t>(((ntp & 0xFFFF'FFFFu) * 1'000'000 + (1u << 31)) >> 32);
  const std::int64_t era0 = (sec - kNtpToUnixSeconds) * 1'000'000 + frac_us;
  // Choose the era nearest the receiver's clock.
  const std::int64_t d = near_unix_us - era0 + kEraUs / 2;
  std::int64_t eras = d / kEraUs;
  if (d % kEraUs < 0) --eras;  // floor division
  return era0 + eras * kEraUs;
}

std::array<std::uint8_t, kPacketSize> encode_request(std::uint64_t nonce) {
  std::array<std::uint8_t, kPacketSize> out{};
  ByteWriter w(out);
  w.u8(static_cast<std::uint8_t>((0 << 6) | (kVersion << 3) | kModeClient));
  // Stratum, poll, precision, root delay and dispersion, reference id and
  // timestamps, origin and receive timestamps: zero in a client request.
  w.u8(0);
  w.u8(0);
  w.u8(0);
  w.u32(0);
  w.u32(0);
  w.u32(0);
  w.u64(0);
  w.u64(0);
  w.u64(0);
  w.u64(nonce);
  return out;
}

std::optional<Packet> decode(Bytes datagram) {
  if (datagram.size() < kPacketSize) return std::nullopt;
  ByteReader r(datagram.first(kPacketSize));
  Packet p;
  const std::uint8_t first = r.u8();
  p.leap = first >> 6;
  p.version = (first >> 3) & 7;
  p.mode = first & 7;
  p.stratum = r.u8();
  p.poll = static_cast<std::int8_t>(r.u8());
  p.precision = static_cast<std::int8_t>(r.u8());
  p.root_delay = r.u32();
  p.root_dispersion = r.u32();
  p.reference_id = r.u32();
  p.reference_ts = r.u64();
  p.origin_ts = r.u64();
  p.receive_ts = r.u64();
  p.transmit_ts = r.u64();
  return p;
}

const char* refusal_name(Refusal r) {
  switch (r) {
    case Refusal::kNotServer: return "not a server response";
    case Refusal::kBadOrigin: return "origin timestamp mismatch (spoofed, stale or replayed)";
    case Refusal::kUnsynchronized: return "server unsynchronized";
    case Refusal::kBadDelay: return "round trip out of bounds";
    case Refusal::kTooFar: return "server root distance too large";
  }
  return "?";
}

const char* kiss_name(Kiss k) {
  switch (k) {
    case Kiss::kDeny: return "kiss-o'-death DENY/RSTR";
    case Kiss::kRate: return "kiss-o'-death RATE";
    case Kiss::kOther: return "kiss-o'-death (other code)";
  }
  return "?";
}

Verdict check_response(const Packet& p, std::uint64_t nonce, std::int64_t t1_us,
                       std::int64_t t4_us) {
  // The origin check first: nothing else a packet says counts unless it
  // answers the request we are waiting for (RFC 5905 §8 "bogus" test). A
  // forged datagram without our nonce, whatever its mode, must not end the
  // poll the genuine answer is still on its way to.
  if (p.origin_ts != nonce) return Refusal::kBadOrigin;
  if (p.mode != kModeServer || p.version < 3 || p.version > 4) return Refusal::kNotServer;
  if (p.stratum == 0) {
    if (p.reference_id == kiss_code("DENY") || p.reference_id == kiss_code("RSTR")) return Kiss::kDeny;
    if (p.reference_id == kiss_code("RATE")) return Kiss::kRate;
    return Kiss::kOther;
  }
  if (p.leap == kLeapUnsynchronized || p.stratum > kMaxStratum || p.receive_ts == 0 ||
      p.transmit_ts == 0) {
    return Refusal::kUnsynchronized;
  }
  const std::int64_t t2 = from_ntp(p.receive_ts, t1_us);
  const std::int64_t t3 = from_ntp(p.transmit_ts, t4_us);
  const std::int64_t delay = (t4_us - t1_us) - (t3 - t2);
  if (t4_us < t1_us || t3 < t2 || delay < 0 || delay > kMaxRoundTripUs) return Refusal::kBadDelay;
  const std::int64_t root_distance = short_us(p.root_delay) / 2 + short_us(p.root_dispersion);
  if (root_distance > kMaxRootDistanceUs) return Refusal::kTooFar;
  Sample s;
  s.offset_us = ((t2 - t1_us) + (t3 - t4_us)) / 2;
  s.delay_us = delay;
  s.root_distance_us = root_distance;
  s.stratum = p.stratum;
  return s;
}

}  // namespace buckwild::ntp

#include "core/crypto/packet_protection.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/wire/codec.h"
#include "support/sample_packets.h"

namespace buckwild::crypto {
namespace {

using wire::kHeaderSize;
using wire::PacketType;

std::vector<std::uint8_t> from_hex(const std::string& hex) {
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<std::uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

const std::vector<std::uint8_t> kKey = from_hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
const std::vector<std::uint8_t> kIv = from_hex("070000004041424344454647");
const std::vector<std::uint8_t> kMac = from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
constexpr std::uint32_t kNow = 52'225'123;

PacketKeyMaterial keys() { return {kKey, kIv, kMac}; }

struct Mode {
  const char* name;
  ProtectionMode mode;
  AeadAlgorithm algorithm;
};
const Mode kModes[] = {
    {"chacha20-poly1305", ProtectionMode::kAead, AeadAlgorithm::kChaCha20Poly1305},
    {"aes-256-gcm", ProtectionMode::kAead, AeadAlgorithm::kAes256Gcm},
    {"hmac-sha256-128", ProtectionMode::kHmac, AeadAlgorithm::kChaCha20Poly1305},
};

PacketSealer sealer(const Mode& m) { return PacketSealer::create(m.mode, m.algorithm, keys()).value(); }
PacketOpener opener(const Mode& m) { return PacketOpener::create(m.mode, m.algorithm, keys()).value(); }

// Seals sample_packet(t) and returns the datagram.
std::vector<std::uint8_t> seal_sample(PacketSealer& s, PacketType t) {
  wire::Packet p = testing::sample_packet(t);
  p.header.timestamp_ms = kNow;
  std::vector<std::uint8_t> buf(wire::kMaxDatagramSize);
  std::size_t body_len = wire::body_size(p.body);
  EXPECT_TRUE(wire::write_body(p.header, p.body, MutableBytes(buf).subspan(kHeaderSize, body_len)));
  auto n = s.seal(p.header, buf, body_len);
  EXPECT_TRUE(n.has_value());
  buf.resize(n.value_or(0));
  return buf;
}

// The appendix vectors come from an independent Python implementation
// (tests/vectors/gen_packet_vectors.py); our codec must parse its plaintext and
// our sealer must produce its sealed bytes exactly.
TEST(PacketProtectionTest, MatchesIndependentVectors) {
  std::ifstream in(BUCKWILD_VECTORS_DIR "/sealed_packets.txt");
  ASSERT_TRUE(in.is_open());
  std::map<std::string, std::optional<PacketSealer>> sealers;
  std::string line;
  int rows = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.rfind("packet_", 0) == 0 || line.rfind("mac_", 0) == 0) continue;
    std::istringstream fields(line);
    std::string name, mode_name, plain_hex, sealed_hex;
    std::uint64_t pn = 0;
    fields >> name >> mode_name >> pn >> plain_hex >> sealed_hex;
    SCOPED_TRACE(name + " " + mode_name);
    const Mode* mode = nullptr;
    for (const Mode& m : kModes) {
      if (mode_name == m.name) mode = &m;
    }
    ASSERT_NE(mode, nullptr);
    auto& s = sealers[mode_name];
    if (!s) s.emplace(sealer(*mode));
    ASSERT_EQ(s->next_packet_number(), pn);

    auto plain = from_hex(plain_hex);
    auto packet = wire::decode_packet(plain);
    ASSERT_TRUE(packet.has_value()) << packet.error().what;
    std::vector<std::uint8_t> reencoded(wire::kMaxDatagramSize);
    reencoded.resize(wire::encode_packet(packet->header, packet->body, reencoded).value());
    EXPECT_EQ(reencoded, plain);

    wire::Header h = packet->header;
    auto n = s->seal(h, plain, h.payload_length);
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(plain, from_hex(sealed_hex));

    PacketOpener o = opener(*mode);
    auto sealed = from_hex(sealed_hex);
    // A fresh opener has seen nothing, so any packet number is new to it.
    auto opened = o.open(sealed, kNow);
    ASSERT_TRUE(opened.has_value()) << opened.error().what;
    EXPECT_EQ(opened->packet_number, pn);
    EXPECT_EQ(std::vector<std::uint8_t>(opened->body.begin(), opened->body.end()),
              std::vector<std::uint8_t>(reencoded.begin() + kHeaderSize, reencoded.end() - 16));
    ++rows;
  }
  EXPECT_EQ(rows, 23);
}

TEST(PacketProtectionTest, EveryTypeRoundTripsInEveryMode) {
  for (const Mode& m : kModes) {
    PacketSealer s = sealer(m);
    PacketOpener o = opener(m);
    for (PacketType t : testing::all_packet_types()) {
      if (wire::is_discovery_type(t)) continue;  // protected by discovery keys, not packet keys
      SCOPED_TRACE(std::string(m.name) + " " + std::string(wire::packet_type_name(t)));
      auto d = seal_sample(s, t);
      auto opened = o.open(d, kNow);
      ASSERT_TRUE(opened.has_value()) << opened.error().what;
      auto body = wire::parse_body(opened->header, opened->body);
      ASSERT_TRUE(body.has_value());
      EXPECT_EQ(*body, testing::sample_packet(t).body);
    }
  }
}

TEST(PacketProtectionTest, EveryTruncationAndBitFlipIsRejected) {
  for (const Mode& m : kModes) {
    SCOPED_TRACE(m.name);
    PacketSealer s = sealer(m);
    PacketOpener o = opener(m);
    auto d = seal_sample(s, PacketType::kData);
    for (std::size_t n = 0; n < d.size(); ++n) {
      std::vector<std::uint8_t> cut(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(n));
      EXPECT_FALSE(o.open(cut, kNow).has_value()) << "length " << n;
    }
    for (std::size_t bit = 0; bit < d.size() * 8; ++bit) {
      auto flipped = d;
      flipped[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      EXPECT_FALSE(o.open(flipped, kNow).has_value()) << "bit " << bit;
    }
    // Failures recorded nothing: the genuine packet still opens, exactly once.
    auto copy = d;
    EXPECT_TRUE(o.open(copy, kNow).has_value());
    copy = d;
    auto again = o.open(copy, kNow);
    ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error().code, ErrorCode::kReplayAttack);
  }
}

TEST(PacketProtectionTest, AeadHidesTheBodyAndHmacModeDoesNot) {
  const std::string marker = "GET / HTTP/1.1";
  for (const Mode& m : kModes) {
    PacketSealer s = sealer(m);
    auto d = seal_sample(s, PacketType::kData);
    std::string wire_bytes(d.begin(), d.end());
    bool visible = wire_bytes.find(marker) != std::string::npos;
    EXPECT_EQ(visible, m.mode == ProtectionMode::kHmac) << m.name;
  }
}

TEST(PacketProtectionTest, NoncesNeverRepeat) {
  PacketSealer s = sealer(kModes[0]);
  auto a = seal_sample(s, PacketType::kData);
  auto b = seal_sample(s, PacketType::kData);
  EXPECT_EQ(s.next_packet_number(), 2u);
  // Same plaintext, different packet numbers: different ciphertexts.
  EXPECT_NE(std::vector<std::uint8_t>(a.begin() + kHeaderSize, a.end()),
            std::vector<std::uint8_t>(b.begin() + kHeaderSize, b.end()));
  EXPECT_NE(packet_nonce(kIv, 0), packet_nonce(kIv, 1));
  EXPECT_NE(packet_nonce(kIv, 1), packet_nonce(kIv, std::uint64_t{1} << 32 | 1));
}

TEST(PacketProtectionTest, ReorderedPacketsOpenOnceEach) {
  PacketSealer s = sealer(kModes[0]);
  PacketOpener o = opener(kModes[0]);
  std::vector<std::vector<std::uint8_t>> sent;
  for (int i = 0; i < 50; ++i) sent.push_back(seal_sample(s, PacketType::kData));
  for (int i = 49; i >= 0; --i) {
    auto d = sent[static_cast<std::size_t>(i)];
    EXPECT_TRUE(o.open(d, kNow).has_value()) << i;
  }
  for (auto d : sent) EXPECT_FALSE(o.open(d, kNow).has_value());
}

TEST(PacketProtectionTest, TimestampWindowIsCircularAcrossMidnight) {
  PacketSealer s = sealer(kModes[0]);
  PacketOpener o = opener(kModes[0]);
  auto seal_at = [&](std::uint32_t ts) {
    wire::Packet p = testing::sample_packet(PacketType::kData);
    p.header.timestamp_ms = ts;
    std::vector<std::uint8_t> buf(wire::kMaxDatagramSize);
    std::size_t len = wire::body_size(p.body);
    EXPECT_TRUE(wire::write_body(p.header, p.body, MutableBytes(buf).subspan(kHeaderSize, len)));
    buf.resize(s.seal(p.header, buf, len).value());
    return buf;
  };
  auto late = seal_at(wire::kMsPerDay - 10'000);  // 23:59:50 sender, 00:00:05 receiver
  EXPECT_TRUE(o.open(late, 5'000).has_value());
  auto stale = seal_at(kNow - 30'001);
  auto r = o.open(stale, kNow);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kTimestampInvalid);
}

TEST(PacketProtectionTest, WrongKeyFailsAuthentication) {
  PacketSealer s = sealer(kModes[0]);
  auto other = kKey;
  other[0] ^= 1;
  PacketOpener o = PacketOpener::create(ProtectionMode::kAead, AeadAlgorithm::kChaCha20Poly1305,
                                        {other, kIv, kMac}).value();
  auto d = seal_sample(s, PacketType::kData);
  auto r = o.open(d, kNow);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kAuthenticationFailed);
}

TEST(PacketProtectionTest, BadKeySizesAreRefused) {
  std::vector<std::uint8_t> short_iv(11);
  EXPECT_FALSE(PacketSealer::create(ProtectionMode::kAead, AeadAlgorithm::kChaCha20Poly1305,
                                    {kKey, short_iv, kMac}).has_value());
  std::vector<std::uint8_t> short_key(16);
  EXPECT_FALSE(PacketOpener::create(ProtectionMode::kAead, AeadAlgorithm::kAes256Gcm,
                                    {short_key, kIv, kMac}).has_value());
  EXPECT_FALSE(PacketSealer::create(ProtectionMode::kHmac, AeadAlgorithm::kChaCha20Poly1305,
                                    {kKey, kIv, short_key}).has_value());
}

}  // namespace
}  // namespace buckwild::crypto

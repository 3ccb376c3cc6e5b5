#include "core/crypto/packet_protection.h"

#include <cassert>
#include <cstring>

#include "core/crypto/constant_time.h"
#include "core/hop/time_window.h"
#include "core/wire/codec.h"

namespace buckwild::crypto {
namespace {

using wire::kHeaderSize;
using wire::kTagSize;

struct Primitives {
  std::optional<Aead> aead;
  std::optional<HmacSha256> mac;
  SecretBytes iv;
};

Result<Primitives> make_primitives(ProtectionMode mode, AeadAlgorithm algorithm,
                                   const PacketKeyMaterial& keys) {
  Primitives p;
  if (mode == ProtectionMode::kAead) {
    if (keys.packet_iv.size() != kAeadNonceSize) {
      return fail(ErrorCode::kInvalidParameter, "packet IV must be 12 bytes");
    }
    auto aead = Aead::create(algorithm, keys.packet_key);
    if (!aead) return std::unexpected(aead.error());
    p.aead.emplace(std::move(*aead));
    p.iv = SecretBytes::copy_of(keys.packet_iv);
  } else {
    if (keys.mac_key.size() != kSha256Size) {
      return fail(ErrorCode::kInvalidParameter, "MAC key must be 32 bytes");
    }
    auto mac = HmacSha256::create(keys.mac_key);
    if (!mac) return std::unexpected(mac.error());
    p.mac.emplace(std::move(*mac));
  }
  return p;
}

// HMAC mode's tag: HMAC-SHA256 over header and body, first 16 bytes.
void hmac_tag(HmacSha256& mac, Bytes header_and_body, std::uint8_t* tag) {
  Digest d = mac.compute({header_and_body});
  std::memcpy(tag, d.data(), kTagSize);
}

}  // namespace

AeadNonce packet_nonce(Bytes iv, std::uint64_t pn) {
  assert(iv.size() == kAeadNonceSize);
  AeadNonce nonce;
  std::memcpy(nonce.data(), iv.data(), kAeadNonceSize);
  for (int i = 0; i < 8; ++i) nonce[4 + i] ^= static_cast<std::uint8_t>(pn >> (56 - 8 * i));
  return nonce;
}

Result<PacketSealer> PacketSealer::create(ProtectionMode mode, AeadAlgorithm algorithm,
                                          const PacketKeyMaterial& keys) {
  auto p = make_primitives(mode, algorithm, keys);
  if (!p) return std::unexpected(p.error());
  return PacketSealer(mode, std::move(p->aead), std::move(p->mac), std::move(p->iv));
}

Result<std::size_t> PacketSealer::seal(wire::Header& h, MutableBytes datagram,
                                       std::size_t body_len) {
  if (body_len > wire::kMaxBodySize || datagram.size() < wire::kOverhead + body_len) {
    return fail(ErrorCode::kInvalidParameter, "datagram buffer too small for body");
  }
  if (next_pn_ > kMaxPacketNumber) {
    return fail(ErrorCode::kRecoveryFailed, "packet numbers exhausted; rekey required");
  }
  const std::uint64_t pn = next_pn_++;
  h.packet_number = static_cast<std::uint32_t>(pn);
  h.payload_length = static_cast<std::uint16_t>(body_len);
  wire::write_header(h, datagram);

  std::uint8_t* tag = datagram.data() + kHeaderSize + body_len;
  if (mode_ == ProtectionMode::kAead) {
    AeadTag t;
    auto sealed = aead_->seal(packet_nonce(iv_.view(), pn), datagram.first(kHeaderSize),
                              datagram.subspan(kHeaderSize, body_len), t);
    if (!sealed) return std::unexpected(sealed.error());
    std::memcpy(tag, t.data(), kTagSize);
  } else {
    hmac_tag(*mac_, datagram.first(kHeaderSize + body_len), tag);
  }
  return wire::kOverhead + body_len;
}

Result<PacketOpener> PacketOpener::create(ProtectionMode mode, AeadAlgorithm algorithm,
                                          const PacketKeyMaterial& keys) {
  auto p = make_primitives(mode, algorithm, keys);
  if (!p) return std::unexpected(p.error());
  return PacketOpener(mode, std::move(p->aead), std::move(p->mac), std::move(p->iv));
}

Result<OpenedPacket> PacketOpener::open(MutableBytes datagram, std::uint32_t now_ms_of_day,
                                        std::uint32_t timestamp_window_ms) {
  auto h = wire::parse_header(datagram);
  if (!h) return std::unexpected(h.error());
  if (!hop::timestamp_fresh(h->timestamp_ms, now_ms_of_day, timestamp_window_ms)) {
    return fail(ErrorCode::kTimestampInvalid, "timestamp outside the replay window");
  }
  const std::uint64_t pn = expand_packet_number(h->packet_number, replay_.largest());
  if (!replay_.check(pn)) return fail(ErrorCode::kReplayAttack, "packet number replayed or too old");

  const std::size_t body_len = h->payload_length;
  MutableBytes body = datagram.subspan(kHeaderSize, body_len);
  const std::uint8_t* tag = datagram.data() + kHeaderSize + body_len;
  if (mode_ == ProtectionMode::kAead) {
    AeadTag t;
    std::memcpy(t.data(), tag, kTagSize);
    auto opened = aead_->open(packet_nonce(iv_.view(), pn), datagram.first(kHeaderSize), body, t);
    if (!opened) return std::unexpected(opened.error());
  } else {
    std::uint8_t expected[kTagSize];
    hmac_tag(*mac_, datagram.first(kHeaderSize + body_len), expected);
    if (!ct_equal(Bytes(expected, kTagSize), Bytes(tag, kTagSize))) {
      return fail(ErrorCode::kAuthenticationFailed, "packet tag does not verify");
    }
  }
  replay_.commit(pn);
  return OpenedPacket{*h, body, pn};
}

}  // namespace buckwild::crypto

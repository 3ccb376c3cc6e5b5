#include "core/hop/key_schedule.h"

#include <array>
#include <cassert>
#include <cstring>
#include <string>
#include <utility>

#include "core/crypto/hkdf.h"
#include "core/hop/time_window.h"

namespace buckwild::hop {
namespace {

Bytes ascii(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// HKDF info strings are short; build them on the stack. None of them is secret.
template <std::size_t N>
class InfoBuilder {
 public:
  InfoBuilder& add(Bytes b) {
    // Callers bound their inputs' lengths against N before building.
    assert(b.size() <= N - size_);
    if (!b.empty()) std::memcpy(buf_.data() + size_, b.data(), b.size());
    size_ += b.size();
    return *this;
  }
  Bytes view() const { return {buf_.data(), size_}; }

 private:
  std::array<std::uint8_t, N> buf_{};
  std::size_t size_ = 0;
};

Result<crypto::SecretBytes> expand_labelled(const crypto::SecretBytes& prk, std::string_view prefix,
                                            Direction dir, std::size_t length) {
  InfoBuilder<64> info;
  info.add(ascii(prefix)).add(ascii(direction_label(dir)));
  return crypto::hkdf_expand(prk.view(), info.view(), length);
}

}  // namespace

std::string_view direction_label(Direction dir) {
  return dir == Direction::kInitiatorToResponder ? "i2r" : "r2i";
}

Result<crypto::SecretBytes> daily_key(Bytes psk, std::int64_t day) {
  if (psk.size() < kMinPskSize || psk.size() > kMaxPskSize) {
    return fail(ErrorCode::kInvalidParameter, "PSK must be 16..64 bytes");
  }
  const std::string date = utc_date_string(day);
  // Only days tens of millions of years away have dates longer than 32 characters.
  if (date.size() > 32) return fail(ErrorCode::kInvalidParameter, "day out of range");
  InfoBuilder<64> info;
  info.add(ascii("daily_key")).add(ascii(date));
  return crypto::hkdf(ascii("daily_key_salt"), psk, info.view(), kDailyKeySize);
}

Result<crypto::SecretBytes> session_key(Bytes daily_key, std::uint64_t session_id, Bytes nonce,
                                        Bytes dh_shared) {
  if (daily_key.size() != kDailyKeySize) {
    return fail(ErrorCode::kInvalidParameter, "daily key must be 32 bytes");
  }
  if (nonce.size() > kMaxSessionNonceSize) {
    return fail(ErrorCode::kInvalidParameter, "session nonce longer than 64 bytes");
  }
  if (dh_shared.size() > kMaxDhSharedSize) {
    return fail(ErrorCode::kInvalidParameter, "DH shared secret longer than 64 bytes");
  }
  std::array<std::uint8_t, 8> salt;
  store_be64(salt.data(), session_id);

  // The IKM concatenates two secrets, so it is assembled in locked memory.
  crypto::SecretBytes ikm(daily_key.size() + dh_shared.size());
  std::memcpy(ikm.data(), daily_key.data(), daily_key.size());
  if (!dh_shared.empty()) {
    std::memcpy(ikm.data() + daily_key.size(), dh_shared.data(), dh_shared.size());
  }

  InfoBuilder<11 + kMaxSessionNonceSize> info;
  info.add(ascii("session_key")).add(nonce);
  return crypto::hkdf(salt, ikm.view(), info.view(), kSessionKeySize);
}

Result<DirectionKeys> derive_direction_keys(const crypto::SecretBytes& session_key, Direction dir) {
  if (session_key.size() != kSessionKeySize) {
    return fail(ErrorCode::kInvalidParameter, "session key must be 32 bytes");
  }
  auto key = expand_labelled(session_key, "buckwild packet key ", dir, kPacketKeySize);
  if (!key) return std::unexpected(key.error());
  auto iv = expand_labelled(session_key, "buckwild packet iv ", dir, kPacketIvSize);
  if (!iv) return std::unexpected(iv.error());
  auto mac = expand_labelled(session_key, "buckwild packet mac ", dir, kMacKeySize);
  if (!mac) return std::unexpected(mac.error());
  return DirectionKeys{std::move(*key), std::move(*iv), std::move(*mac)};
}

}  // namespace buckwild::hop

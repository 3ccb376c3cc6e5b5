#include "core/hop/connection_offset.h"

#include <array>
#include <cassert>
#include <string_view>
#include <utility>

#include "core/crypto/hkdf.h"
#include "core/hop/key_schedule.h"

namespace buckwild::hop {
namespace {

constexpr int kRounds = 4;
constexpr std::size_t kHalfSize = 64;  // 6-bit halves of a 12-bit id
constexpr std::size_t kTableSize = kRounds * kHalfSize;

Bytes ascii(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace

Result<ConnectionOffsets> ConnectionOffsets::create(Bytes daily_key, std::uint64_t session_id) {
  if (daily_key.size() != kDailyKeySize) {
    return fail(ErrorCode::kInvalidParameter, "daily key must be 32 bytes");
  }
  constexpr std::string_view kLabel = "port_offset";
  std::array<std::uint8_t, kLabel.size() + 8> info{};
  for (std::size_t i = 0; i < kLabel.size(); ++i) info[i] = static_cast<std::uint8_t>(kLabel[i]);
  store_be64(info.data() + kLabel.size(), session_id);

  auto material = crypto::hkdf(ascii("connection_offset_salt"), daily_key, info, kTableSize);
  if (!material) return std::unexpected(material.error());
  // Mask in place so that the table only ever exists in locked memory.
  for (std::uint8_t& b : material->mutable_view()) b &= 0x3F;
  return ConnectionOffsets(std::move(*material));
}

std::uint16_t ConnectionOffsets::offset(std::uint16_t connection_id) const {
  assert(connection_id <= kMaxConnectionId);
  assert(table_.size() == kTableSize);
  const std::uint8_t* t = table_.data();
  unsigned left = (connection_id >> 6) & 0x3F;
  unsigned right = connection_id & 0x3F;
  for (int r = 0; r < kRounds; ++r) {
    const unsigned next = left ^ t[static_cast<std::size_t>(r) * kHalfSize + right];
    left = right;
    right = next;
  }
  return static_cast<std::uint16_t>((left << 6) | right);
}

}  // namespace buckwild::hop

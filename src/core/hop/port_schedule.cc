#include "core/hop/port_schedule.h"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "core/common/fatal.h"
#include "core/hop/time_window.h"

namespace buckwild::hop {
namespace {

constexpr std::size_t kBaseMessageSize = 8 + 8 + 1;

std::array<std::uint8_t, kBaseMessageSize> base_message(std::uint64_t window_of_day,
                                                        std::uint64_t session_id, Direction dir) {
  std::array<std::uint8_t, kBaseMessageSize> msg;
  store_be64(msg.data(), window_of_day);
  store_be64(msg.data() + 8, session_id);
  msg[16] = static_cast<std::uint8_t>(dir);
  return msg;
}

std::uint32_t base_from_digest(const crypto::Digest& mac) {
  const std::uint64_t v =
      (std::uint64_t{load_be32(mac.data())} << 32) | std::uint64_t{load_be32(mac.data() + 4)};
  // 2^64 mod 64512 != 0, so this is biased, by at most 64512 / 2^64 per port.
  return static_cast<std::uint32_t>(v % kPortRange);
}

std::uint16_t port_from(std::uint32_t base, std::uint16_t offset) {
  return static_cast<std::uint16_t>(kMinPort +
                                    (base + std::uint32_t{offset} * kOffsetStride) % kPortRange);
}

}  // namespace

Result<std::uint16_t> compute_port(Bytes daily_key, std::uint64_t window_of_day,
                                   std::uint64_t session_id, Direction dir, std::uint16_t offset) {
  if (daily_key.size() != kDailyKeySize) {
    return fail(ErrorCode::kInvalidParameter, "daily key must be 32 bytes");
  }
  if (window_of_day >= static_cast<std::uint64_t>(kWindowsPerDay)) {
    return fail(ErrorCode::kInvalidParameter, "window of day out of range");
  }
  if (offset > kMaxConnectionOffset) {
    return fail(ErrorCode::kInvalidParameter, "connection offset out of range");
  }
  const auto msg = base_message(window_of_day, session_id, dir);
  return port_from(base_from_digest(crypto::hmac_sha256(daily_key, {msg})), offset);
}

Result<PortSchedule> PortSchedule::create(const crypto::SecretBytes& psk,
                                          std::uint64_t session_id) {
  if (psk.size() < kMinPskSize || psk.size() > kMaxPskSize) {
    return fail(ErrorCode::kInvalidParameter, "PSK must be 16..64 bytes");
  }
  return PortSchedule(crypto::SecretBytes::copy_of(psk.view()), session_id);
}

PortSchedule::DayState& PortSchedule::day_state(std::int64_t day) {
  ++use_counter_;
  std::optional<DayState>* victim = &days_[0];
  for (auto& slot : days_) {
    if (slot && slot->day == day) {
      slot->last_used = use_counter_;
      return *slot;
    }
    // Prefer an empty slot, else the least recently used one: with a clock
    // that moves forward that is the oldest day, and unlike "smallest day" it
    // does not thrash when the clock steps back across a midnight.
    if (!slot) {
      victim = &slot;
    } else if (*victim && slot->last_used < (*victim)->last_used) {
      victim = &slot;
    }
  }

  // The PSK length was checked in create(), and 32-byte daily keys are what
  // the other two derivations accept, so only allocation can fail here.
  auto key = daily_key(psk_.view(), day);
  if (!key) fatal("port schedule: daily key derivation failed");
  auto hmac = crypto::HmacSha256::create(key->view());
  if (!hmac) fatal("cannot create an HMAC context");
  auto offsets = ConnectionOffsets::create(key->view(), session_id_);
  if (!offsets) fatal("connection offset derivation failed");
  // The daily key itself is not kept: the HMAC context and the offset table are
  // all a port lookup needs.
  victim->reset();
  victim->emplace(DayState{day, use_counter_, std::move(*hmac), std::move(*offsets)});
  return **victim;
}

std::uint64_t PortSchedule::base(std::int64_t window, Direction dir) {
  const auto dir_byte = static_cast<std::uint8_t>(dir);
  const std::size_t index =
      ((static_cast<std::uint64_t>(window) << 1) | dir_byte) & (kBaseCacheSize - 1);
  BaseEntry& entry = bases_[index];
  if (entry.valid && entry.window == window && entry.dir == dir_byte) return entry.base;

  DayState& state = day_state(day_of_window(window));
  const auto msg = base_message(window_of_day(window), session_id_, dir);
  const std::uint32_t b = base_from_digest(state.hmac.compute({msg}));
  entry = BaseEntry{window, b, dir_byte, true};
  return b;
}

std::uint16_t PortSchedule::port(std::int64_t window, Direction dir, std::uint16_t connection_id) {
  assert(connection_id <= kMaxConnectionId);
  const auto b = static_cast<std::uint32_t>(base(window, dir));
  const std::uint16_t offset = day_state(day_of_window(window)).offsets.offset(connection_id);
  return port_from(b, offset);
}

void PortSchedule::valid_ports(std::int64_t center_window, int delay_allowance, Direction dir,
                               std::uint16_t connection_id, std::vector<std::uint16_t>& out) {
  const int d = std::clamp(delay_allowance, kDelayAllowanceMin, kDelayAllowanceMax);
  out.reserve(out.size() + static_cast<std::size_t>(2 * d + 1));
  for (std::int64_t w = center_window - d; w <= center_window + d; ++w) {
    out.push_back(port(w, dir, connection_id));
  }
}

}  // namespace buckwild::hop

// The port schedule: which UDP port a datagram of a session travels to in each
// 250 ms window.
//
// For absolute window W (time_window.h), direction of travel dir, session id S
// and connection id c:
//   base(W, dir)    = BE64(HMAC-SHA256(daily_key(day_of_window(W)),
//                          window_of_day(W) (8 bytes BE) || S (8 bytes BE) || dir (1 byte))[0..8))
//                     mod 64512
//   port(W, dir, c) = 1024 + (base(W, dir) + offset(c) * 15) mod 64512
// where offset is the day's connection offset permutation (connection_offset.h).
// All connections of a session share base(W, dir), and offset * 15 takes 4096
// distinct values below 64512, so two connections of a session never share a
// port in the same window and direction. (The reference protocol puts the
// offset inside the HMAC instead, where ports can collide.) A window near
// midnight uses the daily key of its own UTC day.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/common/bytes.h"
#include "core/common/error.h"
#include "core/crypto/hmac.h"
#include "core/crypto/secret_bytes.h"
#include "core/hop/connection_offset.h"
#include "core/hop/key_schedule.h"
#include "core/wire/messages.h"

namespace buckwild::hop {

// The protocol constants themselves live in wire/messages.h.
using wire::kDiscoveryPort;
using wire::kMaxPort;
using wire::kMinPort;
using wire::kOffsetStride;
using wire::kPortRange;
inline constexpr int kDelayAllowanceMin = static_cast<int>(wire::kDelayAllowanceMin);
inline constexpr int kDelayAllowanceMax = static_cast<int>(wire::kDelayAllowanceMax);

static_assert(kMinPort + kPortRange - 1 == kMaxPort);
static_assert(std::uint32_t{kMaxConnectionOffset} * kOffsetStride < kPortRange);

// The bare formula, with no caching: the port for `window_of_day` of the day
// whose daily key is `daily_key`, for a connection whose offset is `offset`.
// Fails: kInvalidParameter if daily_key is not 32 bytes, window_of_day >= 345600
// or offset > 4095.
Result<std::uint16_t> compute_port(Bytes daily_key, std::uint64_t window_of_day,
                                   std::uint64_t session_id, Direction dir, std::uint16_t offset);

// The port schedule of one session, with the per-day state (HMAC context and
// offset permutation, derived lazily from a private copy of the PSK) cached for
// at most 3 days, the least recently used evicted first, and base values cached
// per (window, direction) in a 64-entry direct-mapped table, so that a port
// lookup in a recently used window costs no HMAC.
//
// Not thread-safe: every lookup may fill a cache. Move-only.
class PortSchedule {
 public:
  // Fails: kInvalidParameter if psk is not 16..64 bytes.
  static Result<PortSchedule> create(const crypto::SecretBytes& psk, std::uint64_t session_id);

  // Port of connection `connection_id` in absolute window `window`, direction `dir`.
  // Precondition: connection_id <= 4095 (asserted).
  // Aborts the process if OpenSSL cannot allocate an HMAC context (out of
  // memory), as SecretBytes does when locked memory runs out.
  std::uint16_t port(std::int64_t window, Direction dir, std::uint16_t connection_id);

  // Appends to `out` the ports of windows center - d .. center + d, in window
  // order, where d is `delay_allowance` clamped to 1..16 (2d + 1 ports). A port
  // that recurs in two windows appears twice: duplicates are kept so that
  // out[i] is always the port of window center - d + i.
  void valid_ports(std::int64_t center_window, int delay_allowance, Direction dir,
                   std::uint16_t connection_id, std::vector<std::uint16_t>& out);

  // base(W, dir), 0 .. 64511: the port of the connection whose offset is 0,
  // minus 1024.
  std::uint64_t base(std::int64_t window, Direction dir);

  std::uint64_t session_id() const { return session_id_; }

 private:
  struct DayState {
    std::int64_t day;
    std::uint64_t last_used;
    crypto::HmacSha256 hmac;  // keyed with the daily key of `day`
    ConnectionOffsets offsets;
  };
  struct BaseEntry {
    std::int64_t window = 0;
    std::uint32_t base = 0;
    std::uint8_t dir = 0;
    bool valid = false;
  };
  static constexpr std::size_t kDayCacheSize = 3;
  static constexpr std::size_t kBaseCacheSize = 64;

  PortSchedule(crypto::SecretBytes psk, std::uint64_t session_id)
      : psk_(std::move(psk)), session_id_(session_id) {}

  DayState& day_state(std::int64_t day);

  crypto::SecretBytes psk_;
  std::uint64_t session_id_;
  std::array<std::optional<DayState>, kDayCacheSize> days_;
  std::uint64_t use_counter_ = 0;
  std::array<BaseEntry, kBaseCacheSize> bases_{};
};

}  // namespace buckwild::hop

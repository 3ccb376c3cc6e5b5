#include "core/hop/port_schedule.h"

#include <gtest/gtest.h>

#include <array>
#include <bitset>
#include <chrono>
#include <cstdint>
#include <vector>

#include "core/hop/connection_offset.h"
#include "core/hop/key_schedule.h"
#include "core/hop/time_window.h"

namespace buckwild::hop {
namespace {

constexpr std::int64_t kVectorDay = 20417;  // 2025-11-25
constexpr std::uint64_t kVectorSessionId = 0x0123456789abcdefULL;

std::vector<std::uint8_t> range_bytes(std::uint8_t first, std::size_t n) {
  std::vector<std::uint8_t> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(first + i);
  return out;
}

crypto::SecretBytes vector_psk() {
  return crypto::SecretBytes::copy_of(range_bytes(0x00, 32));
}

PortSchedule make_schedule(std::uint64_t session_id = kVectorSessionId) {
  auto s = PortSchedule::create(vector_psk(), session_id);
  if (!s) std::abort();
  return std::move(*s);
}

// The port by the bare formula, deriving everything from scratch.
std::uint16_t reference_port(std::int64_t window, Direction dir, std::uint16_t connection_id,
                             std::uint64_t session_id = kVectorSessionId) {
  const auto psk = range_bytes(0x00, 32);
  auto dkey = daily_key(psk, day_of_window(window));
  EXPECT_TRUE(dkey.has_value());
  auto offsets = ConnectionOffsets::create(dkey->view(), session_id);
  EXPECT_TRUE(offsets.has_value());
  auto port = compute_port(dkey->view(), window_of_day(window), session_id, dir,
                           offsets->offset(connection_id));
  EXPECT_TRUE(port.has_value());
  return port.value_or(0);
}

struct PortVector {
  std::uint32_t window_of_day;
  Direction dir;
  std::uint16_t connection_id;
  std::uint16_t port;
};

// Known answers from tests/vectors/gen_hop_vectors.py (independent Python):
// PSK 00..1f, day 20417 (2025-11-25), session id 0x0123456789abcdef; offsets of
// connections 0 and 1 are 866 and 2249.
constexpr Direction kI2r = Direction::kInitiatorToResponder;
constexpr Direction kR2i = Direction::kResponderToInitiator;
constexpr std::array<PortVector, 16> kPortVectors = {{
    {0, kI2r, 0, 5732},
    {0, kI2r, 1, 26477},
    {0, kR2i, 0, 32308},
    {0, kR2i, 1, 53053},
    {1, kI2r, 0, 65433},
    {1, kI2r, 1, 21666},
    {1, kR2i, 0, 13524},
    {1, kR2i, 1, 34269},
    {2, kI2r, 0, 55040},
    {2, kI2r, 1, 11273},
    {2, kR2i, 0, 43218},
    {2, kR2i, 1, 63963},
    {345599, kI2r, 0, 7461},
    {345599, kI2r, 1, 28206},
    {345599, kR2i, 0, 14855},
    {345599, kR2i, 1, 35600},
}};

TEST(PortScheduleTest, KnownAnswers) {
  PortSchedule schedule = make_schedule();
  const auto dkey = daily_key(range_bytes(0x00, 32), kVectorDay);
  ASSERT_TRUE(dkey.has_value());
  const std::array<std::uint16_t, 2> offsets = {866, 2249};
  for (const PortVector& v : kPortVectors) {
    const std::int64_t w = kVectorDay * kWindowsPerDay + v.window_of_day;
    EXPECT_EQ(schedule.port(w, v.dir, v.connection_id), v.port)
        << "window " << v.window_of_day << " dir " << int(v.dir) << " c " << v.connection_id;
    auto bare = compute_port(dkey->view(), v.window_of_day, kVectorSessionId, v.dir,
                             offsets[v.connection_id]);
    ASSERT_TRUE(bare.has_value());
    EXPECT_EQ(*bare, v.port);
  }
}

TEST(PortScheduleTest, CachedPortEqualsComputePort) {
  PortSchedule schedule = make_schedule();
  // A deterministic walk over windows of seven days (more than the 3-day
  // cache), both directions and assorted connections, revisiting windows so
  // that hits, direct-mapped conflicts and day evictions all occur.
  std::uint64_t x = 0x9E3779B97F4A7C15ULL;
  const std::int64_t first = (kVectorDay - 3) * kWindowsPerDay;
  for (int i = 0; i < 600; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    const std::int64_t w = first + static_cast<std::int64_t>((x >> 20) % (7 * kWindowsPerDay));
    const auto dir = static_cast<Direction>((x >> 3) & 1);
    const auto c = static_cast<std::uint16_t>((x >> 40) % (kMaxConnectionId + 1));
    const std::uint16_t expected = reference_port(w, dir, c);
    EXPECT_EQ(schedule.port(w, dir, c), expected) << "window " << w;
    EXPECT_EQ(schedule.port(w, dir, c), expected) << "window " << w << " (cached)";
    EXPECT_EQ(schedule.port(w + 1, dir, 0), reference_port(w + 1, dir, 0));
  }
}

TEST(PortScheduleTest, NegativeWindowsWork) {
  PortSchedule schedule = make_schedule(42);
  for (std::int64_t w : std::array<std::int64_t, 4>{-1, -2, -kWindowsPerDay, -kWindowsPerDay - 1}) {
    EXPECT_EQ(schedule.port(w, kI2r, 3), reference_port(w, kI2r, 3, 42)) << w;
  }
}

TEST(PortScheduleTest, PortIsBasePlusStridedOffset) {
  PortSchedule schedule = make_schedule();
  const auto dkey = daily_key(range_bytes(0x00, 32), kVectorDay);
  ASSERT_TRUE(dkey.has_value());
  auto offsets = ConnectionOffsets::create(dkey->view(), kVectorSessionId);
  ASSERT_TRUE(offsets.has_value());
  const std::int64_t w = kVectorDay * kWindowsPerDay + 1000;
  const std::uint64_t b = schedule.base(w, kR2i);
  ASSERT_LT(b, kPortRange);
  for (std::uint16_t c : std::array<std::uint16_t, 4>{0, 1, 100, 4095}) {
    EXPECT_EQ(schedule.port(w, kR2i, c),
              kMinPort + (b + offsets->offset(c) * kOffsetStride) % kPortRange);
  }
}

TEST(PortScheduleTest, FullDayIsUniformAndRarelyRepeats) {
  PortSchedule schedule = make_schedule();
  const std::int64_t first = kVectorDay * kWindowsPerDay;
  constexpr int kBins = 64;
  constexpr std::uint32_t kBinWidth = kPortRange / kBins;  // 1008
  static_assert(kBinWidth * kBins == kPortRange);
  std::array<std::int64_t, kBins> counts{};
  int repeats = 0;
  std::uint16_t previous = 0;

  const auto start = std::chrono::steady_clock::now();
  for (std::int64_t i = 0; i < kWindowsPerDay; ++i) {
    const std::uint16_t port = schedule.port(first + i, kI2r, 5);
    ASSERT_GE(port, kMinPort);
    ++counts[(port - kMinPort) / kBinWidth];
    if (i > 0 && port == previous) ++repeats;
    previous = port;
  }
  const auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start);

  const double expected = static_cast<double>(kWindowsPerDay) / kBins;  // 5400
  double chi2 = 0;
  for (std::int64_t n : counts)
    chi2 += (static_cast<double>(n) - expected) * (static_cast<double>(n) - expected) / expected;
  // 63 degrees of freedom: mean 63, P(chi2 >= 110) is about 0.0002.
  EXPECT_LT(chi2, 110.0);
  // Expected 345600 / 64512 = 5.4 same-port neighbours in a day.
  EXPECT_LE(repeats, 20);
  std::printf("[ full day ] 345600 windows in %.3f s, chi2 = %.1f, repeats = %d\n", elapsed.count(),
              chi2, repeats);
}

TEST(PortScheduleTest, ParallelConnectionsNeverSharePort) {
  PortSchedule schedule = make_schedule();
  const std::int64_t first = kVectorDay * kWindowsPerDay - 100;  // straddles midnight
  for (std::int64_t w = first; w < first + 200; ++w) {
    for (Direction dir : {kI2r, kR2i}) {
      std::bitset<65536> used;
      for (std::uint32_t c = 0; c <= kMaxConnectionId; ++c) {
        const std::uint16_t port = schedule.port(w, dir, static_cast<std::uint16_t>(c));
        ASSERT_GE(port, kMinPort);
        ASSERT_FALSE(used.test(port)) << "window " << w << " connection " << c;
        used.set(port);
      }
    }
  }
}

TEST(PortScheduleTest, MidnightUsesEachWindowsOwnDailyKey) {
  PortSchedule schedule = make_schedule();
  const auto psk = range_bytes(0x00, 32);
  const auto key_d = daily_key(psk, kVectorDay);
  const auto key_d1 = daily_key(psk, kVectorDay + 1);
  ASSERT_TRUE(key_d && key_d1);
  const std::int64_t last_of_d = (kVectorDay + 1) * kWindowsPerDay - 1;
  const std::int64_t first_of_d1 = last_of_d + 1;
  ASSERT_EQ(window_of_day(last_of_d), 345599u);
  ASSERT_EQ(window_of_day(first_of_d1), 0u);

  for (Direction dir : {kI2r, kR2i}) {
    // The offset of connection 0 is part of each day's key schedule as well;
    // use the base (offset 0) to isolate the HMAC key.
    const std::uint64_t base_last = schedule.base(last_of_d, dir);
    const std::uint64_t base_first = schedule.base(first_of_d1, dir);
    auto with_d = compute_port(key_d->view(), 345599, kVectorSessionId, dir, 0);
    auto with_d1 = compute_port(key_d1->view(), 345599, kVectorSessionId, dir, 0);
    auto first_with_d1 = compute_port(key_d1->view(), 0, kVectorSessionId, dir, 0);
    auto first_with_d = compute_port(key_d->view(), 0, kVectorSessionId, dir, 0);
    ASSERT_TRUE(with_d && with_d1 && first_with_d1 && first_with_d);
    EXPECT_EQ(base_last + kMinPort, *with_d);
    EXPECT_NE(base_last + kMinPort, *with_d1);
    EXPECT_EQ(base_first + kMinPort, *first_with_d1);
    EXPECT_NE(base_first + kMinPort, *first_with_d);
  }
}

TEST(PortScheduleTest, ValidPortsAcrossMidnightMatchOneByOne) {
  PortSchedule schedule = make_schedule();
  const std::int64_t midnight = (kVectorDay + 1) * kWindowsPerDay;
  for (std::int64_t center : {midnight - 1, midnight, midnight + 3}) {
    for (Direction dir : {kI2r, kR2i}) {
      std::vector<std::uint16_t> ports = {7};  // valid_ports appends
      schedule.valid_ports(center, kDelayAllowanceMax, dir, 9, ports);
      ASSERT_EQ(ports.size(), 1u + 2 * kDelayAllowanceMax + 1);
      EXPECT_EQ(ports[0], 7);
      for (int i = 0; i < 2 * kDelayAllowanceMax + 1; ++i) {
        const std::int64_t w = center - kDelayAllowanceMax + i;
        EXPECT_EQ(ports[1 + i], reference_port(w, dir, 9)) << "window " << w;
      }
    }
  }
}

TEST(PortScheduleTest, ValidPortsClampsDelayAllowance) {
  PortSchedule schedule = make_schedule();
  const std::int64_t center = kVectorDay * kWindowsPerDay + 500;
  struct Case {
    int requested;
    std::size_t expected_size;
  };
  for (Case c : {Case{-5, 3}, Case{0, 3}, Case{1, 3}, Case{4, 9}, Case{16, 33}, Case{17, 33},
                 Case{1000, 33}}) {
    std::vector<std::uint16_t> ports;
    schedule.valid_ports(center, c.requested, kI2r, 0, ports);
    EXPECT_EQ(ports.size(), c.expected_size) << c.requested;
    const int d = static_cast<int>(c.expected_size / 2);
    for (int i = 0; i < static_cast<int>(ports.size()); ++i) {
      EXPECT_EQ(ports[i], schedule.port(center - d + i, kI2r, 0));
    }
  }
}

TEST(PortScheduleTest, SessionsAndDirectionsHopDifferently) {
  PortSchedule a = make_schedule(1);
  PortSchedule b = make_schedule(2);
  const std::int64_t first = kVectorDay * kWindowsPerDay;
  int same_session = 0;
  int same_direction = 0;
  for (std::int64_t w = first; w < first + 1000; ++w) {
    same_session += a.port(w, kI2r, 0) == b.port(w, kI2r, 0);
    same_direction += a.port(w, kI2r, 0) == a.port(w, kR2i, 0);
  }
  EXPECT_LT(same_session, 5);
  EXPECT_LT(same_direction, 5);
}

TEST(PortScheduleTest, CreateRejectsBadPsk) {
  for (std::size_t n : {0, 15, 65}) {
    auto s = PortSchedule::create(crypto::SecretBytes::copy_of(range_bytes(0, n)), 1);
    ASSERT_FALSE(s.has_value()) << n;
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidParameter);
  }
}

TEST(PortScheduleTest, ComputePortRejectsBadInputs) {
  const auto key = range_bytes(0, 32);
  const auto short_key = range_bytes(0, 31);
  EXPECT_FALSE(compute_port(short_key, 0, 1, kI2r, 0).has_value());
  EXPECT_FALSE(compute_port(key, kWindowsPerDay, 1, kI2r, 0).has_value());
  EXPECT_FALSE(compute_port(key, 0, 1, kI2r, 4096).has_value());
  EXPECT_TRUE(compute_port(key, kWindowsPerDay - 1, 1, kI2r, 4095).has_value());
}

}  // namespace
}  // namespace buckwild::hop

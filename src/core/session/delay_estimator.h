// Chooses the delay allowance d (1..16 windows) from measured one-way delays.
//
// Each authenticated packet gives a sample: its arrival time minus its header
// timestamp, corrected by the peer's measured clock offset (docs/protocol.md
// §10.4). A sender aims at the window the receiver's clock is in, so d has to
// cover the one-way delay, its jitter and the error of the offset estimate. We
// keep the last 64 samples and take
//   d = clamp(ceil((p95(|sample|) + 100 ms safety) / 250 ms), 1, 16).
#pragma once

#include <array>
#include <cstdint>
#include <optional>

namespace buckwild::session {

class DelayEstimator {
 public:
  static constexpr int kMin = 1;
  static constexpr int kMax = 16;
  static constexpr std::int32_t kSafetyMarginMs = 100;

  void add_sample(std::int32_t one_way_ms);
  // The peer clock offset the samples were corrected with changed by
  // `delta_ms`: move them with it (peer time sync).
  void shift(std::int32_t delta_ms);

  // The allowance these samples call for; kMin + 1 before any sample.
  int desired() const;
  // Mean absolute deviation of the samples, ms (the jitter reported in HEARTBEAT).
  std::uint16_t jitter_ms() const;
  // The median of the samples' magnitudes, ms (the upper one of an even
  // count); nullopt before the first.
  std::optional<std::int32_t> median_ms() const;
  std::uint8_t sample_count() const { return count_ > 255 ? 255 : static_cast<std::uint8_t>(count_); }

 private:
  static constexpr std::size_t kSamples = 64;
  std::size_t held() const { return count_ < kSamples ? count_ : kSamples; }
  // The samples in arrival order, a ring: samples_[0, held()) are valid.
  std::array<std::int32_t, kSamples> samples_{};
  // Their magnitudes, ascending, kept as samples come and go: the median and
  // the 95th percentile are read here, not sorted again for each packet.
  std::array<std::int32_t, kSamples> sorted_magnitudes_{};
  std::size_t next_ = 0;
  std::size_t count_ = 0;
};

}  // namespace buckwild::session

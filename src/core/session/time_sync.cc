#include "core/session/time_sync.h"

#include <algorithm>
#include <cstdlib>

#include "core/hop/time_window.h"
#include "core/session/session_state.h"

namespace buckwild::session {

bool agree(const OffsetSample& a, const OffsetSample& b, std::int32_t tolerance_ms) {
  return std::abs(a.offset_ms - b.offset_ms) <= tolerance_ms + std::abs(a.rtt_ms - b.rtt_ms) / 2;
}

PeerTimeSync::PeerTimeSync(const TimeSyncConfig& config, TimePoint now,
                           std::optional<OffsetSample> discovery)
    : config_(config), next_request_(now + config.first_after) {
  if (discovery) {
    discovery->from_discovery = true;
    samples_.push_back(*discovery);
  }
}

Duration PeerTimeSync::resync_wait() const {
  // After the last request, only its answer is awaited.
  if (resync_requests_ >= kMaxResyncRequests) return milliseconds(kTimeSyncMaxRttMs);
  return backoff(Strategy::kResync, std::max(resync_requests_, 1), jitter_);
}

wire::TimeSyncRequestBody PeerTimeSync::make_request(std::uint32_t challenge,
                                                     std::int64_t now_unix_ms, TimePoint now,
                                                     std::uint32_t jitter) {
  jitter_ = jitter;
  if (resyncing_ && ++resync_requests_ > kMaxResyncRequests) {
    resyncing_ = false;
    ++stats_.resyncs_given_up;
  }
  pending_ = true;
  challenge_ = challenge;
  sent_unix_ms_ = now_unix_ms;
  sent_at_ = now;
  ++stats_.requests_sent;
  // An unanswered request is replaced by the next one.
  next_request_ = now + (resyncing_ ? resync_wait() : config_.interval);
  return wire::TimeSyncRequestBody{challenge, hop::ms_since_midnight(now_unix_ms)};
}

wire::TimeSyncResponseBody PeerTimeSync::make_response(const wire::TimeSyncRequestBody& request,
                                                       std::int64_t now_unix_ms) {
  ++stats_.requests_answered;
  // Answered at once: the peer's receive and transmit times are one stamp.
  return wire::TimeSyncResponseBody{request.challenge, request.local_timestamp_ms,
                                    hop::ms_since_midnight(now_unix_ms)};
}

void PeerTimeSync::add_sample(const OffsetSample& s) {
  std::erase_if(samples_, [&](const OffsetSample& x) { return s.at - x.at > kFilterMaxAge; });
  if (samples_.size() >= kFilterSamples) samples_.erase(samples_.begin());
  samples_.push_back(s);
}

std::size_t PeerTimeSync::best() const {
  std::size_t b = 0;
  for (std::size_t i = 1; i < samples_.size(); ++i) {
    if (samples_[i].rtt_ms <= samples_[b].rtt_ms) b = i;
  }
  return b;
}

std::optional<PeerTimeSync::Update> PeerTimeSync::adopt(std::int32_t offset_ms, bool resync,
                                                        TimePoint now) {
  resyncing_ = false;
  next_request_ = now + config_.interval;
  return Update{offset_ms, resync};
}

void PeerTimeSync::start_resync(TimePoint now) {
  if (!resyncing_) {
    ++stats_.resyncs;
    resync_requests_ = 0;
  }
  resyncing_ = true;
  // The confirming request: the first a second after this answer, later
  // ones on the RESYNC's backoff from their predecessor.
  next_request_ = resync_requests_ == 0 ? now + kTimeSyncRetry
                                        : std::max(now, sent_at_ + resync_wait());
}

std::optional<PeerTimeSync::Update> PeerTimeSync::on_response(
    const wire::TimeSyncResponseBody& r, std::int32_t current_offset_ms,
    std::int64_t /*arrived_unix_ms*/, TimePoint arrived) {
  // Only the answer to our outstanding request counts (the challenge, and the
  // echo of our stamp); a replay of an older one is refused by the session's
  // replay window before it gets here.
  if (!pending_ || r.challenge != challenge_ ||
      r.local_timestamp_ms != hop::ms_since_midnight(sent_unix_ms_)) {
    return std::nullopt;
  }
  pending_ = false;
  const Duration rtt_us = arrived - sent_at_;
  if (rtt_us < 0 || rtt_us > milliseconds(kTimeSyncMaxRttMs)) return std::nullopt;
  ++stats_.responses_received;
  const auto rtt_ms = static_cast<std::int32_t>(rtt_us / 1000);
  const std::int64_t mid = sent_unix_ms_ + rtt_ms / 2;
  const std::int32_t measured =
      hop::circular_delta_ms(r.peer_timestamp_ms, hop::ms_since_midnight(mid));
  stats_.last_offset_ms = measured;
  stats_.last_rtt_ms = rtt_ms;

  const OffsetSample sample{measured, rtt_ms, arrived, false};
  add_sample(sample);
  std::optional<std::int32_t> own_min;
  for (const OffsetSample& s : samples_) {
    if (!s.from_discovery && (!own_min || s.rtt_ms < *own_min)) own_min = s.rtt_ms;
  }
  min_rtt_ms_ = own_min;

  // A sample is wrong by at most half of what its round trip exceeds the
  // path's: two samples agree when their offsets differ by no more than the
  // tolerance and half the difference of their round trips. A new sample
  // that disagrees with the best means a clock moved: only it speaks for the
  // new offset, so the filter starts afresh from it and a RESYNC confirms it.
  const std::size_t b = best();
  if (!agree(sample, samples_[b], config_.tolerance_ms)) {
    samples_.assign(1, sample);
    start_resync(arrived);
    return std::nullopt;
  }
  if (b != samples_.size() - 1) ++stats_.filtered;
  const std::int32_t estimate = samples_[b].offset_ms;
  // The estimate replaces the offset in use when within the tolerance of it;
  // beyond, when another sample agrees with the best (a RESYNC until then).
  if (std::abs(estimate - current_offset_ms) <= config_.tolerance_ms) {
    return adopt(estimate, false, arrived);
  }
  for (std::size_t i = 0; i < samples_.size(); ++i) {
    if (i != b && agree(samples_[i], samples_[b], config_.tolerance_ms)) {
      // Confirmed: what disagrees with it was measured before the clock moved.
      const OffsetSample kept = samples_[b];
      std::erase_if(samples_, [&](const OffsetSample& x) {
        return !agree(x, kept, config_.tolerance_ms);
      });
      return adopt(estimate, true, arrived);
    }
  }
  start_resync(arrived);
  return std::nullopt;
}

std::optional<PeerTimeSync::Update> PeerTimeSync::on_request(const wire::TimeSyncRequestBody& r,
                                                             std::int32_t current_offset_ms,
                                                             std::int64_t arrived_unix_ms,
                                                             TimePoint arrived) {
  // The peer stamped its request about half a round trip before it arrived.
  const std::int32_t half_rtt = min_rtt_ms_ ? *min_rtt_ms_ / 2 : 0;
  const std::int32_t seen =
      hop::circular_delta_ms(r.local_timestamp_ms, hop::ms_since_midnight(arrived_unix_ms)) +
      half_rtt;
  if (std::abs(seen - current_offset_ms) <= config_.tolerance_ms) return std::nullopt;
  // Beyond the tolerance: our own round trips decide (RESYNC). Only a move no
  // queueing delay explains (over half a window), once we know the round
  // trip, is taken at once, so traffic follows a stepped peer without a gap:
  // one delayed request cannot move the schedule.
  if (!resyncing_) resync(arrived);
  if (!min_rtt_ms_ || std::abs(seen - current_offset_ms) <= hop::kHopIntervalMs / 2) {
    return std::nullopt;
  }
  ++stats_.adopted_from_peer;
  return Update{seen, true};
}

void PeerTimeSync::resync(TimePoint now) {
  if (!resyncing_) ++stats_.resyncs;
  resyncing_ = true;
  resync_requests_ = 0;
  samples_.clear();  // measured against the offset before the reason for this
  pending_ = false;  // an answer in flight was measured before the reason for this
  next_request_ = now;
}

}  // namespace buckwild::session

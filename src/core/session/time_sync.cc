#include "core/session/time_sync.h"

#include <algorithm>
#include <cstdlib>

#include "core/hop/time_window.h"
#include "core/session/session_state.h"

namespace buckwild::session {

PeerTimeSync::PeerTimeSync(const TimeSyncConfig& config, TimePoint now)
    : config_(config), next_request_(now + config.first_after) {}

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
    candidate_ms_.reset();
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

std::optional<PeerTimeSync::Update> PeerTimeSync::on_response(
    const wire::TimeSyncResponseBody& r, std::int32_t current_offset_ms, std::int64_t /*now_unix_ms*/,
    TimePoint now) {
  // Only the answer to our outstanding request counts (the challenge, and the
  // echo of our stamp); a replay of an older one is refused by the session's
  // replay window before it gets here.
  if (!pending_ || r.challenge != challenge_ ||
      r.local_timestamp_ms != hop::ms_since_midnight(sent_unix_ms_)) {
    return std::nullopt;
  }
  pending_ = false;
  const Duration rtt_us = now - sent_at_;
  if (rtt_us < 0 || rtt_us > milliseconds(kTimeSyncMaxRttMs)) return std::nullopt;
  ++stats_.responses_received;
  const auto rtt_ms = static_cast<std::int32_t>(rtt_us / 1000);
  const std::int64_t mid = sent_unix_ms_ + rtt_ms / 2;
  const std::int32_t measured = hop::circular_delta_ms(r.peer_timestamp_ms, hop::ms_since_midnight(mid));
  stats_.last_offset_ms = measured;
  stats_.last_rtt_ms = rtt_ms;

  if (std::abs(measured - current_offset_ms) <= config_.tolerance_ms) {
    resyncing_ = false;
    candidate_ms_.reset();
    next_request_ = now + config_.interval;
    return Update{measured, false};
  }
  // Beyond the tolerance: a RESYNC. Adopt only what two measurements in a row confirm.
  if (candidate_ms_ && std::abs(measured - *candidate_ms_) <= config_.tolerance_ms) {
    resyncing_ = false;
    candidate_ms_.reset();
    next_request_ = now + config_.interval;
    return Update{measured, true};
  }
  if (!resyncing_) {
    ++stats_.resyncs;
    resync_requests_ = 0;
  }
  resyncing_ = true;
  candidate_ms_ = measured;
  // The confirming request: the first a second after this answer, later
  // ones on the RESYNC's backoff from their predecessor.
  next_request_ = resync_requests_ == 0 ? now + kTimeSyncRetry
                                        : std::max(now, sent_at_ + resync_wait());
  return std::nullopt;
}

std::optional<PeerTimeSync::Update> PeerTimeSync::on_request(const wire::TimeSyncRequestBody& r,
                                                             std::int32_t current_offset_ms,
                                                             std::int64_t now_unix_ms, TimePoint now) {
  // The peer stamped its request half a round trip ago.
  const std::int32_t half_rtt = stats_.last_rtt_ms ? *stats_.last_rtt_ms / 2 : 0;
  const std::int32_t seen =
      hop::circular_delta_ms(r.local_timestamp_ms, hop::ms_since_midnight(now_unix_ms)) + half_rtt;
  if (std::abs(seen - current_offset_ms) <= config_.tolerance_ms) return std::nullopt;
  // Beyond the tolerance: our own round trips decide (RESYNC). Only a move no
  // queueing delay explains (over half a window), once we know the round
  // trip, is taken at once, so traffic follows a stepped peer without a gap:
  // one delayed request cannot move the schedule.
  if (!resyncing_) resync(now);
  if (!stats_.last_rtt_ms || std::abs(seen - current_offset_ms) <= hop::kHopIntervalMs / 2) {
    return std::nullopt;
  }
  ++stats_.adopted_from_peer;
  return Update{seen, true};
}

void PeerTimeSync::resync(TimePoint now) {
  if (!resyncing_) ++stats_.resyncs;
  resyncing_ = true;
  resync_requests_ = 0;
  candidate_ms_.reset();
  pending_ = false;  // an answer in flight was measured before the reason for this
  next_request_ = now;
}

}  // namespace buckwild::session

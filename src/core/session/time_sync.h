// Peer time sync (docs/protocol.md "Peer time sync"; reference §5): between
// established peers, TIME_SYNC_REQUEST / TIME_SYNC_RESPONSE measure the peer's
// clock offset continuously, so the port schedule follows two clocks that
// drift apart. No I/O: the session sends what this says is due and hands it
// what arrives.
//
// Every `interval` we ask; the answer's round trip gives the offset
// (peer's stamp − (our send time + rtt/2)). A measurement within `tolerance`
// of the offset in use replaces it. One beyond it sets off a RESYNC: the
// offset is re-measured at once, each further request after the RESYNC
// backoff (1 s doubling, ±25 % jitter: session_state.h backoff()), and
// adopted when two measurements in a row agree within the tolerance, so one delayed answer
// cannot move the schedule. The peer's own request also tells us its clock
// (its stamp + half our last round trip); when that is beyond the tolerance
// our estimate is stale (the peer stepped its clock), so it is adopted at once
// and a RESYNC confirms it: until then our packets would miss the peer's ports.
#pragma once

#include <cstdint>
#include <optional>

#include "core/common/time.h"
#include "core/wire/messages.h"

namespace buckwild::session {

inline constexpr Duration kTimeSyncRetry = seconds(1);
inline constexpr std::int32_t kTimeSyncMaxRttMs = 2000;

struct TimeSyncConfig {
  // The first measurement, after discovery's estimate; then every `interval`.
  Duration first_after = seconds(1);
  Duration interval = seconds(10);
  std::int32_t tolerance_ms = 50;  // [protocol] time_sync_tolerance_ms
};

struct TimeSyncStats {
  std::uint64_t requests_sent = 0;
  std::uint64_t responses_received = 0;  // that matched a request in time
  std::uint64_t requests_answered = 0;
  std::uint64_t resyncs = 0;             // RESYNCs set off
  std::uint64_t adopted_from_peer = 0;   // offsets taken from the peer's request
  std::uint64_t resyncs_given_up = 0;    // kMaxResyncRequests went unconfirmed
  std::optional<std::int32_t> last_offset_ms;  // the last measurement
  std::optional<std::int32_t> last_rtt_ms;
};

// A RESYNC asks at most this many times, request k + 1 backoff(kResync, k)
// after request k (1, 2, 4, 8 s, each ±25 %); the last one's answer is
// awaited kTimeSyncMaxRttMs. Unconfirmed by then (the peer silent, or the
// path's jitter beyond the tolerance) it gives up and the regular interval
// resumes.
inline constexpr int kMaxResyncRequests = 5;

class PeerTimeSync {
 public:
  PeerTimeSync(const TimeSyncConfig& config, TimePoint now);

  // When the next request is due.
  TimePoint next_expiry() const { return next_request_; }

  // A request is being sent with `challenge` at our time `now_unix_ms`:
  // returns its body and schedules the next one; in a RESYNC `jitter`
  // (uniform over 32 bits, from the caller) jitters the wait (backoff()).
  wire::TimeSyncRequestBody make_request(std::uint32_t challenge, std::int64_t now_unix_ms,
                                         TimePoint now, std::uint32_t jitter);

  // The answer to a request of the peer's, made at our time `now_unix_ms`.
  wire::TimeSyncResponseBody make_response(const wire::TimeSyncRequestBody& request,
                                           std::int64_t now_unix_ms);

  // The offset (peer − us, ms) to use from now on, if it changed.
  struct Update {
    std::int32_t offset_ms = 0;
    bool resync = false;  // it came from a RESYNC (was beyond the tolerance)
  };

  // A response arrived. `current_offset_ms` is the offset in use.
  std::optional<Update> on_response(const wire::TimeSyncResponseBody& response,
                                    std::int32_t current_offset_ms, std::int64_t now_unix_ms,
                                    TimePoint now);
  // The peer's request arrived (authenticated).
  std::optional<Update> on_request(const wire::TimeSyncRequestBody& request,
                                   std::int32_t current_offset_ms, std::int64_t now_unix_ms,
                                   TimePoint now);

  // RESYNC: measure the offset now and confirm it before trusting it again
  // (our clock stepped, or a measurement moved beyond the tolerance).
  void resync(TimePoint now);
  bool resyncing() const { return resyncing_; }
  // Requests sent in the RESYNC under way (its attempts).
  int resync_requests() const { return resync_requests_; }
  // The request due now is being sent; should it not be, ask again in a second.
  void postpone(TimePoint now) { next_request_ = now + kTimeSyncRetry; }

  const TimeSyncStats& stats() const { return stats_; }

 private:
  // The wait after the RESYNC's latest request.
  Duration resync_wait() const;

  TimeSyncConfig config_;
  TimePoint next_request_;
  bool pending_ = false;
  std::uint32_t challenge_ = 0;
  std::int64_t sent_unix_ms_ = 0;
  TimePoint sent_at_ = 0;
  bool resyncing_ = false;
  int resync_requests_ = 0;                   // requests sent in this RESYNC
  std::uint32_t jitter_ = 0x8000'0000u;       // the last request's jitter draw
  std::optional<std::int32_t> candidate_ms_;  // a RESYNC's first measurement
  TimeSyncStats stats_;
};

}  // namespace buckwild::session

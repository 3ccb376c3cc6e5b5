// Peer time sync (docs/protocol.md "Peer time sync"; reference §5): between
// established peers, TIME_SYNC_REQUEST / TIME_SYNC_RESPONSE measure the peer's
// clock offset continuously, so the port schedule follows two clocks that
// drift apart. No I/O: the session sends what this says is due and hands it
// what arrives.
//
// Every `interval` we ask; the answer's round trip gives a sample of the
// offset (peer's stamp − (our send time + rtt/2)), wrong by at most half of
// what its round trip exceeds the path's. Times are arrival times (the
// kernel's receive stamps), so a daemon that reads late does not lengthen
// the round trip. Like NTP's clock filter, the estimate is the offset of the
// sample with the smallest round trip among the recent ones (the first is
// discovery's, docs/protocol.md §6.3 step 8): a delayed sample cannot move
// it. An estimate within `tolerance` of the offset in use replaces it. A
// sample further from the estimate than its extra delay explains means a
// clock moved: a RESYNC starts the filter afresh from that sample, re-measures
// (1 s, then on the RESYNC backoff: 2, 4, 8 s, ±25 %: session_state.h
// backoff()), and adopts the estimate once a second sample agrees with it
// (within the tolerance plus half their difference in round trip). The peer's
// own request also tells us its clock (its stamp + half the smallest round
// trip we measured); when that is beyond the tolerance our estimate is stale
// (the peer stepped its clock), so it is adopted at once and a RESYNC
// confirms it: until then our packets would miss the peer's ports.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/common/time.h"
#include "core/wire/messages.h"

namespace buckwild::session {

inline constexpr Duration kTimeSyncRetry = seconds(1);
inline constexpr std::int32_t kTimeSyncMaxRttMs = 2000;
// The min-RTT filter: at most this many recent samples, none older than
// kFilterMaxAge: at the fastest drift peer time sync follows (200 ms a
// minute, tests/e2e/ntp.sh) a sample that old is off by at most the default
// tolerance. At the regular 10 s interval that is the last two answers; in a
// RESYNC, a second apart, several.
inline constexpr std::size_t kFilterSamples = 8;
inline constexpr Duration kFilterMaxAge = seconds(15);

// One measurement of the peer's clock: offset (peer − us, ms), the round trip
// it was measured over, and when (our monotonic clock).
struct OffsetSample {
  std::int32_t offset_ms = 0;
  std::int32_t rtt_ms = 0;
  TimePoint at = 0;
  bool from_discovery = false;  // discovery's, not one of our requests'
};

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
  std::uint64_t filtered = 0;            // samples the filter set aside for a better one
  std::optional<std::int32_t> last_offset_ms;  // the last measurement
  std::optional<std::int32_t> last_rtt_ms;
};

// A RESYNC asks at most this many times, request k + 1 backoff(kResync, k)
// after request k (1, 2, 4, 8 s, each ±25 %); the last one's answer is
// awaited kTimeSyncMaxRttMs. Unconfirmed by then (the peer silent, or the
// path's jitter beyond the tolerance) it gives up and the regular interval
// resumes.
inline constexpr int kMaxResyncRequests = 5;

// Whether two samples agree: their offsets differ by at most the tolerance
// plus half the difference of their round trips (what the longer one's extra
// delay can explain).
bool agree(const OffsetSample& a, const OffsetSample& b, std::int32_t tolerance_ms);

class PeerTimeSync {
 public:
  // `discovery`: the session's first sample (its offset and the round trip
  // discovery measured it over), when that round trip is known.
  PeerTimeSync(const TimeSyncConfig& config, TimePoint now,
               std::optional<OffsetSample> discovery = std::nullopt);

  // When the next request is due.
  TimePoint next_expiry() const { return next_request_; }

  // A request is being sent with `challenge` at our time `now_unix_ms`:
  // returns its body and schedules the next one; in a RESYNC `jitter`
  // (uniform over 32 bits, from the caller) jitters the wait (backoff()).
  wire::TimeSyncRequestBody make_request(std::uint32_t challenge, std::int64_t now_unix_ms,
                                         TimePoint now, std::uint32_t jitter);

  // The answer to a request of the peer's, sent at our time `now_unix_ms`.
  wire::TimeSyncResponseBody make_response(const wire::TimeSyncRequestBody& request,
                                           std::int64_t now_unix_ms);

  // The offset (peer − us, ms) to use from now on, if it changed.
  struct Update {
    std::int32_t offset_ms = 0;
    bool resync = false;  // it came from a RESYNC (was beyond the tolerance)
  };

  // A response arrived at `arrived` (our monotonic clock; the kernel's
  // receive stamp, not when it was read). `current_offset_ms` is the offset
  // in use.
  std::optional<Update> on_response(const wire::TimeSyncResponseBody& response,
                                    std::int32_t current_offset_ms, std::int64_t arrived_unix_ms,
                                    TimePoint arrived);
  // The peer's request (authenticated) arrived at our time `arrived_unix_ms`
  // (monotonic `arrived`).
  std::optional<Update> on_request(const wire::TimeSyncRequestBody& request,
                                   std::int32_t current_offset_ms, std::int64_t arrived_unix_ms,
                                   TimePoint arrived);

  // RESYNC: measure the offset now and confirm it before trusting it again
  // (our clock stepped, or a measurement moved beyond the tolerance).
  void resync(TimePoint now);
  bool resyncing() const { return resyncing_; }
  // Requests sent in the RESYNC under way (its attempts).
  int resync_requests() const { return resync_requests_; }
  // The request due now is being sent; should it not be, ask again in a second.
  void postpone(TimePoint now) { next_request_ = now + kTimeSyncRetry; }

  const TimeSyncStats& stats() const { return stats_; }
  // The filter's recent samples, oldest first.
  const std::vector<OffsetSample>& samples() const { return samples_; }

 private:
  // The wait after the RESYNC's latest request.
  Duration resync_wait() const;
  // Adds `s`, dropping what is too old or too many.
  void add_sample(const OffsetSample& s);
  // The index in samples_ of the recent sample with the smallest round trip
  // (the latest of equals); samples_ is not empty.
  std::size_t best() const;
  std::optional<Update> adopt(std::int32_t offset_ms, bool resync, TimePoint now);
  void start_resync(TimePoint now);

  TimeSyncConfig config_;
  TimePoint next_request_;
  bool pending_ = false;
  std::uint32_t challenge_ = 0;
  std::int64_t sent_unix_ms_ = 0;
  TimePoint sent_at_ = 0;
  bool resyncing_ = false;
  int resync_requests_ = 0;                   // requests sent in this RESYNC
  std::uint32_t jitter_ = 0x8000'0000u;       // the last request's jitter draw
  std::vector<OffsetSample> samples_;         // the min-RTT filter, oldest first
  // The smallest round trip our own requests measured (samples or not): the
  // peer's request is read with half of it.
  std::optional<std::int32_t> min_rtt_ms_;
  TimeSyncStats stats_;
};

}  // namespace buckwild::session

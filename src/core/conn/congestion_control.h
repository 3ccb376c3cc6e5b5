// The congestion controller interface: the only thing the connection knows
// about congestion control.
//
// The connection reports what happened — a segment sent, an ACK that delivered
// data (with an RTT sample and a delivery-rate sample), segments declared lost,
// a retransmission timeout — and asks two questions: how many bytes may be in
// flight (congestion_window) and how fast to release them (pacing_rate). Every
// hook gets the connection's current statistics and `now`.
//
// The hooks carry what both families of algorithm need: window-based, loss-
// driven ones (NewReno, CUBIC) use acked bytes, loss events and the recovery
// epoch; rate-based, model-driven ones (BBR) use the delivery-rate samples,
// min RTT, app-limited marks and bytes in flight, and return their own
// cwnd and pacing rate. Adding one is a new file and one line in
// make_congestion_controller(); the connection code does not change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "core/common/time.h"

namespace buckwild::conn {

// What the connection knows when it calls a hook.
struct CongestionStats {
  std::size_t mss = 0;                 // segment payload size, bytes
  std::uint64_t bytes_in_flight = 0;   // payload bytes sent and neither delivered nor lost
  Duration smoothed_rtt = 0;           // 0 before the first RTT sample
  Duration min_rtt = 0;                // 0 before the first RTT sample
  Duration latest_rtt = 0;             // 0 before the first RTT sample
  std::uint64_t delivered = 0;         // payload bytes delivered so far (acked or SACKed)
  bool app_limited = false;            // delivery-rate samples are application-limited now
  bool cwnd_limited = false;           // since the last ACK, cwnd or pacing held data back
};

// One delivery-rate sample (draft-cheng-iccrg-delivery-rate-estimation): the
// bytes delivered between the send of a segment and its acknowledgment, over
// the longer of the send and ack intervals.
struct RateSample {
  std::uint64_t delivered = 0;  // bytes delivered over the interval
  Duration interval = 0;        // 0: no valid sample
  bool is_app_limited = false;  // the interval included an application-limited period
  // Bytes per second; 0 when there is no valid sample.
  std::uint64_t rate() const {
    return interval > 0 ? delivered * 1'000'000 / static_cast<std::uint64_t>(interval) : 0;
  }
};

// An ACK that delivered data.
struct AckEvent {
  std::uint64_t acked_bytes = 0;          // newly delivered (cumulatively or selectively)
  std::uint64_t prior_in_flight = 0;      // bytes in flight before this ACK
  TimePoint largest_acked_sent_time = 0;  // send time of the latest-sent newly delivered segment
  Duration rtt_sample = 0;                // 0 when the ACK gave no unambiguous sample
  RateSample rate;
};

// Segments declared lost while processing one ACK or timer.
struct LossEvent {
  std::uint64_t lost_bytes = 0;
  TimePoint largest_lost_sent_time = 0;  // latest send time among them
};

class CongestionController {
 public:
  virtual ~CongestionController() = default;

  virtual std::string_view name() const = 0;

  // A segment of `bytes` payload bytes left (a retransmission or new data).
  virtual void on_packet_sent(const CongestionStats& stats, TimePoint now, std::size_t bytes,
                              bool retransmission) = 0;
  // An ACK delivered data.
  virtual void on_ack(const CongestionStats& stats, TimePoint now, const AckEvent& ack) = 0;
  // Segments were declared lost (by SACK/RACK evidence, not by a timeout).
  virtual void on_loss(const CongestionStats& stats, TimePoint now, const LossEvent& loss) = 0;
  // The retransmission timer expired: everything in flight was declared lost.
  virtual void on_retransmission_timeout(const CongestionStats& stats, TimePoint now) = 0;
  // Every segment retransmitted for the latest loss event turned out to have
  // arrived the first time (reordering, not loss): undo that event's
  // reduction if nothing happened since (RFC 3522/4015 in spirit).
  virtual void on_spurious_loss(const CongestionStats& stats, TimePoint now) = 0;

  // Bytes that may be in flight.
  virtual std::uint64_t congestion_window() const = 0;
  // Bytes per second at which to release segments; 0 means do not pace.
  virtual std::uint64_t pacing_rate(const CongestionStats& stats) const = 0;
};

enum class CongestionAlgorithm : std::uint8_t {
  kNewReno,  // loss-based (new_reno.h): fair to TCP, halves at every loss episode
  kBbr,      // model-based (bbr.h): paces at the measured bandwidth, ignores random loss
};

// A controller for segments of `mss` payload bytes.
std::unique_ptr<CongestionController> make_congestion_controller(CongestionAlgorithm algorithm,
                                                                 std::size_t mss);

}  // namespace buckwild::conn

// NewReno congestion control (RFC 5681, RFC 6582), byte-counting.
//
//   slow start            cwnd < ssthresh: cwnd += bytes acked; the first slow
//                         start ends early on rising delay (HyStart++, RFC 9406)
//   congestion avoidance  cwnd += MSS once per cwnd of bytes acked
//   loss (SACK/RACK)      once per window of data: ssthresh = max(cwnd / 2, 2 MSS),
//                         cwnd = ssthresh; no growth until an ACK covers data sent
//                         after the reduction (RFC 6582's "recover" point, kept as
//                         the send time that started recovery). The bytes acked
//                         meanwhile are credited, up to one cwnd, to the first
//                         increase after recovery, so the window keeps growing one
//                         MSS per round trip across the episode as in the model
//                         behind the Mathis formula (a refinement: RFC 6582 drops
//                         that round trip's growth).
//   spurious loss         a reduction whose retransmissions all proved needless
//                         (reordering) is undone
//   retransmission timeout ssthresh = max(FlightSize / 2, 2 MSS) (held on a repeated
//                         timeout, RFC 5681 §3.1), cwnd = 1 MSS (the loss window)
//
// The initial window is 10 segments (RFC 6928) and there is no upper cap: the
// peer's receive window bounds the flight instead. cwnd grows only while it is
// what limits the sender (RFC 7661's rationale): not while the application or
// the peer's receive window holds data back. The
// pacing rate spreads cwnd over the smoothed RTT: 2 x cwnd / SRTT in slow start,
// 1.25 x cwnd / SRTT after (the headroom keeps pacing from becoming the limit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

#include "core/conn/congestion_control.h"
#include "core/conn/hystart.h"

namespace buckwild::conn {

class NewReno final : public CongestionController {
 public:
  static constexpr std::uint64_t kInitialWindowSegments = 10;
  static constexpr std::uint64_t kMinimumWindowSegments = 2;

  explicit NewReno(std::size_t mss);

  std::string_view name() const override { return "newreno"; }
  void on_packet_sent(const CongestionStats& stats, TimePoint now, std::size_t bytes,
                      bool retransmission) override;
  void on_ack(const CongestionStats& stats, TimePoint now, const AckEvent& ack) override;
  void on_loss(const CongestionStats& stats, TimePoint now, const LossEvent& loss) override;
  // `stats.bytes_in_flight` is the flight before the timeout declared it lost.
  void on_retransmission_timeout(const CongestionStats& stats, TimePoint now) override;
  // Restores cwnd and ssthresh from before the last loss reduction (not after
  // a timeout), once.
  void on_spurious_loss(const CongestionStats& stats, TimePoint now) override;
  std::uint64_t congestion_window() const override { return cwnd_; }
  std::uint64_t pacing_rate(const CongestionStats& stats) const override;

  std::uint64_t slow_start_threshold() const { return ssthresh_; }
  bool in_slow_start() const { return cwnd_ < ssthresh_; }
  // True while ACKs of data sent at or before `sent_time` belong to the current
  // recovery epoch.
  bool in_recovery(TimePoint sent_time) const { return sent_time <= recovery_start_; }

 private:
  std::uint64_t mss_;
  std::uint64_t cwnd_;
  std::uint64_t ssthresh_ = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t bytes_acked_ = 0;  // congestion-avoidance byte counter
  TimePoint recovery_start_ = std::numeric_limits<TimePoint>::min();
  bool after_timeout_ = false;     // no data delivered since the last timeout
  HyStart hystart_;                // the initial slow start's exit (RFC 9406)
  // State before the last loss reduction, for on_spurious_loss().
  bool undo_valid_ = false;
  std::uint64_t undo_cwnd_ = 0;
  std::uint64_t undo_ssthresh_ = 0;
  TimePoint undo_recovery_start_ = 0;
};

}  // namespace buckwild::conn

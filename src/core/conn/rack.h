// Time-based loss detection: RACK (RFC 8985 §6). The tail loss probe of §7 lives
// in the sender, which owns the timers.
//
// A segment is lost when a segment sent after it has been delivered and more
// than RACK.rtt + reo_wnd has passed since it was sent, where RACK.rtt is the
// RTT of the most recently sent delivered segment and reo_wnd tolerates
// reordering: min_rtt / 4 (at most SRTT), or 0 while no reordering has been
// seen and the sender is in recovery or three segments are SACKed (RFC 8985
// §6.2 step 4, without DSACK adaptation). Because it reasons about send times rather than
// sequence numbers, it also detects lost retransmissions, and it needs no
// duplicate-ACK threshold, so it works with windows of one or two segments.
#pragma once

#include <cstddef>

#include "core/common/time.h"
#include "core/conn/retransmission_queue.h"

namespace buckwild::conn {

class RackDetector {
 public:
  // Records that segment `s` was delivered at `now`. A retransmitted segment
  // acked sooner than `min_rtt` after its last send is ignored: the ACK is for
  // an earlier transmission (RFC 8985 §6.2 step 2), so the retransmission was
  // spurious, which this returns (true).
  bool on_delivered(Seq s, const Segment& segment, TimePoint now, Duration min_rtt);

  // Walks the in-flight list of `queue` from its oldest end and calls
  // mark_lost(seq) for every segment that is lost by the rule above (the
  // callback must take it off the list). Returns when the next still-pending
  // segment would be declared lost if nothing else is delivered, or kNever.
  template <typename MarkLost>
  TimePoint detect(RetransmissionQueue& queue, TimePoint now, Duration reo_wnd,
                   MarkLost&& mark_lost) const;

  bool valid() const { return valid_; }
  Duration rtt() const { return rtt_; }
  TimePoint xmit_time() const { return xmit_time_; }

  // The reordering window, as described above.
  Duration reordering_window(Duration min_rtt, Duration srtt, bool in_recovery,
                             std::size_t sacked_segments) const;
  // Reordering was observed: a segment sent once was delivered below one
  // delivered before it, or a retransmission was acked too soon to be the
  // one that arrived.
  bool reordering_seen() const { return reordering_seen_; }

 private:
  bool sent_before_rack(Seq s, const Segment& segment) const {
    return segment.last_sent < xmit_time_ ||
           (segment.last_sent == xmit_time_ && seq_lt(s, end_seq_));
  }

  bool valid_ = false;
  TimePoint xmit_time_ = 0;  // send time of the most recently sent delivered segment
  Seq end_seq_ = 0;          // its sequence number
  Duration rtt_ = 0;         // its RTT
  bool have_fack_ = false;
  Seq fack_ = 0;             // highest sequence number delivered
  bool reordering_seen_ = false;
};

template <typename MarkLost>
TimePoint RackDetector::detect(RetransmissionQueue& queue, TimePoint now, Duration reo_wnd,
                               MarkLost&& mark_lost) const {
  if (!valid_) return kNever;
  while (!queue.list_empty()) {
    const Seq s = queue.list_front();
    const Segment& segment = queue.at(s);
    // The list is in send order: everything from here on was sent later.
    if (!sent_before_rack(s, segment)) break;
    const TimePoint deadline = segment.last_sent + rtt_ + reo_wnd;
    if (now < deadline) return deadline;
    mark_lost(s);
  }
  return kNever;
}

}  // namespace buckwild::conn

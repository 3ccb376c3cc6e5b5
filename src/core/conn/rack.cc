#include "core/conn/rack.h"

#include <algorithm>

namespace buckwild::conn {

bool RackDetector::on_delivered(Seq s, const Segment& segment, TimePoint now, Duration min_rtt) {
  if (have_fack_ && seq_lt(s, fack_) && segment.transmissions == 1) reordering_seen_ = true;
  if (!have_fack_ || seq_gt(s, fack_)) {
    fack_ = s;
    have_fack_ = true;
  }
  const Duration rtt = now - segment.last_sent;
  if (segment.transmissions > 1 && rtt < min_rtt) {
    // Acked sooner than any round trip allows: the original arrived after all,
    // late. The retransmission was spurious, so the path reorders.
    reordering_seen_ = true;
    return true;
  }
  if (!valid_ || segment.last_sent > xmit_time_ ||
      (segment.last_sent == xmit_time_ && seq_gt(s, end_seq_))) {
    valid_ = true;
    xmit_time_ = segment.last_sent;
    end_seq_ = s;
    rtt_ = rtt;
  }
  return false;
}

Duration RackDetector::reordering_window(Duration min_rtt, Duration srtt, bool in_recovery,
                                         std::size_t sacked_segments) const {
  constexpr std::size_t kDupThresh = 3;
  if (!reordering_seen_ && (in_recovery || sacked_segments >= kDupThresh)) return 0;
  return std::min(min_rtt / 4, srtt);
}

}  // namespace buckwild::conn

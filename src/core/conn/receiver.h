// The receiving half of a connection: in-order delivery, the reorder buffer,
// the advertised window, and when to acknowledge.
//
// Memory: the in-order stream holds at most `buffer` bytes; the reorder buffer
// has buffer / MSS slots of MSS bytes. An out-of-order segment is kept only if
// the in-order bytes plus one MSS for every held segment (itself included) fit
// in `buffer`, so a sender that respects the window never has data dropped,
// and one that does not cannot make the receiver hold more than 2 x buffer.
//
// Window: the tuned receive space minus the unread in-order bytes (never more
// than the stream can still take under the memory budget), advertised in
// units of 2^wscale. Receiver-side silly-window avoidance (RFC 1122 §4.2.3.3): less than
// min(MSS, buffer / 2) is advertised as 0. The right edge never moves left
// (RFC 7323 §2.4) except by the rounding of the scale.
//
// Autotuning (Linux's dynamic right-sizing, tcp_rcv_space_adjust): the receive
// space starts at `initial_window` and, once per round trip (the connection's
// smoothed RTT, passed to tune_window()), is raised to what the application
// read in that round trip, c, when that is more, up to `buffer`:
//   2c                          when c is no more than the round trip before's
//   2c (1 + 2 (c - p) / p)      when it grew from p (bonus at most 4 x 2c)
// The bonus is Linux's too. Without it, loss stalls a growing flow: a hole
// holds back everything behind it until its retransmission arrives, a round
// trip or more later, so what the application reads trails what the sender
// sent by that much, and twice it is less than the sequence span the sender
// needs (BBR's startup then sees its bandwidth stop growing and ends early).
// An application that reads slowly never earns a larger window, so its
// connection never holds more than about two round trips of what it
// consumes. The space does not shrink: an idle connection gives back storage
// (release_idle_buffers), not its window.
//
// Acknowledgment (RFC 1122 §4.2.3.2, RFC 5681 §4.2): at least every second
// in-order segment and within the ACK delay (50 ms); at once for a segment out
// of order, a duplicate, one that fills a gap, a FIN, or one that had to be
// dropped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "core/common/bytes.h"
#include "core/common/time.h"
#include "core/conn/ack_tracker.h"
#include "core/conn/byte_ring.h"
#include "core/conn/reorder_buffer.h"
#include "core/conn/seq.h"

namespace buckwild::conn {

struct ReceiverConfig {
  std::size_t mss = 1360;                // the largest segment kept out of order
  std::size_t buffer = 32 * 1024 * 1024;       // the largest receive space, bytes
  std::size_t initial_window = 256 * 1024;     // receive space before tuning (capped at buffer)
  Duration ack_delay = milliseconds(50);
  // SACK ranges tracked beyond the ack point: at 1 % loss, a window of 10 000
  // segments has a hundred holes a round trip, each open for one or two.
  std::size_t max_ranges = 1024;
  MemoryBudget* memory = nullptr;        // charged for stream and reorder storage, if set
};

struct ReceiverStats {
  std::uint64_t segments_in_order = 0;
  std::uint64_t segments_out_of_order = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t dropped = 0;  // no room, beyond the reorder range, or after the FIN
  std::uint64_t window_growths = 0;  // autotuning raised the receive space
};

class Receiver {
 public:
  explicit Receiver(const ReceiverConfig& config);

  // Begins expecting segment `isn` first; windows are advertised in units of
  // 2^wscale bytes.
  void start(Seq isn, std::uint8_t wscale);
  bool started() const { return started_; }
  // The window scale this side announces for itself: the smallest scale at
  // which `buffer` fits the 16-bit header field.
  static std::uint8_t scale_for(std::size_t buffer);

  enum class Arrival { kInOrder, kOutOfOrder, kDuplicate, kDropped };
  // A DATA segment arrived (payload non-empty).
  Arrival on_data(Seq seq, Bytes payload, TimePoint now);
  // A FIN arrived with sequence `seq`.
  Arrival on_fin(Seq seq, TimePoint now);

  // ---- application side ----
  std::size_t readable() const { return stream_.size(); }
  // Copies up to out.size() in-order bytes out; returns how many.
  std::size_t read(MutableBytes out);
  // The peer's FIN was received and every byte before it is in the stream.
  bool fin_received() const { return fin_consumed_; }

  // ---- autotuning ----
  // Measures what the application read since the last measurement if at least
  // `rtt` (> 0) passed, and raises the receive space to twice that (at most
  // `buffer`). Call it with the connection's smoothed RTT whenever convenient
  // (the connection does in poll_transmit); rtt <= 0 does nothing.
  void tune_window(TimePoint now, Duration rtt);
  // The round trip as the receiving side alone measures it (Linux's
  // receiver RTT estimate): the shortest time a whole advertised window took
  // to arrive; 0 before the first measurement. For tuning the window of a
  // connection whose sender side has no RTT sample: one that only receives,
  // after a handshake whose retransmission left no unambiguous sample.
  Duration rtt_estimate() const { return rtt_estimate_; }
  // The receive space: unread bytes plus window, before the budget's say.
  std::size_t receive_space() const { return space_; }
  // Bytes the application has read.
  std::uint64_t consumed() const { return consumed_total_; }

  // ---- acknowledgment ----
  Seq ack() const { return tracker_.ack(); }
  std::uint32_t sack_bitmap() const { return tracker_.bitmap(); }
  // SACK blocks for an ACK body, most recent first.
  std::size_t sack_blocks(std::span<wire::SackBlock> out) const { return tracker_.blocks(out); }
  // The window to put in a header now (units of 2^wscale), which is recorded
  // as advertised.
  std::uint16_t take_window_field();
  // The same window in bytes (for WINDOW_UPDATE), also recorded as advertised.
  std::uint32_t take_window_bytes();
  // A packet carrying the acknowledgment left; `with_blocks` if it carried SACK
  // blocks (an ACK body) rather than only the header bitmap.
  void on_ack_sent(bool with_blocks);
  // An acknowledgment should go out at `now`.
  bool ack_due(TimePoint now) const { return ack_now_ || now >= ack_deadline_; }
  // When the delayed acknowledgment falls due (kNever if none is pending).
  TimePoint ack_deadline() const { return ack_now_ ? kNever : ack_deadline_; }
  // The window grew enough since it was last advertised to tell the peer.
  bool window_update_due() const;
  // Forces an immediate acknowledgment (a probe or a duplicate handshake packet).
  void request_ack() { ack_now_ = true; }

  const ReceiverStats& stats() const { return stats_; }
  // Stream or reorder storage is allocated while neither holds a byte: what
  // release_idle_buffers() would give back.
  bool idle_storage() const {
    return stream_.empty() && reorder_.count() == 0 &&
           (stream_.allocated() > 0 || reorder_.allocated() > 0);
  }
  // Frees the stream and reorder storage while they hold nothing.
  void release_idle_buffers() {
    stream_.release_if_empty();
    reorder_.release_if_empty();
  }
  std::size_t allocated() const {
    return stream_.allocated() + reorder_.allocated() + tracker_.allocated();
  }
  bool check_invariants() const;

 private:
  std::uint64_t window_bytes() const;
  void drain();
  void note_in_order(TimePoint now);
  void measure_rtt(TimePoint now);
  void record_advertised(std::uint64_t window);

  ReceiverConfig config_;
  ByteRing stream_;
  ReorderBuffer reorder_;
  AckTracker tracker_;
  bool started_ = false;
  std::uint8_t wscale_ = 0;

  std::optional<Seq> fin_seq_;
  bool fin_consumed_ = false;
  std::uint64_t received_total_ = 0;  // in-order bytes ever received
  std::uint64_t consumed_total_ = 0;  // bytes ever read by the application

  // Autotuning.
  std::size_t space_;                     // the tuned receive space
  TimePoint measure_start_ = kNever;      // start of the current measurement
  std::uint64_t measure_consumed_ = 0;    // consumed_total_ at its start
  std::uint64_t measure_copied_ = 0;      // bytes read in the last measured round trip
  // The receiver's own RTT measurement (measure_rtt).
  std::uint64_t rtt_mark_ = 0;            // received_total_ that ends the current one
  TimePoint rtt_mark_at_ = kNever;        // when it began
  Duration rtt_estimate_ = 0;             // the smallest so far

  // Window bookkeeping, in bytes of the in-order stream.
  std::uint64_t advertised_edge_ = 0;  // received_total_ + window at the last advertisement
  std::uint64_t advertised_window_ = 0;

  bool ack_now_ = false;
  unsigned unacked_segments_ = 0;
  TimePoint ack_deadline_ = kNever;

  ReceiverStats stats_;
};

}  // namespace buckwild::conn

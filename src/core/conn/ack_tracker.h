// What the receiver has: the cumulative acknowledgment point and the segments
// held beyond it, in the forms the wire carries them.
//
//   ack           the next segment expected (everything before it was received)
//   header bitmap bit i (LSB = 0) set: segment ack + 1 + i is held
//   SACK blocks   [start, end) ranges held beyond ack, at most 32 per ACK; the
//                 blocks holding the most recently received segments come
//                 first, newest first (RFC 2018 §4), then the others in
//                 increasing order. Under loss at a large window hundreds of
//                 ranges are held: a range stops being the newest the moment a
//                 segment beyond the next hole arrives, often within the batch
//                 one ACK answers, and if only the newest range and the lowest
//                 were reported, its last segments would never be, and the
//                 sender would resend them as lost
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/conn/range_set.h"
#include "core/conn/seq.h"
#include "core/wire/messages.h"

namespace buckwild::conn {

class AckTracker {
 public:
  // Tracks at most `max_ranges` disjoint ranges beyond the ack point.
  explicit AckTracker(std::size_t max_ranges) : ranges_(max_ranges) {}

  // Starts with `next_expected` as the ack point and nothing held beyond it.
  void start(Seq next_expected);

  Seq ack() const { return ack_; }
  bool empty() const { return ranges_.empty(); }
  // True when `s` lies beyond the ack point and is held.
  bool holds(Seq s) const { return ranges_.contains(s); }
  // The end of the highest range held (ack() when none).
  Seq highest_end() const { return ranges_.empty() ? ack_ : ranges_[ranges_.size() - 1].end; }

  // Records segment `s` (seq_gt(s, ack())) as held. Returns false, recording
  // nothing, when that would need more ranges than the bound.
  bool add(Seq s);
  // The ack point moved forward by one segment (the expected one arrived).
  void advance();

  std::uint32_t bitmap() const;
  // True when the bitmap alone describes every held segment.
  bool bitmap_covers_all() const;
  // Writes up to out.size() blocks (the recently changed first); returns how many.
  std::size_t blocks(std::span<wire::SackBlock> out) const;

  std::size_t allocated() const { return ranges_.allocated(); }

 private:
  // The segments added last, newest at recent_[(recent_head_ + kRecent - 1) % kRecent].
  static constexpr std::size_t kRecent = 64;

  RangeSet ranges_;
  Seq ack_ = 0;
  std::array<Seq, kRecent> recent_{};
  std::size_t recent_head_ = 0;   // where the next one goes
  std::size_t recent_count_ = 0;  // how many are valid (at most kRecent)
};

}  // namespace buckwild::conn

// A small sorted set of disjoint sequence ranges [start, end).
//
// The receiver records which segments beyond its cumulative acknowledgment it
// holds (its SACK ranges); the sender records which of its segments the peer
// has selectively acknowledged (its scoreboard). Tens of ranges usually, up to
// a thousand for a receiver with a large window under loss: a sorted vector
// with a hard bound on the range count, searched by bisection, beats any tree,
// and memory is bounded by construction.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <vector>

#include "core/conn/seq.h"

namespace buckwild::conn {

struct SeqRange {
  Seq start = 0;
  Seq end = 0;  // exclusive; end - start is 1 .. 2^31 - 1
  friend bool operator==(const SeqRange&, const SeqRange&) = default;
};

class RangeSet {
 public:
  // A set that never holds more than `max_ranges` disjoint ranges.
  explicit RangeSet(std::size_t max_ranges) : max_ranges_(max_ranges) {}

  // Adds [start, end), merging with ranges it overlaps or touches, and calls
  // on_new(s, e) for every part [s, e) that was not covered before, in
  // increasing order. Returns false, changing nothing, when the result would
  // need more than max_ranges ranges. Precondition: seq_lt(start, end).
  template <typename OnNew>
  bool add(Seq start, Seq end, OnNew&& on_new);
  bool add(Seq start, Seq end) {
    return add(start, end, [](Seq, Seq) {});
  }

  bool contains(Seq s) const;
  // Drops every sequence number below `s`, trimming a range that straddles it.
  void remove_below(Seq s);
  void clear() { ranges_.clear(); }

  bool empty() const { return ranges_.empty(); }
  std::size_t size() const { return ranges_.size(); }
  std::size_t max_ranges() const { return max_ranges_; }
  const SeqRange& operator[](std::size_t i) const { return ranges_[i]; }
  // The ranges in increasing order.
  const std::vector<SeqRange>& ranges() const { return ranges_; }
  // Bytes of storage allocated (for memory accounting).
  std::size_t allocated() const { return ranges_.capacity() * sizeof(SeqRange); }

 private:
  // Storage grows with the ranges held, from room for this many, up to
  // max_ranges: a receiver whose bound is large pays for it only under loss.
  static constexpr std::size_t kInitialReserve = 64;

  std::vector<SeqRange> ranges_;
  std::size_t max_ranges_;
};

template <typename OnNew>
bool RangeSet::add(Seq start, Seq end, OnNew&& on_new) {
  assert(seq_lt(start, end));
  // First range that ends at or after `start` (it may touch or overlap), and
  // one past the last range that starts at or before `end`. The ranges are
  // disjoint and sorted, so their starts and ends both increase: binary
  // searches (a receiver under loss at a large window holds hundreds).
  const auto begin = ranges_.begin();
  const auto first_it =
      std::partition_point(begin, ranges_.end(), [start](const SeqRange& r) { return seq_lt(r.end, start); });
  const auto last_it =
      std::partition_point(first_it, ranges_.end(), [end](const SeqRange& r) { return seq_le(r.start, end); });
  const auto first = static_cast<std::size_t>(first_it - begin);
  const auto last = static_cast<std::size_t>(last_it - begin);
  const std::size_t merged = last - first;
  if (merged == 0 && ranges_.size() >= max_ranges_) return false;

  // Report the gaps of [start, end) that the merged ranges do not cover.
  Seq cursor = start;
  for (std::size_t i = first; i < last && seq_lt(cursor, end); ++i) {
    if (seq_lt(cursor, ranges_[i].start)) on_new(cursor, seq_min(ranges_[i].start, end));
    cursor = seq_max(cursor, ranges_[i].end);
  }
  if (seq_lt(cursor, end)) on_new(cursor, end);

  if (ranges_.capacity() == 0) ranges_.reserve(std::min(max_ranges_, kInitialReserve));
  if (merged == 0) {
    ranges_.insert(ranges_.begin() + static_cast<std::ptrdiff_t>(first), SeqRange{start, end});
    return true;
  }
  SeqRange& into = ranges_[first];
  into.start = seq_min(into.start, start);
  into.end = seq_max(ranges_[last - 1].end, end);
  ranges_.erase(ranges_.begin() + static_cast<std::ptrdiff_t>(first + 1),
                ranges_.begin() + static_cast<std::ptrdiff_t>(last));
  return true;
}

}  // namespace buckwild::conn

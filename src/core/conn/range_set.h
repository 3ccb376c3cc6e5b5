// A small sorted set of disjoint sequence ranges [start, end).
//
// The receiver records which segments beyond its cumulative acknowledgment it
// holds (its SACK ranges); the sender records which of its segments the peer
// has selectively acknowledged (its scoreboard). Both need only tens of ranges,
// so a sorted vector with a hard bound on the range count beats any tree: no
// allocation after the first insert, and memory is bounded by construction.
#pragma once

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
  std::vector<SeqRange> ranges_;
  std::size_t max_ranges_;
};

template <typename OnNew>
bool RangeSet::add(Seq start, Seq end, OnNew&& on_new) {
  assert(seq_lt(start, end));
  // First range that ends at or after `start` (it may touch or overlap).
  std::size_t first = 0;
  while (first < ranges_.size() && seq_lt(ranges_[first].end, start)) ++first;
  // One past the last range that starts at or before `end`.
  std::size_t last = first;
  while (last < ranges_.size() && seq_le(ranges_[last].start, end)) ++last;
  const std::size_t merged = last - first;
  if (merged == 0 && ranges_.size() >= max_ranges_) return false;

  // Report the gaps of [start, end) that the merged ranges do not cover.
  Seq cursor = start;
  for (std::size_t i = first; i < last && seq_lt(cursor, end); ++i) {
    if (seq_lt(cursor, ranges_[i].start)) on_new(cursor, seq_min(ranges_[i].start, end));
    cursor = seq_max(cursor, ranges_[i].end);
  }
  if (seq_lt(cursor, end)) on_new(cursor, end);

  if (ranges_.capacity() == 0) ranges_.reserve(max_ranges_);
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

#include "core/conn/range_set.h"

namespace buckwild::conn {

bool RangeSet::contains(Seq s) const {
  for (const SeqRange& r : ranges_) {
    if (seq_lt(s, r.start)) return false;
    if (seq_lt(s, r.end)) return true;
  }
  return false;
}

void RangeSet::remove_below(Seq s) {
  std::size_t drop = 0;
  while (drop < ranges_.size() && seq_le(ranges_[drop].end, s)) ++drop;
  ranges_.erase(ranges_.begin(), ranges_.begin() + static_cast<std::ptrdiff_t>(drop));
  if (!ranges_.empty() && seq_lt(ranges_.front().start, s)) ranges_.front().start = s;
}

}  // namespace buckwild::conn

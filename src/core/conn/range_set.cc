#include "core/conn/range_set.h"

#include <algorithm>

namespace buckwild::conn {

bool RangeSet::contains(Seq s) const {
  // The first range that ends beyond s holds it, or s is in the gap before it.
  const auto it =
      std::partition_point(ranges_.begin(), ranges_.end(), [s](const SeqRange& r) { return seq_le(r.end, s); });
  return it != ranges_.end() && seq_le(it->start, s);
}

void RangeSet::remove_below(Seq s) {
  std::size_t drop = 0;
  while (drop < ranges_.size() && seq_le(ranges_[drop].end, s)) ++drop;
  ranges_.erase(ranges_.begin(), ranges_.begin() + static_cast<std::ptrdiff_t>(drop));
  if (!ranges_.empty() && seq_lt(ranges_.front().start, s)) ranges_.front().start = s;
}

}  // namespace buckwild::conn

#include "core/conn/ack_tracker.h"

#include <algorithm>
#include <cassert>

namespace buckwild::conn {

void AckTracker::start(Seq next_expected) {
  ack_ = next_expected;
  latest_ = next_expected;
  ranges_.clear();
}

bool AckTracker::add(Seq s) {
  assert(seq_gt(s, ack_));
  if (!ranges_.add(s, s + 1)) return false;
  latest_ = s;
  return true;
}

void AckTracker::advance() {
  ++ack_;
  ranges_.remove_below(ack_);
}

std::uint32_t AckTracker::bitmap() const {
  std::uint32_t bits = 0;
  const Seq lo = ack_ + 1;
  const Seq hi = ack_ + 33;
  for (const SeqRange& r : ranges_.ranges()) {
    if (!seq_lt(r.start, hi)) break;
    const Seq from = seq_max(r.start, lo);
    const Seq to = seq_min(r.end, hi);
    for (Seq s = from; seq_lt(s, to); ++s) bits |= 1u << static_cast<std::uint32_t>(s - lo);
  }
  return bits;
}

bool AckTracker::bitmap_covers_all() const {
  return ranges_.empty() || seq_le(highest_end(), ack_ + 33);
}

std::size_t AckTracker::blocks(std::span<wire::SackBlock> out) const {
  std::size_t n = 0;
  // The range holding the latest segment, found by bisection (hundreds of
  // ranges under loss at a large window); none if it was not held.
  const std::vector<SeqRange>& all = ranges_.ranges();
  const auto it =
      std::partition_point(all.begin(), all.end(), [this](const SeqRange& r) { return seq_le(r.end, latest_); });
  const std::size_t recent = it != all.end() && seq_in(latest_, it->start, it->end)
                                 ? static_cast<std::size_t>(it - all.begin())
                                 : all.size();
  if (recent < ranges_.size() && n < out.size()) {
    out[n++] = wire::SackBlock{ranges_[recent].start, ranges_[recent].end};
  }
  for (std::size_t i = 0; i < ranges_.size() && n < out.size(); ++i) {
    if (i == recent) continue;
    out[n++] = wire::SackBlock{ranges_[i].start, ranges_[i].end};
  }
  return n;
}

}  // namespace buckwild::conn

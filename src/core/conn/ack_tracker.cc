#include "core/conn/ack_tracker.h"

#include <algorithm>
#include <cassert>

namespace buckwild::conn {

void AckTracker::start(Seq next_expected) {
  ack_ = next_expected;
  recent_count_ = 0;
  recent_head_ = 0;
  ranges_.clear();
}

bool AckTracker::add(Seq s) {
  assert(seq_gt(s, ack_));
  if (!ranges_.add(s, s + 1)) return false;
  recent_[recent_head_] = s;
  recent_head_ = (recent_head_ + 1) % kRecent;
  recent_count_ = std::min(recent_count_ + 1, kRecent);
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
  const std::vector<SeqRange>& all = ranges_.ranges();
  // Which ranges are written, by index, so none goes twice.
  std::array<std::size_t, wire::kMaxSackBlocks> written{};
  const std::size_t limit = std::min(out.size(), written.size());
  std::size_t n = 0;
  auto put = [&](std::size_t i) {
    if (std::find(written.begin(), written.begin() + n, i) != written.begin() + n) return;
    written[n] = i;
    out[n++] = wire::SackBlock{all[i].start, all[i].end};
  };
  // The ranges holding the segments added last, newest first, each found by
  // bisection (hundreds of ranges under loss at a large window): at most half
  // the blocks, so the lowest are reported too.
  const std::size_t recent_limit = std::max<std::size_t>(limit / 2, std::min<std::size_t>(limit, 1));
  for (std::size_t k = 0; k < recent_count_ && n < recent_limit; ++k) {
    const Seq s = recent_[(recent_head_ + kRecent - 1 - k) % kRecent];
    const auto it =
        std::partition_point(all.begin(), all.end(), [s](const SeqRange& r) { return seq_le(r.end, s); });
    if (it != all.end() && seq_in(s, it->start, it->end)) put(static_cast<std::size_t>(it - all.begin()));
  }
  // Then the rest from the lowest: the ranges above the holes a sender
  // repairs first.
  for (std::size_t i = 0; i < all.size() && n < limit; ++i) put(i);
  return n;
}

}  // namespace buckwild::conn
